"""One part, start to end: the core shared by the dispatch engine and the listener.

`run_part` acks the part, fetches its page of records, runs the handler in the executor
under the timeout, and ends the part on the server: complete with what the handler
returned, or fail with what it raised. Who retries what:

- Requests are retried by the client only (`RetryPolicy`, A attempts per call, 4 by
  default): there, and nowhere else, a request the server certainly did not process is
  sent again. This module never resends a request on its own account.
- If the ack or the page fetch cannot get through, the part is left open (`pending`, with
  the reason): its handler never ran, so it is not failed, and a later run picks it up.
- `retries` / `retry_on` re-run only the handler, when the handler itself raised one of
  `retry_on` (records are fetched once). A part is `failed` only because its handler
  raised, timed out, or returned what cannot be sent.
- Ending the part (complete or fail) is a reconcile loop within `delivery_window_s`:
  send; on a refused transition or a doubtful error (5xx, 429, no answer: the server may
  have processed the request) read the job: ended the same way → done; ended another way →
  the server's status is reported; still open → back off and send again. When the window
  has elapsed, or the server refuses for good (401, 404, ...), the part is `pending` with
  the reason: a handler's result is never dropped after a few errors, and a part is never
  recorded failed while the server may have completed it.

The most requests one part makes, with A the client's attempts per call and R the
delivery rounds that fit in the window (`most_requests()` computes it)::

    ack (A) + fetch or, for a refused ack, one read (A) + R × (send (A) + read (A))
    = 2A(R + 1)

R is 1 + the backoff waits whose sum stays under the window; the waits start at
`backoff_initial_s` and double up to `backoff_max_s`, so the defaults (60 s, 0.2 → 5 s)
give R = 16, and with A = 4 at most 136 requests; a part that meets no fault makes 3.
`Part.progress()` adds best-effort acks on top, at most two a second while the handler runs.

`run_part` never raises for a part's trouble: it returns a `PartResult` whose status is
what the server says the part is.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from splitkit.api import AsyncClient, Job
from splitkit.api.encoding import dumps
from splitkit.api.errors import (
    ConnectionFailedError,
    InvalidTransitionError,
    RateLimitedError,
    ServerError,
)
from splitkit.engine.executors import Executor, Handler
from splitkit.engine.memory import HandlerCost, measure
from splitkit.engine.part import Part, ProgressSink
from splitkit.engine.part_options import PartOptions
from splitkit.engine.tracebacks import describe_error
from splitkit.errors import PartLeftOpenError, PartTimeoutError
from splitkit.statuses import OUTCOME_OF_ENDED_JOB, job_status_of

SHEET_ID_PREFIX = "us_sh_"
# Errors after which a request may or may not have been processed: ask the server.
DOUBTFUL = (ConnectionFailedError, RateLimitedError, ServerError)


def most_requests(options: PartOptions, client_attempts: int) -> int:
    """The most requests `run_part` makes for one part (see the module docstring)."""
    return 2 * client_attempts * (options.delivery_rounds() + 1)


@dataclass(frozen=True)
class PartResult:
    """How a part ended: `status` is completed, failed, canceled, or pending (left open)."""

    status: str
    attempts: int
    message: str | None = None
    error: str | None = None
    traceback: str | None = None
    # What the part cost (`engine/memory.py`): None where not measured.
    page_bytes: int | None = None
    cost: HandlerCost | None = None
    placed: str | None = None  # the worker that ran the last attempt (Dask), if it says


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
    try:
        job = await client.ack_job(
            spec.job_id,
            info=f"splitkit: part {spec.index} started ({spec.total} parts, numbered from 0)",
            progress=0,
        )
    except InvalidTransitionError:  # ended, or waiting: not ours to run
        return await _server_says(client, spec.job_id, 0)
    except Exception as exc:  # the client has resent what it safely could
        return _left_open(0, "could not start the part", exc)
    try:
        page_number, page_size, _ = page_of(job, spec.plan)
        # An executor whose workers read their own pages (Dask) gets where the page is.
        remote = getattr(executor, "remote_page", None)
        page = remote(client.config, job, page_number, page_size) if remote else None
        records = page or await fetch_records(client, job, page_number, page_size)
    except Exception as exc:
        return _left_open(0, "could not read the part's records", exc)

    attempts = 0
    cost = HandlerCost()
    placed: str | None = None
    # What a remote executor (Dask) knows of an attempt: read (and so dropped) after each.
    handler_seconds = getattr(executor, "handler_seconds", None)
    placement = getattr(executor, "placement", None)

    async def attempt(number: int) -> Any:
        nonlocal attempts, cost, placed
        attempts = number
        if on_attempt is not None:
            on_attempt(number)
        part = Part(
            job_id=job.id,
            parent_id=spec.parent_id,
            index=spec.index,
            part_data=dict(job.part_data or {}),
            records=records,
            attempt=number,
            sink=sink,
        )
        try:
            with measure(spec.index, executor, options.measure_memory) as cost:
                return await _call_handler(executor, handler, part, options.timeout_s)
        finally:
            # A remote executor's own measure (Dask's worker) beats the time this side waited.
            remote_s = handler_seconds(job.id) if handler_seconds is not None else None
            if remote_s is not None:
                cost.handler_s = remote_s
            placed = placement(job.id) if placement is not None else None  # this attempt's

    try:
        result = await options.run_retrying(attempt)
        message, outcome = result_as_outcome(result, spec.index)
        dumps(outcome)  # the wire's own encoder: what it cannot send fails the part, with why
    except PartLeftOpenError as exc:  # the executor could not run it (page unread, cluster gone)
        return dataclasses.replace(
            _left_open(attempts, "the handler could not run", exc), placed=placed
        )
    except Exception as exc:
        error, tb = describe_error(exc)
        ended = await end_part(client, spec.job_id, attempts, options, "failed", error=error, tb=tb)
    else:
        ended = await end_part(
            client, spec.job_id, attempts, options, "completed", message=message, outcome=outcome
        )
    page_bytes = len(records) if isinstance(records, bytes) else None
    return dataclasses.replace(ended, page_bytes=page_bytes, cost=cost, placed=placed)


async def _call_handler(
    executor: Executor, handler: Handler, part: Part, timeout_s: float | None
) -> Any:
    """The handler's result; `PartTimeoutError` only when the per-part timeout expired (a
    handler's own TimeoutError or socket.timeout is its own error, raised as itself)."""
    scope = asyncio.timeout(timeout_s)
    try:
        async with scope:
            return await executor.run(handler, part)
    except TimeoutError:
        if scope.expired():
            # A sync handler in a thread cannot be stopped; its late result is dropped.
            # An executor whose clock starts before the handler (Dask: queued, grouped)
            # says what counted.
            counted = getattr(executor, "timeout_counts", "")
            raise PartTimeoutError(f"handler timed out after {timeout_s:g} s{counted}") from None
        raise


