"""Where a handler runs: the event loop, a thread pool, or a process pool (a Dask cluster:
`dask_executor.py`, imported only when asked for, as dask is an optional extra).

Every executor has one coroutine, `run(handler, part)`, so the engine does not care which
one it has. Sync handlers never run on the event loop itself, so a slow handler cannot
stall the requests of the other parts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import pickle
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from splitkit._checks import positive_int
from splitkit.engine.part import Part
from splitkit.engine.tracebacks import keep_handler_frames

Handler = Callable[[Part], Any]
T = TypeVar("T")


def _call_in_worker(handler: Handler, part: Part) -> Any:
    """Runs a handler to completion outside the event loop (thread, process, Dask worker)."""
    result = handler(part)
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


def _call_in_process(handler: Handler, part: Part) -> Any:
    """`_call_in_worker` in a pool process: an error goes back pickled, which drops its
    traceback, so the user's frames are written on it first."""
    try:
        return _call_in_worker(handler, part)
    except BaseException as exc:
        keep_handler_frames(exc)
        raise


async def _await(awaitable: Any) -> Any:
    return await awaitable


@runtime_checkable
class Executor(Protocol):
    """Runs one handler call for one part and returns what the handler returned."""

    async def run(self, handler: Handler, part: Part) -> Any: ...

    def close(self) -> None: ...


class LoopExecutor:
    """The default: async handlers run on the engine's loop, sync ones in threads.

    Each sync handler call gets a daemon thread of its own (not asyncio's default pool,
    which holds only cpu + 4), so `concurrency=32` means 32 sync handlers at once, and a
    handler stuck past its timeout neither holds back the run's end nor keeps the process
    alive after it (a pool's threads are joined at interpreter exit; daemon threads are
    not).
    """

    async def run(self, handler: Handler, part: Part) -> Any:
        if inspect.iscoroutinefunction(handler):
            return await handler(part)
        return await in_daemon_thread(
            functools.partial(_call_in_worker, handler, part), name=f"splitkit-part-{part.index}"
        )

    def close(self) -> None:
        """Nothing to release: a thread ends with its handler call (a stuck one is left)."""

    def __repr__(self) -> str:
        return "LoopExecutor()"


async def in_daemon_thread(call: Callable[[], T], *, name: str) -> T:
    """`call()` in a daemon thread of its own (an idle one kept from an earlier call, or a
    new one); its result (or exception) comes back to the loop. Cancelling the await
    leaves the thread running; what it returns then is dropped."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, error: BaseException | None) -> None:
        if future.done():  # the caller gave up (timeout, cancel)
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def main() -> Callable[[], None]:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = call()
        except BaseException as exc:  # handed to the awaiting task, raised there
            error = exc

        def post() -> None:
            # RuntimeError: the run's loop has closed; nobody waits for this any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(deliver, result, error)

        return post

    _IDLE.run(main, name)
    return await future


class _IdleThreads:
    """Daemon threads kept idle for `IDLE_S` after a call, for the next one: starting a
    thread costs more CPU than a no-op handler's whole call. A call never waits for a
    thread (none idle: a new one), so a stuck handler holds only its own."""

    IDLE_S = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Callable[[], Callable[[], None]]]] = []

    def run(self, call: Callable[[], Callable[[], None]], name: str) -> None:
        """Runs ``call()`` in an idle thread (or a new one), then what it returned: the
        thread is idle again before that (the result's delivery), so the next call that
        delivery lets start finds it."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name=name, daemon=True).start()
        inbox.put(functools.partial(_named, name, call))

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], Callable[[], None]]]) -> None:
        while True:
            try:
                then = inbox.get(timeout=self.IDLE_S)()
            except queue.Empty:
                with self._lock:
                    if inbox not in self._idle:  # taken just now: its call is on the way
                        continue
                    self._idle.remove(inbox)
                return
            with self._lock:
                self._idle.append(inbox)
            then()


def _named(name: str, call: Callable[[], Callable[[], None]]) -> Callable[[], None]:
    threading.current_thread().name = name  # what a traceback or a debugger shows
    return call()


_IDLE = _IdleThreads()


class _PoolExecutor:
    """Shared by the thread and process executors: a `concurrent.futures` pool."""

    _call: Callable[[Handler, Part], Any] = staticmethod(_call_in_worker)

    def __init__(self, pool: concurrent.futures.Executor, max_workers: int | None) -> None:
        self._pool = pool
        self.max_workers = max_workers

    async def run(self, handler: Handler, part: Part) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(self._call, handler, part))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_workers={self.max_workers})"


def _check_workers(max_workers: int | None) -> None:
    if max_workers is not None:
        positive_int("max_workers", max_workers)


class ThreadExecutor(_PoolExecutor):
    """Every handler in a dedicated thread pool (async handlers get a loop of their own).

    A pool's threads are joined when the interpreter exits: a handler stuck for ever keeps
    the process alive, where the default `LoopExecutor`'s daemon threads do not."""

    def __init__(self, max_workers: int | None = None) -> None:
        _check_workers(max_workers)
        super().__init__(
            concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="splitkit-part"),
            max_workers,
        )


class ProcessExecutor(_PoolExecutor):
    """Every handler in a process pool: for CPU-bound handlers. The handler must be picklable
    (a module-level function), and `Part.progress()` is a no-op there."""

    _call = staticmethod(_call_in_process)

    def __init__(self, max_workers: int | None = None) -> None:
        _check_workers(max_workers)
        super().__init__(concurrent.futures.ProcessPoolExecutor(max_workers), max_workers)

    def check_handler(self, handler: Handler) -> None:
        """TypeError when `handler` cannot reach the workers: dispatch() asks before the run,
        so a lambda fails once, not every part with a PicklingError."""
        try:
            pickle.dumps(handler)
        except Exception as exc:  # PicklingError, AttributeError, TypeError: all "cannot"
            name = getattr(handler, "__qualname__", None) or repr(handler)
            raise TypeError(
                f"handler {name} cannot be pickled ({type(exc).__name__}: {exc}), and a "
                "ProcessExecutor sends the handler to its worker processes by pickle. Define "
                "it with def at the module level of an importable module (not a lambda, nor a "
                "function inside another), or run it in a ThreadExecutor() or the default "
                "LoopExecutor"
            ) from exc
