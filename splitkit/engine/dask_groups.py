"""Several parts in one Dask task (`DaskExecutor(parts_per_task=n)`), on the coordinator.

Why: a Dask task costs the coordinator ~10 ms of CPU whatever it does (the client's and
the local scheduler's messages), as much as a short handler. A task of `n` parts pays it
once. The engine still calls `run(handler, part)` once per part, from as many slots as the
run's concurrency: calls that arrive together join one open **group**, which is submitted
when it holds `n` parts or `linger_s` after its first part (a run's last few parts do not
wait for company that never comes). Each call gets its own part's result or error back.

What a group changes for its parts:

- A handler error fails its own part only (the worker catches it per part,
  `dask_worker.run_parts_on_worker`); a task lost as a whole (a worker killed,
  `KilledWorker`, the cluster gone) reaches every part of the group, as it would reach a
  one-part task. A rerun of the task reruns all its parts' handlers: at least once, and
  each part is still ended once, by the coordinator.
- A part's `timeout` counts from the call: the wait for its group to fill (up to
  `linger_s`), the time the task queues for a worker, and the whole task (a group's
  results come back together when it ends).
- A part abandoned while its group waits to be submitted leaves the group; once every
  part of a submitted group is abandoned (cancel, timeouts), its task is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from splitkit.engine.dask_worker import Outcome
from splitkit.engine.executors import Handler
from splitkit.engine.part import Part

#: (the group's handler, its parts, a key naming it) -> a distributed.Future of
#: ([(ok, result or exception, handler seconds) per part], the worker's address).
Submit = Callable[[Handler, list[Part], str], Any]
#: A distributed.Future -> its result, awaited on the engine's loop.
Wait = Callable[[Any], Any]


@dataclass(eq=False)
class _Group:
    handler: Handler
    parts: list[Part] = field(default_factory=list)
    answers: list[asyncio.Future[Any]] = field(default_factory=list)
    waiting: int = 0  # answers not settled yet (kept, not counted: a scan per answer is n²)
    timer: asyncio.TimerHandle | None = None
    task: Any = None  # the distributed.Future, once submitted
    delivery: asyncio.Task[None] | None = None
    stopped: bool = False  # its task cancelled: nobody waits for it


class PartGroups:
    """Collects the parts of concurrent `run()` calls into tasks of up to `size` parts."""

    def __init__(self, size: int, linger_s: float, submit: Submit, wait: Wait) -> None:
        self.size = size
        self.linger_s = linger_s
        self._submit = submit
        self._wait = wait
        # The open group per event loop: an executor may serve runs on several loops.
        self._open: dict[asyncio.AbstractEventLoop, _Group] = {}

    async def run(self, handler: Handler, part: Part) -> tuple[Outcome, str]:
        """The part's outcome on the worker (`dask_worker.Outcome`) and the worker's
        address; an error of the whole task (the worker lost, the cluster gone) raised."""
        loop = asyncio.get_running_loop()
        group = self._open.get(loop)
        if group is not None and group.handler is not handler:
            self._flush(loop, group)  # another run's handler: never mixed in one task
            group = None
        if group is None:
            group = self._open[loop] = _Group(handler)
            group.timer = loop.call_later(self.linger_s, self._flush, loop, group)
        answer: asyncio.Future[tuple[Outcome, str]] = loop.create_future()
        group.parts.append(part)
        group.answers.append(answer)
        group.waiting += 1
        answer.add_done_callback(lambda _: self._settled(loop, group))
        if group.waiting >= self.size:  # parts still wanted: an abandoned one makes room
            self._flush(loop, group)
        return await answer  # cancelling the caller cancels `answer`

    def _flush(self, loop: asyncio.AbstractEventLoop, group: _Group) -> None:
        """Submit `group` (once): its parts still wanted, in one task."""
        self._close(loop, group)
        if group.task is not None:
            return
        wanted = [(p, a) for p, a in zip(group.parts, group.answers, strict=True) if not a.done()]
        if not wanted:
            return
        group.parts, group.answers = [p for p, _ in wanted], [a for _, a in wanted]
        first = group.parts[0]
        # The key names the parts for the dashboard; it holds no secret.
        key = (
            f"splitkit-parts-{first.index}+{len(wanted) - 1}-{first.job_id}-{uuid.uuid4().hex[:8]}"
        )
        try:
            group.task = self._submit(group.handler, group.parts, key)
        except BaseException as exc:  # the cluster refused it: each part hears why
            _tell_the_rest(group, exc)
            if not isinstance(exc, Exception):
                raise
            return
        group.delivery = loop.create_task(self._deliver(group))

    async def _deliver(self, group: _Group) -> None:
        try:
            entries, address = await self._wait(group.task)
            if len(entries) != len(group.answers):  # a worker of another splitkit version?
                raise RuntimeError(
                    f"the Dask task of {len(group.answers)} parts returned {len(entries)} outcomes"
                )
            for answer, entry in zip(group.answers, entries, strict=True):
                if not answer.done():  # else abandoned meanwhile (timeout, cancel): dropped
                    answer.set_result((entry, address))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the whole task: every part of it hears the same
            _tell_the_rest(group, exc)
        finally:  # whatever happened, no caller is left waiting for ever
            _tell_the_rest(group, RuntimeError("the group's task ended without its outcome"))

    def _settled(self, loop: asyncio.AbstractEventLoop, group: _Group) -> None:
        """Called as each answer settles: a group nobody waits for any more is dropped
        (not yet submitted: it leaves the open slot, also when its loop is closing) or its
        task cancelled (submitted)."""
        group.waiting -= 1
        if group.waiting > 0 or group.stopped or not all(a.cancelled() for a in group.answers):
            return
        if group.task is None:
            self._close(loop, group)
            return
        group.stopped = True
        with contextlib.suppress(Exception):  # the cluster may be gone: nothing to stop
            group.task.cancel()
        if group.delivery is not None:
            group.delivery.cancel()

    def _close(self, loop: asyncio.AbstractEventLoop, group: _Group) -> None:
        """`group` takes no more parts."""
        if self._open.get(loop) is group:
            del self._open[loop]
        if group.timer is not None:
            group.timer.cancel()
            group.timer = None


def _tell_the_rest(group: _Group, exc: BaseException) -> None:
    """`exc` to every caller of `group` still waiting."""
    for answer in group.answers:
        if not answer.done():
            answer.set_exception(exc)
