"""The async core of a dispatch: every part of a parent that has not ended, run to its end.

One engine runs on one event loop (the handle's background thread). It lists the parent's
parts, keeps those already ended on the server as they are, and for each other part waits
for a slot (concurrency, pause, stop, cancel) and runs it with `steps.run_part`. On stop
(Ctrl-C) the parts it never started stay open on the server for the next run; on cancel
it cancels them on the server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

import httpx
import pandas as pd

from splitkit.api import AsyncClient, ClientConfig, Job
from splitkit.api import operations as ops
from splitkit.api.errors import InvalidTransitionError
from splitkit.engine.claim import ClaimPolicy, ParentClaim, stop_starting
from splitkit.engine.controls import Controls
from splitkit.engine.executors import Executor, Handler
from splitkit.engine.memory import tracing
from splitkit.engine.part_options import PartOptions
from splitkit.engine.progress import RunObserver
from splitkit.engine.state import PartRow, RunState, utcnow
from splitkit.engine.steps import (
    PartSpec,
    outcome_message,
    page_of,
    part_index,
    run_part,
)
from splitkit.engine.tracebacks import describe_error
from splitkit.statuses import OUTCOME_OF_ENDED_JOB, OutcomeStatus

log = logging.getLogger("splitkit.engine")

PROGRESS_INTERVAL_S = 0.5  # at most two progress acks a second per part


class Engine:
    def __init__(
        self,
        config: ClientConfig,
        parent_id: str,
        handler: Handler,
        *,
        options: PartOptions,
        executor: Executor,
        controls: Controls,
        state: RunState,
        observers: Sequence[RunObserver] = (),
        plan: pd.DataFrame | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        claim: ClaimPolicy | None = None,
    ) -> None:
        self.config = config
        self.parent_id = parent_id
        self.handler = handler
        self.options = options
        self.executor = executor
        self.controls = controls
        self.state = state
        self.observers = list(observers)
        self.plan = plan
        self.transport = transport
        self.claim = claim  # None: no claim on the parent (dispatch(claim=False))
        self.sequential = False
        self._free_workers: list[int] = []
        self._last_progress: dict[str, float] = {}
        self._background: set[asyncio.Task[Any]] = set()
        # Set while running: Part.progress() reaches the server through them.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: AsyncClient | None = None

    async def run(self) -> None:
        # Tracing (dispatch(measure_memory=True)) starts once here and stops only when no
        # handler is in a call: stopping it under pyarrow's threads crashes CPython < 3.12.9.
        measure = self.options.measure_memory
        ours = tracing.run_started(measure)
        self.options = dataclasses.replace(self.options, measure_memory=ours)
        self.state.memory_traced = tracemalloc.is_tracing()
        try:
            await self._run()
        finally:
            tracing.run_ended(measure)

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.controls.bind(self._loop)
        self.controls.on_change(lambda: self._tell("part_changed"))
        try:
            # The claim keeps runs of other processes off the parent; lost, no new part starts.
            lost = stop_starting(self.controls, self.state)
            async with (
                AsyncClient.from_config(self.config, transport=self.transport) as client,
                ParentClaim(client, self.parent_id, self.claim, lost) as claim,
            ):
                self._client = client
                await self._load_parts(client)
                self._free_workers = list(range(self.controls.concurrency))
                self._count_workers()
                self._tell("run_started")
                try:
                    await self._run_parts(client)
                finally:
                    if self.controls.cancelled and claim.lost is None:  # lost: theirs now
                        await self._cancel_pending(client)
                    if self._background:
                        await asyncio.gather(*self._background, return_exceptions=True)
        finally:
            self.state.finished = time.monotonic()
            self._client = None
            self.controls.unbind()
            self._tell("run_finished")

    # -- discovery ---------------------------------------------------------------------
    async def _load_parts(self, client: AsyncClient) -> None:
        parent = await client.get_job(self.parent_id)
        if parent.is_part:
            raise ValueError(
                f"job {self.parent_id} is a part of {parent.parent_id}; dispatch its parent"
            )
        rows: list[PartRow] = []

        def keep(page: list[Job]) -> None:
            # Sequential parts become ready one after another: run them one at a time, in order.
            self.sequential |= any(job.part_execution == "sequential" for job in page)
            rows.extend(self._row_for(job) for job in page)

        # Page by page: a row keeps what the run needs of a part, its Job is let go at once.
        await client._drive(ops.fold_parts(self.parent_id, keep))
        if not rows:
            raise ValueError(
                f"job {self.parent_id} has no parts: split it first (splitkit.split_parent)"
            )
        rows.sort(key=lambda row: row.part)
        self.state.add(rows)

    def _row_for(self, job: Job) -> PartRow:
        row = PartRow(part=part_index(job), job_id=job.id, records=page_of(job, self.plan)[2])
        ended = OUTCOME_OF_ENDED_JOB.get(job.status)
        if ended is not None:
            # Ended on the server by an earlier run: kept in the frame, never run again.
            row.status = ended.value
            row.previous_run = True
            row.started_at = job.started_at
            row.finished_at = job.finished_at
            row.message = outcome_message(job.outcome)
            if ended == "failed":
                row.error = row.message or job.info
        return row

    # -- the loop ------------------------------------------------------------------------
    async def _run_parts(self, client: AsyncClient) -> None:
        running: set[asyncio.Task[None]] = set()
        pending = [row for row in self.state.rows if row.status == "pending"]
        # A sequential part becomes ready only when the one before it has ended.
        cap = 1 if self.sequential else None
        try:
            for row in pending:
                if not await self.controls.slot(lambda: self.state.running, cap=cap):
                    break
                self.state.move(row, "running", started_at=utcnow(), worker=self._take_worker())
                self._tell("part_changed")
                task = asyncio.create_task(self._run_part(client, row))
                running.add(task)
                task.add_done_callback(running.discard)
            if running:
                await asyncio.gather(*running)
        except BaseException:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise

    async def _run_part(self, client: AsyncClient, row: PartRow) -> None:
        spec = PartSpec(row.job_id, self.parent_id, row.part, len(self.state.rows), self.plan)
        try:
            result = await run_part(
                client,
                spec,
                self.handler,
                self.executor,
                self.options,
                sink=self._progress_sink,
                on_attempt=lambda n: setattr(row, "attempts", n),
            )
            self.state.move(
                row,
                result.status,
                finished_at=utcnow(),
                attempts=max(result.attempts, row.attempts),
                message=result.message,
                error=result.error,
                traceback=result.traceback,
                placed=result.placed,
                page_bytes=result.page_bytes,
                handler_s=result.cost.handler_s if result.cost else None,
                peak_alloc_bytes=result.cost.peak_alloc_bytes if result.cost else None,
            )
            self._count_workers()
        except Exception as exc:  # a bug of ours must not leave the part `running`
            error, tb = describe_error(exc)
            self.state.move(row, "pending", error=f"splitkit error: {error}", traceback=tb)
        finally:
            if row.worker is not None:
                self._free_workers.append(row.worker)
            await self.controls.part_ended()
            self._tell("part_changed")

    async def _cancel_pending(self, client: AsyncClient) -> None:
        """Cancel (on the server) the parts this run never started."""
        rows = [row for row in self.state.rows if row.status == "pending" and not row.error]
        semaphore = asyncio.Semaphore(8)

        async def cancel(row: PartRow) -> None:
            async with semaphore:
                try:
                    job = await client.cancel_job(row.job_id, info="canceled by splitkit")
                except InvalidTransitionError:
                    job = await client.get_job(row.job_id)
                status = OUTCOME_OF_ENDED_JOB.get(job.status, OutcomeStatus.PENDING).value
                self.state.move(row, status, finished_at=utcnow(), message=job.info)
                self._tell("part_changed")

        results = await asyncio.gather(*(cancel(row) for row in rows), return_exceptions=True)
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, Exception):
                row.error = f"could not cancel on the server: {describe_error(result)[0]}"

    # -- helpers ---------------------------------------------------------------------------
    def _take_worker(self) -> int:
        if self._free_workers:
            self._free_workers.sort()
            return self._free_workers.pop(0)
        return self.state.running  # concurrency was raised: a new lane

    def _count_workers(self) -> None:
        """How many workers the executor has (a Dask cluster's), for the panel and tqdm."""
        workers = getattr(self.executor, "workers", None)
        self.state.workers = workers if isinstance(workers, int) else None

    def _tell(self, event: str) -> None:
        """Call every observer's `event` method; an observer must never break the run."""
        for observer in self.observers:
            try:
                getattr(observer, event)(self.state)
            except Exception:
                log.exception("run observer %r failed in %s", observer, event)

    def _progress_sink(self, job_id: str, fraction: float, info: str | None) -> None:
        """Part.progress(): may be called from a handler's thread; acks on the loop."""
        now = time.monotonic()
        if now - self._last_progress.get(job_id, 0.0) < PROGRESS_INTERVAL_S and fraction < 1:
            return
        self._last_progress[job_id] = now
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._send_progress, job_id, fraction, info)

    def _send_progress(self, job_id: str, fraction: float, info: str | None) -> None:
        client = self._client
        if client is None:
            return
        task = asyncio.get_running_loop().create_task(
            _quiet(client.ack_job(job_id, info=info, progress=round(fraction * 100)))
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def _quiet(call: Any) -> None:
    try:
        await call
    except Exception as exc:  # progress is best effort; the part's own calls report errors
        log.debug("progress update failed: %s", exc)
