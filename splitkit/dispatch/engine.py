"""The async core of a dispatch: every part of a parent, acked, fed to the handler, ended.

One engine runs on one event loop (the handle's background thread). For each part not yet
ended on the server it waits for a slot (concurrency, pause, cancel), then:
ack → fetch the part's page of records → handler (in the executor, under the timeout) →
complete with the handler's result, or fail with the error. Transient errors (connection,
429, 5xx) retry the part with backoff; a handler's own exception fails the part at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from splitkit.api import AsyncClient, ClientConfig, Job
from splitkit.api.errors import (
    ConnectionFailedError,
    InvalidTransitionError,
    RateLimitedError,
    ServerError,
)
from splitkit.dispatch.controls import Controls
from splitkit.dispatch.executors import Executor, Handler
from splitkit.dispatch.part import Part
from splitkit.dispatch.progress import RunObserver
from splitkit.dispatch.state import FROM_JOB_STATUS, PartRow, RunState, utcnow
from splitkit.dispatch.steps import (
    describe_error,
    fail_part,
    fetch_records,
    outcome_message,
    page_of,
    part_index,
    run_handler,
)

log = logging.getLogger("splitkit.dispatch")

TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionFailedError,
    RateLimitedError,
    ServerError,
)
PROGRESS_INTERVAL_S = 0.5  # at most two progress acks a second per part


@dataclass(frozen=True)
class DispatchOptions:
    concurrency: int = 8
    timeout_s: float | None = None
    retries: int = 2
    retry_on: tuple[type[BaseException], ...] = TRANSIENT
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0


class Engine:
    def __init__(
        self,
        config: ClientConfig,
        parent_id: str,
        handler: Handler,
        *,
        options: DispatchOptions,
        executor: Executor,
        controls: Controls,
        state: RunState,
        observers: Sequence[RunObserver] = (),
        plan: pd.DataFrame | None = None,
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
        self._free_workers: list[int] = []
        self._last_progress: dict[str, float] = {}
        self._background: set[asyncio.Task[Any]] = set()
        # Set while running: Part.progress() reaches the server through them.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: AsyncClient | None = None

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.controls.bind(self._loop)
        self.controls.on_change(self._notify)
        try:
            async with AsyncClient.from_config(self.config) as client:
                self._client = client
                await self._load_parts(client)
                self._free_workers = list(range(self.controls.concurrency))
                for observer in self.observers:
                    observer.run_started(self.state)
                try:
                    await self._run_parts(client)
                finally:
                    if self.controls.cancelled:
                        await self._cancel_pending(client)
                    if self._background:
                        await asyncio.gather(*self._background, return_exceptions=True)
        finally:
            self.state.finished = time.monotonic()
            self._client = None
            self.controls.unbind()
            for observer in self.observers:
                observer.run_finished(self.state)

    # -- discovery ---------------------------------------------------------------------
    async def _load_parts(self, client: AsyncClient) -> None:
        parent = await client.get_job(self.parent_id)
        if parent.is_part:
            raise ValueError(
                f"job {self.parent_id} is a part of {parent.parent_id}; dispatch its parent"
            )
        parts = sorted(await client.list_parts(self.parent_id), key=part_index)
        if not parts:
            raise ValueError(
                f"job {self.parent_id} has no parts: split it first (splitkit.split_parent)"
            )
        rows = [self._row_for(job) for job in parts]
        self.state.add(rows)

    def _row_for(self, job: Job) -> PartRow:
        row = PartRow(part=part_index(job), job_id=job.id, records=self._page_of(job)[2])
        ended = FROM_JOB_STATUS.get(job.status)
        if ended is not None:
            # Ended on the server by an earlier run: kept in the frame, never run again.
            row.status = ended
            row.previous_run = True
            row.started_at = job.started_at
            row.finished_at = job.finished_at
            row.message = outcome_message(job.outcome)
            if ended == "failed":
                row.error = row.message or job.info
        return row

    def _page_of(self, job: Job) -> tuple[int, int, int]:
        return page_of(job, self.plan)

    # -- the loop ------------------------------------------------------------------------
    async def _run_parts(self, client: AsyncClient) -> None:
        running: set[asyncio.Task[None]] = set()
        pending = [row for row in self.state.rows if row.status == "pending"]
        try:
            for row in pending:
                if not await self.controls.slot(lambda: self.state.running):
                    break
                self.state.move(row, "running", started_at=utcnow(), worker=self._take_worker())
                self._notify()
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
        try:
            message, outcome = await self._attempts(client, row)
        except Exception as exc:
            await self._fail(client, row, exc)
        else:
            await self._complete(client, row, message, outcome)
        finally:
            if row.worker is not None:
                self._free_workers.append(row.worker)
            await self.controls.part_ended()
            self._notify()

    async def _attempts(self, client: AsyncClient, row: PartRow) -> tuple[str, dict[str, Any]]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.options.retries + 1),
            wait=wait_exponential_jitter(
                multiplier=self.options.backoff_initial_s,
                jitter=self.options.backoff_initial_s,
                max=self.options.backoff_max_s,
            ),
            retry=retry_if_exception_type(self.options.retry_on),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                row.attempts = attempt.retry_state.attempt_number
                return await self._attempt(client, row)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _attempt(self, client: AsyncClient, row: PartRow) -> tuple[str, dict[str, Any]]:
        total = len(self.state.rows)
        job = await client.ack_job(
            row.job_id, info=f"splitkit: part {row.part + 1}/{total} started", progress=0
        )
        page_number, page_size, _ = self._page_of(job)
        part = Part(
            job_id=job.id,
            parent_id=self.parent_id,
            index=row.part,
            part_data=dict(job.part_data or {}),
            records=await fetch_records(client, job, page_number, page_size),
            attempt=row.attempts,
            _sink=self._progress_sink,
        )
        return await run_handler(self.executor, self.handler, part, self.options.timeout_s)

    # -- ending a part -------------------------------------------------------------------
    async def _complete(
        self, client: AsyncClient, row: PartRow, message: str, outcome: dict[str, Any]
    ) -> None:
        try:
            await client.complete_job(row.job_id, outcome=outcome)
        except InvalidTransitionError:
            await self._adopt_server_status(client, row)
            return
        except Exception as exc:
            # The handler succeeded but the server never heard: the part stays open there,
            # so a later run picks it up again.
            self._end(row, "failed", error=f"could not complete on the server: {exc}")
            return
        self._end(row, "completed", message=message)

    async def _fail(self, client: AsyncClient, row: PartRow, exc: BaseException) -> None:
        error, tb = describe_error(exc)
        try:
            await fail_part(client, row.job_id, error)
        except InvalidTransitionError:
            await self._adopt_server_status(client, row, error=error, tb=tb)
            return
        except Exception as report_exc:
            error = f"{error} (and could not fail the part on the server: {report_exc})"
        self._end(row, "failed", error=error, traceback=tb, message=error)

    async def _adopt_server_status(
        self, client: AsyncClient, row: PartRow, error: str | None = None, tb: str | None = None
    ) -> None:
        """The part ended on the server some other way (e.g. canceled): record what it is."""
        job = await client.get_job(row.job_id)
        status = FROM_JOB_STATUS.get(job.status, "failed")
        self._end(row, status, error=error or job.info, traceback=tb)

    def _end(self, row: PartRow, status: str, **changes: Any) -> None:
        self.state.move(row, status, finished_at=utcnow(), **changes)

    async def _cancel_pending(self, client: AsyncClient) -> None:
        """Cancel (on the server) the parts this run never started."""
        rows = [row for row in self.state.rows if row.status == "pending"]
        semaphore = asyncio.Semaphore(max(self.controls.concurrency, 8))

        async def cancel(row: PartRow) -> None:
            async with semaphore:
                try:
                    await client.cancel_job(row.job_id, info="canceled by splitkit")
                except InvalidTransitionError:
                    await self._adopt_server_status(client, row)
                    return
                except Exception as exc:
                    row.error = f"could not cancel on the server: {exc}"
                self.state.move(row, "canceled", finished_at=utcnow())
                self._notify()

        await asyncio.gather(*(cancel(row) for row in rows))

    # -- helpers ---------------------------------------------------------------------------
    def _take_worker(self) -> int:
        if self._free_workers:
            self._free_workers.sort()
            return self._free_workers.pop(0)
        return self.state.running  # concurrency was raised: a new lane

    def _notify(self) -> None:
        for observer in self.observers:
            try:
                observer.part_changed(self.state)
            except Exception:  # an observer must never break the run
                log.exception("run observer failed")

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
