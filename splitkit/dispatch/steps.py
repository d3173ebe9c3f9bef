"""One part, start to end: the core shared by the dispatch engine and the listener.

`run_part` acks the part, fetches its page of records, runs the handler in the executor
under the timeout, and ends the part on the server: complete with what the handler
returned, or fail with what it raised. Transient errors (connection, 429, 5xx) retry the
attempt with backoff; a handler's own exception fails the part at once.

It never raises for a part's trouble: it returns a `PartResult` whose status is what the
server says the part is. Where the server cannot be asked (it stays down), the status is
`pending` with the error: the part is left to a later run, never recorded as failed while
the server may have completed it.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from splitkit.api import AsyncClient, Job
from splitkit.api.errors import (
    ConnectionFailedError,
    InvalidTransitionError,
    RateLimitedError,
    ServerError,
)
from splitkit.dispatch.executors import Executor, Handler
from splitkit.dispatch.part import Part, ProgressSink

SHEET_ID_PREFIX = "us_sh_"
TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionFailedError,
    RateLimitedError,
    ServerError,
)
# The server's job statuses, as outcome statuses.
FROM_JOB_STATUS = {"complete": "completed", "failed": "failed", "canceled": "canceled"}


class PartTimeoutError(Exception):
    """The handler ran longer than the per-part timeout."""


class PartNotRunnable(Exception):
    """The server refused to start the part (ended or waiting): it is not ours to run."""


@dataclass(frozen=True)
class PartOptions:
    timeout_s: float | None = None
    retries: int = 2
    retry_on: tuple[type[BaseException], ...] = TRANSIENT
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0

    def retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential_jitter(
                multiplier=self.backoff_initial_s,
                jitter=self.backoff_initial_s,
                max=self.backoff_max_s,
            ),
            retry=retry_if_exception_type(self.retry_on),
            reraise=True,
        )


@dataclass(frozen=True)
class PartResult:
    """How a part ended: `status` is completed, failed, canceled, or pending (left open)."""

    status: str
    attempts: int
    message: str | None = None
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class PartSpec:
    """What the runner knows of a part before it starts: its job, place and page."""

    job_id: str
    parent_id: str
    index: int
    total: int
    plan: pd.DataFrame | None = None


async def run_part(
    client: AsyncClient,
    spec: PartSpec,
    handler: Handler,
    executor: Executor,
    options: PartOptions,
    *,
    sink: ProgressSink | None = None,
    on_attempt: Callable[[int], None] | None = None,
) -> PartResult:
    """Run one part to its end on the server. Never raises for the part's own trouble."""
    attempts = 0
    try:
        async for attempt in options.retrying():
            with attempt:
                attempts = attempt.retry_state.attempt_number
                if on_attempt is not None:
                    on_attempt(attempts)
                message, outcome = await _attempt(
                    client, spec, handler, executor, options, attempts, sink
                )
    except PartNotRunnable:
        return await _server_says(client, spec.job_id, attempts)
    except Exception as exc:
        error, tb = describe_error(exc)
        return await _end(client, spec.job_id, attempts, "failed", error=error, tb=tb)
    return await _end(client, spec.job_id, attempts, "completed", message=message, outcome=outcome)


async def _attempt(
    client: AsyncClient,
    spec: PartSpec,
    handler: Handler,
    executor: Executor,
    options: PartOptions,
    attempt: int,
    sink: ProgressSink | None,
) -> tuple[str, dict[str, Any]]:
    try:
        job = await client.ack_job(
            spec.job_id, info=f"splitkit: part {spec.index + 1}/{spec.total} started", progress=0
        )
    except InvalidTransitionError as exc:
        raise PartNotRunnable(str(exc)) from exc
    page_number, page_size, _ = page_of(job, spec.plan)
    part = Part(
        job_id=job.id,
        parent_id=spec.parent_id,
        index=spec.index,
        part_data=dict(job.part_data or {}),
        records=await fetch_records(client, job, page_number, page_size),
        attempt=attempt,
        sink=sink,
    )
    try:
        result = await asyncio.wait_for(executor.run(handler, part), options.timeout_s)
    except TimeoutError:
        # A sync handler in a thread cannot be stopped; its late result is dropped.
        raise PartTimeoutError(f"handler timed out after {options.timeout_s:g} s") from None
    message, outcome = result_as_outcome(result, spec.index)
    orjson.dumps(outcome)  # a result the server cannot take fails the part, with the reason
    return message, outcome