async def end_part(
    client: AsyncClient,
    job_id: str,
    attempts: int,
    options: PartOptions,
    status: str,
    *,
    message: str | None = None,
    outcome: dict[str, Any] | None = None,
    error: str | None = None,
    tb: str | None = None,
) -> PartResult:
    """Complete (`status="completed"`) or fail the part, reconciling with the server until
    it has the part's end or the delivery window has elapsed (see the module docstring)."""
    verb = "complete" if status == "completed" else "fail"
    ours = (
        PartResult("completed", attempts, message=message)
        if status == "completed"
        else PartResult("failed", attempts, message=error, error=error, traceback=tb)
    )

    async def round_() -> PartResult | str:
        """The part's end, or why it is still open (then the loop sends again)."""
        try:
            if status == "completed":
                await client.complete_job(job_id, outcome=outcome)
            else:
                await fail_part(client, job_id, error or "failed")
            return ours
        except (InvalidTransitionError, *DOUBTFUL) as exc:
            doubt = exc
        except Exception as exc:  # refused for good (401, 404, 400): sending again cannot help
            return _left_open(attempts, f"could not {verb} the part", exc, error, tb)
        reason = describe_error(doubt)[0]
        if isinstance(doubt, ConnectionFailedError) and not doubt.request_sent:
            return reason  # certainly never arrived: nothing to read, send again
        try:
            job = await client.get_job(job_id)
        except DOUBTFUL as exc:
            return f"{reason}; then reading the part: {describe_error(exc)[0]}"
        except Exception as exc:
            return _left_open(attempts, "could not read the part", exc, error, tb)
        if job.status == job_status_of(status):
            return ours  # an earlier send got through; its answer was lost
        if job.is_terminal:
            return _as_server_has_it(job, attempts, error, tb)
        return reason

    result: PartResult | str = await options.deliver(round_)
    if isinstance(result, PartResult):
        return result
    window = options.delivery_window_s
    unsent = f"could not record the outcome on the server within {window:g} s: {result}"
    return PartResult(
        "pending", attempts, error=f"{error}; {unsent}" if error else unsent, traceback=tb
    )


def _left_open(
    attempts: int,
    doing: str,
    exc: BaseException,
    error: str | None = None,
    tb: str | None = None,
) -> PartResult:
    """The part stays open on the server, `pending` here with why (a later run takes it)."""
    why = f"{doing}: {describe_error(exc)[0]}; left open for a later run"
    return PartResult("pending", attempts, error=f"{error}; {why}" if error else why, traceback=tb)


async def _server_says(client: AsyncClient, job_id: str, attempts: int) -> PartResult:
    """The part as the server has it (ack refused: ended, or not ready to run)."""
    try:
        job = await client.get_job(job_id)
    except Exception as exc:
        return _left_open(attempts, "the server could not be asked about the part", exc)
    if not job.is_terminal:
        return PartResult(
            "pending",
            attempts,
            error=f"the part is {job.status} on the server: not run by this run",
        )
    return _as_server_has_it(job, attempts)


def _as_server_has_it(
    job: Job, attempts: int, error: str | None = None, tb: str | None = None
) -> PartResult:
    """An ended part's result as the server has it (maybe not as this run would have)."""
    status = OUTCOME_OF_ENDED_JOB[job.status].value
    server_message = outcome_message(job.outcome)
    if status == "completed":
        return PartResult(status, attempts, message=server_message)
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
        message = f"Part {index} processed"  # 0-based, as the `part` column
        return message, {"message": message}
    if isinstance(result, str):
        return result, {"message": result}
    if isinstance(result, Mapping):
        outcome = dict(result)
        message = str(outcome.get("message") or f"Part {index} processed")
        outcome["message"] = message
        return message, outcome
    raise TypeError(
        f"a handler returns None, a message (str) or an outcome (dict), got {type(result).__name__}"
    )


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
