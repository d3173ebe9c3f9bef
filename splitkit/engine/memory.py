"""What a part costs in memory and handler time: measured around the handler call.

Two columns of the outcome frame come from here (see `splitkit.outcomes`):

- ``page_bytes``: the size of the part's records page as it came off the wire (every part
  that fetched a page; NA for a part that never got that far).
- ``peak_alloc_bytes``: the handler's peak Python allocation, from `tracemalloc`, which
  slows every allocation in the process while it traces. So it is **sampled**: part 0 and
  every `SAMPLE_EVERY`-th part after it, the first `MAX_SAMPLES` of them (parts 0, 8, ...,
  120: a run of 100,000 parts traces 16, not 12,500), one at a time in a process (a
  sampled part that starts while another is traced is not sampled), only when
  the handler runs in this process (`LoopExecutor`, `ThreadExecutor`: a process pool or a
  Dask worker allocates elsewhere) and never when something else already traces (the
  user's own `tracemalloc.start()` is left alone). Every other part has NA.

  The peak counts what the handler allocates, records frame included (it is parsed on
  first read, inside the handler), but not the page bytes (fetched before). tracemalloc
  sees the whole process: at concurrency > 1 what the other parts' handlers and requests
  allocate during a sampled call is counted too, so the figure is an upper bound there.

A sampled part runs slower (tracing): `splitkit.lab.model` leaves sampled parts out of
its time fit when unsampled parts remain.
"""

from __future__ import annotations

import contextlib
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass

from splitkit.engine.executors import Executor, LoopExecutor, ThreadExecutor

#: Part 0 and every SAMPLE_EVERY-th part after it, MAX_SAMPLES of them, are traced.
SAMPLE_EVERY = 8
MAX_SAMPLES = 16

_tracing = threading.Lock()  # one traced handler call at a time in a process


@dataclass
class HandlerCost:
    """Filled in by `measure` once the handler returned (or raised)."""

    handler_s: float | None = None
    peak_alloc_bytes: int | None = None


def sampled(index: int, executor: Executor) -> bool:
    """Whether part `index`'s handler call is one to trace (see the module docstring)."""
    return (
        index % SAMPLE_EVERY == 0
        and index < SAMPLE_EVERY * MAX_SAMPLES
        and isinstance(executor, LoopExecutor | ThreadExecutor)
    )


@contextlib.contextmanager
def measure(index: int, executor: Executor) -> Iterator[HandlerCost]:
    """Time the block; on a sampled part, trace its peak Python allocation too."""
    cost = HandlerCost()
    trace = sampled(index, executor) and _tracing.acquire(blocking=False)
    if trace and tracemalloc.is_tracing():  # someone else's tracing: not ours to stop
        _tracing.release()
        trace = False
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        yield cost
    finally:
        cost.handler_s = time.perf_counter() - started
        if trace:
            cost.peak_alloc_bytes = int(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            _tracing.release()