async def _end(
    client: AsyncClient,
    job_id: str,
    attempts: int,
    status: str,
    *,
    message: str | None = None,
    outcome: dict[str, Any] | None = None,
    error: str | None = None,
    tb: str | None = None,
) -> PartResult:
    """Complete or fail the part; on doubt, ask the server what it is."""
    try:
        async for attempt in PartOptions().retrying():
            with attempt:
                if status == "completed":
                    await client.complete_job(job_id, outcome=outcome)
                else:
                    await fail_part(client, job_id, error or "failed")
    except InvalidTransitionError:
        # Ended some other way meanwhile (canceled, or completed by a retried request).
        return await _server_says(client, job_id, attempts, error=error, tb=tb)
    except Exception as exc:
        unsent = f"could not record the outcome on the server: {describe_error(exc)[0]}"
        return await _server_says(
            client, job_id, attempts, error=f"{error}; {unsent}" if error else unsent, tb=tb
        )
    if status == "completed":
        return PartResult("completed", attempts, message=message)
    return PartResult("failed", attempts, message=error, error=error, traceback=tb)


async def _server_says(
    client: AsyncClient,
    job_id: str,
    attempts: int,
    *,
    error: str | None = None,
    tb: str | None = None,
) -> PartResult:
    """The part's status as the server has it; `pending` when it has not ended (or the
    server cannot be asked), so that a later run picks it up."""
    try:
        job = await client.get_job(job_id)
    except Exception as exc:
        lost = f"the server could not be asked how the part ended: {describe_error(exc)[0]}"
        return PartResult("pending", attempts, error=f"{error}; {lost}" if error else lost)
    status = FROM_JOB_STATUS.get(job.status, "pending")
    server_message = outcome_message(job.outcome)
    if status == "completed":
        return PartResult(status, attempts, message=server_message)
    if status == "pending":
        error = error or f"the part is {job.status} on the server: not run by this run"
    return PartResult(
        status, attempts, message=server_message, error=error or job.info, traceback=tb
    )


def page_of(job: Job, plan: pd.DataFrame | None = None) -> tuple[int, int, int]:
    """(page_number, page_size, records) of a part: from its partData, else from the plan."""
    data = job.part_data or {}
    if "pageNumber" in data and "pageSize" in data:
        return int(data["pageNumber"]), int(data["pageSize"]), int(data.get("records", 0))
    index = part_index(job)
    if plan is not None and index < len(plan):
        row = plan.iloc[index]
        return int(row["page_number"]), int(row["page_size"]), int(row["records"])
    raise ValueError(
        f"part {job.id} carries no page (partData has no pageNumber/pageSize): "
        "pass the plan it was split from as plan="
    )


def part_index(job: Job) -> int:
    data = job.part_data or {}
    return int(job.part if job.part is not None else data.get("part", 0))


async def fetch_records(
    client: AsyncClient, job: Job, page_number: int, page_size: int
) -> pd.DataFrame | bytes:
    """The part's page of its sheet, unparsed (`Part.records` parses it when first read);
    an empty frame for a job whose source is not a sheet (a part of a file or workbook job
    has no records to read)."""
    source = str(job.source or "")
    if not source.startswith(SHEET_ID_PREFIX):
        return pd.DataFrame(columns=["_id", "_valid"])
    return await client.get_records_raw(source, page_number=page_number, page_size=page_size)


def result_as_outcome(result: Any, index: int) -> tuple[str, dict[str, Any]]:
    """What a handler returned, as (message, JobOutcome) for the complete call."""
    if result is None:
        message = f"Part {index + 1} processed"
        return message, {"message": message}
    if isinstance(result, str):
        return result, {"message": result}
    if isinstance(result, Mapping):
        outcome = dict(result)
        message = str(outcome.get("message") or f"Part {index + 1} processed")
        outcome["message"] = message
        return message, outcome
    raise TypeError(
        f"a handler returns None, a message (str) or an outcome (dict), got {type(result).__name__}"
    )


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(one-line error, full traceback) of what a part raised."""
    return f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))


async def fail_part(client: AsyncClient, job_id: str, error: str) -> Job:
    """Fail a part with its error, shown to the user as the outcome (as plugin-job-handler)."""
    return await client.fail_job(
        job_id, message=error, info=error[:500], outcome={"acknowledge": True, "message": error}
    )


def outcome_message(outcome: Mapping[str, Any] | None) -> str | None:
    if isinstance(outcome, Mapping):
        message = outcome.get("message")
        return str(message) if message is not None else None
    return None
