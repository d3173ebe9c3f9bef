"""What a part costs in memory and handler time: measured around the handler call.

Two columns of the outcome frame come from here (see `splitkit.outcomes`):

- ``page_bytes``: the size of the part's records page as it came off the wire (every part
  that fetched a page; NA for a part that never got that far).
- ``peak_alloc_bytes``: the handler's peak Python allocation, from `tracemalloc`. **Opt-in**
  (``dispatch(..., measure_memory=True)``; `tune()` opts in for its probes), NA otherwise.

Why opt-in, and why tracing is started once per run, never per part: stopping
`tracemalloc` while another thread allocates without the GIL (pyarrow's and numpy's
threads: ``Table.to_pandas``, a Parquet read) crashes the process on CPython before
3.12.9 / 3.13.2 (CPython gh-128679: the traces table is freed under that thread). A
handler reading Parquet at concurrency > 1 would kill the kernel. So:

- a run that measures starts tracing when it starts (only if nothing traces yet: the
  user's own `tracemalloc.start()` is left alone, and that run then samples nothing),
  and tracing is stopped only when no measuring run is left **and** no handler of any run
  is in a call (`measure` counts them): then no thread of ours allocates. Two measuring
  runs at once share one tracing;
- a part's peak is `tracemalloc.reset_peak()` before its handler call and the traced peak
  minus the traced size at that moment after it: sampled, one call at a time in the
  process (a sampled part that starts while another is measured is not sampled), part 0
  and every `SAMPLE_EVERY`-th after it, the first `MAX_SAMPLES`, only when the handler
  runs in this process (`LoopExecutor`, `ThreadExecutor`: a process pool or a Dask worker
  allocates elsewhere).

Limits: tracing slows every allocation in the process for the whole measuring run, not
only the sampled parts (so `splitkit.lab.model` leaves a measuring run's parts out of its
time fit when unmeasured parts remain; the frame says ``attrs["memory_traced"]``). A
handler abandoned by its timeout in a thread still runs when the run ends: on an affected
interpreter, code of yours that allocates in other threads (outside any dispatch) at the
moment the last measuring run ends can still meet the CPython bug.

The peak counts what the handler allocates, records frame included (parsed on first
read, inside the handler), but not the page bytes (fetched before). A records frame read
by pyarrow keeps its string columns in Arrow's memory pool, which tracemalloc does not
see: what that pool holds more at the end of the call than at its start is added (Arrow
memory freed before the call returns is missed). tracemalloc sees the
whole process: at concurrency > 1 what the other parts' handlers and requests allocate
during a sampled call is counted too, so the figure is an upper bound there.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass

from splitkit.engine.executors import Executor, LoopExecutor, ThreadExecutor

#: Part 0 and every SAMPLE_EVERY-th part after it, MAX_SAMPLES of them, are traced.
SAMPLE_EVERY = 8
MAX_SAMPLES = 16

_sampling = threading.Lock()  # one measured handler call at a time in a process


@dataclass
class HandlerCost:
    """Filled in by `measure` once the handler returned (or raised)."""

    handler_s: float | None = None
    peak_alloc_bytes: int | None = None


class _Tracing:
    """The process's one tracing of ours: started by the first measuring run, stopped when
    no measuring run is left and no handler is in a call (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.measuring_runs = 0
        self.in_calls = 0
        self.ours = False  # tracemalloc was started by us (else: by nobody, or the user)

    def run_started(self, measure: bool) -> bool:
        """Count a run in; True when it samples (tracing is ours)."""
        if not measure:
            return False
        with self._lock:
            self.measuring_runs += 1
            if not self.ours and not tracemalloc.is_tracing():
                tracemalloc.start()
                self.ours = True
            return self.ours

    def run_ended(self, measure: bool) -> None:
        if not measure:
            return
        with self._lock:
            self.measuring_runs -= 1
            self._stop_if_idle()

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """Around every handler call: tracing is never stopped during one."""
        with self._lock:
            self.in_calls += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_calls -= 1
                self._stop_if_idle()

    def _stop_if_idle(self) -> None:
        if self.ours and self.measuring_runs == 0 and self.in_calls == 0:
            self.ours = False
            if tracemalloc.is_tracing():
                tracemalloc.stop()


tracing = _Tracing()


def sampled(index: int, executor: Executor) -> bool:
    """Whether part `index`'s handler call is one to measure (see the module docstring)."""
    return (
        index % SAMPLE_EVERY == 0
        and index < SAMPLE_EVERY * MAX_SAMPLES
        and isinstance(executor, LoopExecutor | ThreadExecutor)
    )


def _arrow_bytes() -> int:
    """What pyarrow's default memory pool holds (0 if pyarrow is not loaded): tracemalloc
    does not see it, and a records frame's string columns live there."""
    pyarrow = sys.modules.get("pyarrow")
    return int(pyarrow.total_allocated_bytes()) if pyarrow is not None else 0


@contextlib.contextmanager
def measure(index: int, executor: Executor, memory: bool = False) -> Iterator[HandlerCost]:
    """Time the block; with `memory` (the run's tracing is ours) and on a sampled part,
    its peak Python allocation too. Never starts or stops tracing itself, except that
    the last call to end after the last measuring run stops it."""
    cost = HandlerCost()
    with tracing.call():
        sample = memory and sampled(index, executor) and _sampling.acquire(blocking=False)
        base = arrow_base = 0
        if sample:
            if tracemalloc.is_tracing():
                arrow_base = _arrow_bytes()
                base = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
            else:  # not ours after all: nothing to read
                _sampling.release()
                sample = False
        started = time.perf_counter()
        try:
            yield cost
        finally:
            cost.handler_s = time.perf_counter() - started
            if sample:
                try:
                    if tracemalloc.is_tracing():
                        peak = tracemalloc.get_traced_memory()[1] - base
                        arrow = _arrow_bytes() - arrow_base
                        cost.peak_alloc_bytes = max(int(peak), 0) + max(arrow, 0)
                finally:
                    _sampling.release()
