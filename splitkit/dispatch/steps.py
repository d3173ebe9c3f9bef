"""The steps of one part, shared by the dispatch engine and the event-driven listener:
find its page, fetch its records, run the handler under a timeout, turn what the handler
returned (or raised) into what the server is told."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Mapping
from typing import Any

import pandas as pd

from splitkit.api import AsyncClient, Job
from splitkit.dispatch.executors import Executor, Handler
from splitkit.dispatch.part import Part

SHEET_ID_PREFIX = "us_sh_"


class PartTimeoutError(Exception):
    """The handler ran longer than the per-part timeout."""


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
) -> pd.DataFrame:
    """The part's page of its sheet; an empty frame for a job whose source is not a sheet."""
    source = str(job.source or "")
    if not source.startswith(SHEET_ID_PREFIX):
        return pd.DataFrame(columns=["_id", "_valid"])
    return await client.get_records(source, page_number=page_number, page_size=page_size)


async def run_handler(
    executor: Executor, handler: Handler, part: Part, timeout_s: float | None
) -> tuple[str, dict[str, Any]]:
    """Run the handler in the executor under the timeout; its result as (message, outcome)."""
    try:
        result = await asyncio.wait_for(executor.run(handler, part), timeout_s)
    except TimeoutError:
        # A sync handler in a thread cannot be stopped; its late result is dropped.
        raise PartTimeoutError(f"handler timed out after {timeout_s:g} s") from None
    return result_as_outcome(result, part.index)


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
