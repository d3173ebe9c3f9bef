"""Where a handler runs: the event loop, a thread pool, a process pool, or a Dask cluster.

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
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from splitkit._checks import positive_int
from splitkit.engine.part import Part

Handler = Callable[[Part], Any]
T = TypeVar("T")


def _call_in_worker(handler: Handler, part: Part) -> Any:
    """Runs a handler to completion outside the event loop (thread, process, Dask worker)."""
    result = handler(part)
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


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
    """`call()` in a new daemon thread; its result (or exception) comes back to the loop.
    Cancelling the await leaves the thread running; what it returns then is dropped."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, error: BaseException | None) -> None:
        if future.done():  # the caller gave up (timeout, cancel)
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def main() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = call()
        except BaseException as exc:  # handed to the awaiting task, raised there
            error = exc
        # RuntimeError: the run's loop has closed; nobody waits for this any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=main, name=name, daemon=True).start()
    return await future


class _PoolExecutor:
    """Shared by the thread and process executors: a `concurrent.futures` pool."""

    def __init__(self, pool: concurrent.futures.Executor, max_workers: int | None) -> None:
        self._pool = pool
        self.max_workers = max_workers

    async def run(self, handler: Handler, part: Part) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, functools.partial(_call_in_worker, handler, part)
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

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


class DaskExecutor:
    """Handlers on a Dask cluster (`pip install splitkit[dask]`).

    Pass a `distributed.Client`, a scheduler address, or nothing for a local cluster. The
    records travel with the part, so workers need no access to the Flatfile API.
    """

    def __init__(self, client: Any = None) -> None:
        try:
            import distributed
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ImportError(
                "DaskExecutor needs dask.distributed: pip install 'splitkit[dask]'"
            ) from exc
        if client is not None and not isinstance(client, str | distributed.Client):
            raise TypeError(
                "client must be a distributed.Client, a scheduler address or None, "
                f"got {type(client).__name__}"
            )
        self._owns_client = not isinstance(client, distributed.Client)
        if client is None:
            client = distributed.Client(processes=False, dashboard_address=None)
        elif isinstance(client, str):
            client = distributed.Client(client)
        self.client = client

    async def run(self, handler: Handler, part: Part) -> Any:
        # pure=False: two attempts of one part must both run, not share a cached result.
        future = self.client.submit(_call_in_worker, handler, part, pure=False)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(_: Any) -> None:
            if not done.done():
                done.set_result(None)

        def wake(_: Any) -> None:  # called on Dask's thread
            loop.call_soon_threadsafe(settle, None)

        future.add_done_callback(wake)
        try:
            await done
        except asyncio.CancelledError:
            future.cancel()
            raise
        return future.result()

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client!r})"
