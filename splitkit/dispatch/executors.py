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


class LoopExecutor:
    """The default: async handlers run on the engine's loop, sync ones in its thread pool."""

    async def run(self, handler: Handler, part: Part) -> Any:
        if inspect.iscoroutinefunction(handler):
            return await handler(part)
        return await asyncio.to_thread(_call_in_worker, handler, part)

    def close(self) -> None:
        return None

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
    if max_workers is not None and (
        isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
    ):
        raise ValueError(f"max_workers must be a positive integer or None, got {max_workers!r}")


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
        self._owns_client = not isinstance(client, distributed.Client)
        if client is None:
            client = distributed.Client(processes=False, dashboard_address=None)
        elif isinstance(client, str):
            client = distributed.Client(client)
        self.client = client

    async def run(self, handler: Handler, part: Part) -> Any:
        # pure=False: two attempts of one part must both run, not share a cached result.
        future = self.client.submit(_call_in_worker, handler, part, pure=False)
        try:
            return await asyncio.to_thread(future.result)
        except asyncio.CancelledError:
            future.cancel()
            raise

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client!r})"
