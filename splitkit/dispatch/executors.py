"""Where a handler runs: the event loop, a thread pool, a process pool, or a Dask cluster.

Every executor has one coroutine, `run(handler, part)`, so the engine does not care which
one it has. Sync handlers never run on the event loop itself, so a slow handler cannot
stall the requests of the other parts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from splitkit._checks import positive_int
from splitkit.dispatch.part import Part

Handler = Callable[[Part], Any]


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


# Threads are made on demand, one per part in flight; the engine's concurrency is the bound.
# Large, so that a handler stuck past its timeout never holds back the next part.
_ON_DEMAND_THREADS = 1024


class LoopExecutor:
    """The default: async handlers run on the engine's loop, sync ones in threads.

    The threads are this executor's own (not asyncio's default pool, which holds only
    cpu + 4), so `concurrency=32` means 32 sync handlers at once, and a handler stuck past
    its timeout does not keep the run from ending.
    """

    def __init__(self) -> None:
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    async def run(self, handler: Handler, part: Part) -> Any:
        if inspect.iscoroutinefunction(handler):
            return await handler(part)
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                _ON_DEMAND_THREADS, thread_name_prefix="splitkit-handler"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, functools.partial(_call_in_worker, handler, part)
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __repr__(self) -> str:
        return "LoopExecutor()"


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
    """Every handler in a dedicated thread pool (async handlers get a loop of their own)."""

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
