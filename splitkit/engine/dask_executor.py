"""`DaskExecutor`: the handlers of a run on a Dask cluster, each worker reading its own page.

Who does what (the coordinator is the process that called `dispatch()`):

- The **coordinator** holds the parent's claim, acks each part, submits it to the cluster,
  and **ends it** (complete or fail) with the delivery loop of `steps.end_part`.
- A **worker** reads the part's page from the API (`dask_worker.run_parts_on_worker`), runs the
  handler, and returns the handler's result and its own address. It never changes a job.

Why the coordinator ends the parts: a part is then ended by one writer, the one holding
the claim, which reconciles a doubtful end by reading the part. Dask may run a task twice
(a worker that died after the handler returned but before the scheduler had the result);
both results come back to the one future, and only one end is sent. A coordinator that
died leaves tasks running on the workers with nobody to end their parts: their results are
dropped, and the next `dispatch()` (after the claim lapses) runs those parts again, as
after any killed dispatcher. Workers that ended parts themselves would need the claim
too, or race the new coordinator. The cost is one small result per part (the handler's
outcome), whatever the batch size: the records never reach the coordinator.

Failures: a worker that dies mid-part has its task rerun on another worker by the
scheduler (up to `distributed.scheduler.allowed-failures`, 3 by default; past that
`KilledWorker` fails the part: the handler took down that many workers). The handler may
then run twice for that part; the part is still ended once. A page the worker cannot read,
or a task the cluster drops (scheduler gone), leaves the part open, never failed.

Credentials: see `dask_worker` (a worker plugin, or each worker's environment).

Several parts per task (`parts_per_task=n`): see `dask_groups`. A task costs the
coordinator ~10 ms of CPU (Dask's own messages), as much as a short handler: grouping
parts pays it once per group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from typing import Any

import cloudpickle
import distributed
from distributed.client import FutureCancelledError

from splitkit._checks import integer, positive_int, positive_number
from splitkit.api import ClientConfig, Job
from splitkit.engine.dask_groups import PartGroups
from splitkit.engine.dask_worker import RemotePage, WorkerAccess, run_parts_on_worker
from splitkit.engine.executors import Handler
from splitkit.engine.part import Part
from splitkit.errors import PartLeftOpenError

SHEET_ID_PREFIX = "us_sh_"
CREDENTIALS = ("send", "env")
WORKERS_REFRESH_S = 1.0  # the worker count shown is at most this old
MAX_PARTS_PER_TASK = 1_000


class DaskExecutor:
    """Handlers on a Dask cluster (`pip install 'splitkit[dask]'`); workers read their pages.

    `client`: a `distributed.Client`, a scheduler address (`"tcp://host:8786"`), or None
    for a local cluster of `n_workers` worker processes (one per core by default, one
    thread each, scheduler on loopback, no dashboard). Handlers must pickle
    (cloudpickle: lambdas do, a handler holding a lock or socket does not).

    `credentials="send"` hands the run's API config to the workers in a worker plugin
    (never in a task); `"env"` sends nothing, and each worker reads `FLATFILE_API_KEY`,
    `FLATFILE_API_URL` and `FLATFILE_ENVIRONMENT_ID` from its own environment.

    `parts_per_task` (1 to 1,000): parts run one after the other in one Dask task (default
    1). Raise it when handlers are short (tens of ms): a task costs the coordinator ~10 ms
    of CPU whatever it runs. A group is submitted when full or `linger_s` after its first
    part; keep the run's `concurrency` at least 2 x parts_per_task x workers so every
    worker has a group queued.

    A part's `timeout` counts from when it is handed to the cluster: the time it queues
    for a worker counts, and, as a group's results come back together, its whole group.

    A local cluster starts worker processes by spawning: in a script, create the executor
    under ``if __name__ == "__main__":`` (a notebook or the REPL needs nothing).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        n_workers: int | None = None,
        credentials: str = "send",
        parts_per_task: int = 1,
        linger_s: float = 0.02,
    ) -> None:
        if client is not None and not isinstance(client, str | distributed.Client):
            raise TypeError(
                "client must be a distributed.Client, a scheduler address or None, "
                f"got {type(client).__name__}"
            )
        if n_workers is not None:
            positive_int("n_workers", n_workers)
            if client is not None:
                raise ValueError(
                    "n_workers sizes the local cluster DaskExecutor starts; a given client "
                    "or scheduler address brings its own workers"
                )
        if credentials not in CREDENTIALS:
            raise ValueError(f"credentials must be 'send' or 'env', got {credentials!r}")
        parts_per_task = integer(
            "parts_per_task", parts_per_task, low=1, high=MAX_PARTS_PER_TASK,
            what=f"an integer from 1 to {MAX_PARTS_PER_TASK:,}",
        )  # fmt: skip
        linger_s = positive_number("linger_s", linger_s, what="a number of seconds > 0")
        self.parts_per_task = parts_per_task
        self._groups = PartGroups(parts_per_task, linger_s, self._submit_group, self._result)
        self.credentials = credentials
        self._owns_client = not isinstance(client, distributed.Client)
        self.cluster: distributed.LocalCluster | None = None
        if client is None:
            self.cluster = distributed.LocalCluster(
                n_workers=n_workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,  # processes, not threads: CPU-bound Python runs in parallel
                host="127.0.0.1",
                dashboard_address=":0",  # a free port; served only with bokeh installed
            )
            client = distributed.Client(self.cluster)
        elif isinstance(client, str):
            client = distributed.Client(client)
        self.client: distributed.Client = client
        self._access: dict[ClientConfig | None, str] = {}
        self._registered: set[str] = set()
        self._access_lock = threading.Lock()
        self._where: dict[str, str] = {}
        self._handler_s: dict[str, float] = {}
        self._workers = 0
        self._counted = 0.0
        self._count_workers()

    # -- the hooks dispatch() and run_part() look for ------------------------------------
    def check_handler(self, handler: Handler) -> None:
        """TypeError when the handler cannot be pickled for the workers (before any part)."""
        try:
            # cloudpickle itself: what Dask falls back to, without its error log first.
            cloudpickle.dumps(handler)
        except Exception as exc:
            name = getattr(handler, "__qualname__", None) or repr(handler)
            raise TypeError(
                f"handler {name} cannot be pickled ({type(exc).__name__}: {exc}), and a "
                "DaskExecutor sends the handler to its workers by (cloud)pickle. Keep "
                "locks, open files, sockets and clients out of it (make them inside the "
                "handler), or run it in the default LoopExecutor"
            ) from exc

    def remote_page(
        self, config: ClientConfig, job: Job, page_number: int, page_size: int
    ) -> RemotePage | None:
        """The part's page, for the worker to read; None for a part with no sheet."""
        source = str(job.source or "")
        if not source.startswith(SHEET_ID_PREFIX):
            return None
        return RemotePage(source, page_number, page_size, self._access_for(config))

    def placement(self, job_id: str) -> str | None:
        """The address of the worker that ran the part's last attempt (read once per
        attempt: `run_part` reads it after each, so nothing is left behind)."""
        return self._where.pop(job_id, None)

    @property
    def timeout_counts(self) -> str:
        """What a part's `timeout` counted here, for its error message."""
        if self.parts_per_task > 1:
            return (
                " on Dask: counted from submission, so the wait for its group to fill, the "
                "time queued for a worker and its whole group (results come back per task) count"
            )
        return " on Dask: counted from submission, so the time queued for a worker counts"

    def handler_seconds(self, job_id: str) -> float | None:
        """The part's handler time as the worker measured it (once per attempt): the
        coordinator's own clock would add the time queued and the task's round trip."""
        return self._handler_s.pop(job_id, None)

    @property
    def workers(self) -> int:
        """How many workers the cluster has (refreshed as parts end, at most every 1 s)."""
        return self._workers

    # -- running a part --------------------------------------------------------------------
    async def run(self, handler: Handler, part: Part) -> Any:
        if isinstance(part._records, RemotePage) and part._records.access not in self._registered:
            await asyncio.to_thread(self._register, part._records.access)
        if self.parts_per_task > 1:
            (ok, result, took), address = await self._groups.run(handler, part)
        else:
            # The key names the part, for the dashboard; it holds no secret.
            key = f"splitkit-part-{part.index}-{part.job_id}-{uuid.uuid4().hex[:8]}"
            future = self._submit_group(handler, [part], key)
            try:
                ([(ok, result, took)], address) = await self._result(future)
            except asyncio.CancelledError:
                future.cancel()
                raise
        self._where[part.job_id] = address  # a failed part's worker too
        if took is not None:
            self._handler_s[part.job_id] = took
        if not ok:
            raise result  # the handler's own error, its worker traceback attached
        if time.monotonic() - self._counted > WORKERS_REFRESH_S:
            self._counted = time.monotonic()  # one refresh, not one per part of a group
            await asyncio.to_thread(self._count_workers)
        return result

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        else:
            for name in self._registered:
                with contextlib.suppress(Exception):  # the cluster may be gone: nothing to undo
                    self.client.unregister_worker_plugin(name)

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "local cluster" if self.cluster is not None else "cluster"
        address = getattr(self.client.scheduler, "address", "?")
        grouped = f", parts_per_task={self.parts_per_task}" if self.parts_per_task > 1 else ""
        return f"DaskExecutor({where} at {address}, workers={self._workers}{grouped})"

    # -- helpers ---------------------------------------------------------------------------
    def _submit_group(self, handler: Handler, parts: list[Part], key: str) -> Any:
        # pure=False: two attempts of one part must both run, not share a cached result.
        # The worker catches each part's error: Dask sees a task that succeeded, so it
        # neither logs "Compute Failed" nor loses the worker's address.
        return self.client.submit(run_parts_on_worker, handler, parts, key=key, pure=False)

    async def _result(self, future: Any) -> Any:
        """A task's result, awaited on the engine's loop; a task the cluster dropped
        (scheduler gone, ...) leaves its part(s) open."""
        try:
            return await _wait(future)
        except FutureCancelledError as exc:
            raise PartLeftOpenError(f"the Dask cluster dropped the part's task: {exc}") from None

    def _access_for(self, config: ClientConfig) -> str:
        key = config if self.credentials == "send" else None
        with self._access_lock:
            name = self._access.get(key)
            if name is None:
                name = self._access[key] = f"splitkit-access-{uuid.uuid4().hex[:12]}"
            return name

    def _register(self, name: str) -> None:
        """Register the plugin named `name` on the workers, once (from a thread: it blocks)."""
        with self._access_lock:
            if name in self._registered:
                return
            config = next(c for c, n in self._access.items() if n == name)
            self.client.register_plugin(WorkerAccess(name, config), name=name)
            self._registered.add(name)

    def _count_workers(self) -> None:
        with contextlib.suppress(Exception):  # a count for display only: keep the last one
            self._workers = len(self.client.scheduler_info()["workers"])
        self._counted = time.monotonic()


async def _wait(future: Any) -> tuple[Any, str]:
    """A Dask future's result, awaited on the engine's loop without blocking it."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle() -> None:
        if not done.done():
            done.set_result(None)

    # Called on Dask's thread; the loop may have closed when a stuck part is abandoned.
    future.add_done_callback(lambda _: _call_soon(loop, settle))
    await done
    result: tuple[Any, str] = await asyncio.to_thread(future.result)
    return result


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
        loop.call_soon_threadsafe(callback)
