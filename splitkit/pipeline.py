"""The API steps around dispatch: start a parent job, split it from a plan.

`split_parent` turns a plan (from `plan_parts`) into part jobs on the server. Each part's
`partData` carries its page of the sheet (`pageNumber`, `pageSize`, `firstRecord`,
`records`), so whoever processes a part, in this process or another, after a restart or
from a listener, can find its records without the plan.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from splitkit._checks import boolean, instance_of, non_empty_str
from splitkit.api import Client, Job
from splitkit.api import operations as ops
from splitkit.api.errors import (
    ConnectionFailedError,
    InvalidTransitionError,
    RateLimitedError,
    ServerError,
)
from splitkit.errors import SplitMismatchError
from splitkit.plan import PLAN_COLUMNS

__all__ = [
    "PART_JOB_COLUMNS",
    "SplitMismatchError",
    "join_parts",
    "part_data_for",
    "split_parent",
    "start_parent_job",
]

PART_JOB_COLUMNS = ["job_id", "status", "part_execution"]

# The partData keys a plan row sets; the server adds "part" and "total".
_PAGE_KEYS = ("pageNumber", "pageSize", "firstRecord", "records")

# Errors after which the split may or may not have happened: the answer was lost, or
# the server failed (possibly after splitting), or an earlier send had split it already.
_DOUBTFUL = (ServerError, ConnectionFailedError, RateLimitedError, InvalidTransitionError)


def start_parent_job(
    client: Client,
    sheet_id: str,
    *,
    operation: str = "submitLargeSheet",
    info: str | None = None,
) -> Job:
    """Create the parent job (`sheet:<operation>` on a sheet) and ack it, ready to split."""
    _check_client(client)
    non_empty_str("sheet_id", sheet_id, what="a sheet id string")
    non_empty_str("operation", operation)
    if info is not None:
        non_empty_str("info", info, what="a non-empty string or None")
    job = client.create_job("sheet", operation, sheet_id, trigger="immediate")
    return client.ack_job(job.id, info=info or "splitkit: planning parts", progress=0)


def part_data_for(plan: pd.DataFrame) -> list[dict[str, Any]]:
    """The `partData` object of each part, in plan order (what the server stores)."""
    _check_plan(plan)
    columns = zip(
        plan["page_number"].tolist(),
        plan["page_size"].tolist(),
        plan["first_record"].tolist(),
        plan["records"].tolist(),
        strict=True,
    )
    return [
        {"pageNumber": page, "pageSize": size, "firstRecord": first, "records": records}
        for page, size, first, records in columns
    ]


def split_parent(
    client: Client,
    parent_job_id: str,
    plan: pd.DataFrame,
    *,
    run_in_parallel: bool = True,
    check_counts: bool = True,
) -> pd.DataFrame:
    """Split the parent into one part per plan row; return the plan joined to the part jobs.

    The result has the plan's columns plus `job_id`, `status` and `part_execution`.
    An empty plan (a sheet with no records) cannot be split: there is nothing to do, and
    the parent can be settled (completed) directly.

    The plan must cover the records of the parent's sheet (a `sheet` job's `source`),
    no more and no fewer: parts past the sheet's end would have no records, and records
    past the plan's end would never be processed. A plan that does not is refused
    (`ValueError`, nothing split); `check_counts=False` splits it as planned anyway.

    Safe to call again, and safe when the split's answer is lost. When the split request
    fails with an error after which the parent may be split after all (no answer, 5xx,
    429) or is refused because the parent is already split, the parent's parts are
    listed:

    - split into exactly the planned parts (as many, and each part's `partData`
      `pageNumber`, `pageSize`, `firstRecord` and `records` equal to its plan row,
      and its `partExecution`, when the server gives one, matching `run_in_parallel`):
      returned as if this call had split it;
    - split otherwise: `SplitMismatchError` (a `ValueError`) naming the parts on the
      server and the plan's;
    - not split: the split's own error is raised.

    A split that failed for a doubtful reason is not sent again: the client already
    resends what certainly did not reach the server.
    """
    _check_client(client)
    _check_plan(plan)
    non_empty_str("parent_job_id", parent_job_id, what="a job id string")
    boolean("run_in_parallel", run_in_parallel)
    boolean("check_counts", check_counts)
    if len(plan) == 0:
        raise ValueError(
            "the plan has no parts (the sheet has no records): nothing to split; "
            "settle the parent directly, e.g. settle(client, parent_id, summarize(plan_outcomes))"
        )
    if check_counts:
        _check_plan_covers_sheet(client, parent_job_id, plan)
    planned = part_data_for(plan)
    try:
        client.split_job(parent_job_id, planned, run_in_parallel=run_in_parallel)
    except _DOUBTFUL as exc:
        # Reconcile from the server: our split may have gone through (an answer lost,
        # a gateway's 5xx after forwarding), or an earlier call made this very split.
        parts = client.list_parts(parent_job_id)
        if not parts:
            raise
        _check_same_split(parent_job_id, planned, run_in_parallel, parts, exc)
        return join_parts(plan, parts)
    return _join(plan, _part_columns(client, parent_job_id))


def _check_plan_covers_sheet(client: Client, parent_job_id: str, plan: pd.DataFrame) -> None:
    """ValueError unless the plan's records are the parent's sheet's records."""
    parent = client.get_job(parent_job_id)
    if parent.type != "sheet" or not parent.source:
        return  # only a sheet job names a sheet whose records can be counted
    total = client.get_counts(parent.source).total
    planned = int(plan["records"].sum())
    if planned == total:
        return
    if planned > total:
        harm = f"the parts past record {total:,} would have no records to process"
    else:
        harm = f"{total - planned:,} records after the plan's end would never be processed"
    raise ValueError(
        f"the plan covers {planned:,} records but sheet {parent.source} has {total:,} "
        f"(the source of parent job {parent_job_id}): {harm}. Plan from the sheet's count, "
        f"plan_parts(client.get_counts({parent.source!r}).total, batch_size=...), or pass "
        "check_counts=False to split as planned anyway"
    )


def _check_same_split(
    parent_job_id: str,
    planned: list[dict[str, Any]],
    run_in_parallel: bool,
    parts: list[Job],
    error: Exception,
) -> None:
    """Raise `SplitMismatchError` unless `parts` are exactly the planned parts."""
    execution = "parallel" if run_in_parallel else "sequential"
    by_index = {job.part: job for job in parts}
    if len(parts) != len(planned) or set(by_index) != set(range(len(planned))):
        raise SplitMismatchError(
            f"parent {parent_job_id} is already split into {len(parts)} parts, "
            f"not the {len(planned)} parts of the plan; make a new parent job for this plan"
        ) from error
    for index, want in enumerate(planned):
        job = by_index[index]
        have = {key: (job.part_data or {}).get(key) for key in _PAGE_KEYS}
        # partExecution is optional on the wire: compared only when the server gives it.
        if have != want or job.part_execution not in (None, execution):
            raise SplitMismatchError(
                f"parent {parent_job_id} is already split into {len(parts)} parts that differ "
                f"from the plan's: part {index} on the server is {have} "
                f"({job.part_execution}), the plan's is {want} ({execution}); "
                "make a new parent job for this plan"
            ) from error


def join_parts(plan: pd.DataFrame, parts: list[Job]) -> pd.DataFrame:
    """The plan with each row's part job (by part index) beside it."""
    columns: dict[str, list[Any]] = {"part": [], **{name: [] for name in PART_JOB_COLUMNS}}
    _add_columns(columns, parts)
    return _join(plan, columns)


def _add_columns(columns: dict[str, list[Any]], parts: list[Job]) -> None:
    columns["part"].extend(int(job.part if job.part is not None else -1) for job in parts)
    columns["job_id"].extend(job.id for job in parts)
    columns["status"].extend(job.status for job in parts)
    columns["part_execution"].extend(job.part_execution for job in parts)


def _part_columns(client: Client, parent_job_id: str) -> dict[str, list[Any]]:
    """The parts' columns of the join, page by page: 100,000 parts' Job objects (~2.5 KB
    each) are never all held at once."""
    columns: dict[str, list[Any]] = {"part": [], **{name: [] for name in PART_JOB_COLUMNS}}
    client._drive(ops.fold_parts(parent_job_id, lambda page: _add_columns(columns, page)))
    return columns


def _join(plan: pd.DataFrame, columns: dict[str, list[Any]]) -> pd.DataFrame:
    jobs = pd.DataFrame(columns)
    joined = plan.merge(jobs, on="part", how="left", validate="one_to_one")
    joined.attrs = dict(plan.attrs)
    return joined


def _check_client(client: object) -> None:
    # These steps call the client synchronously: an AsyncClient would hand back coroutines.
    instance_of("client", client, Client, "a splitkit Client")


def _check_plan(plan: Any) -> None:
    if not isinstance(plan, pd.DataFrame):
        raise TypeError(f"plan must be a DataFrame from plan_parts(), got {type(plan).__name__}")
    missing = [column for column in PLAN_COLUMNS if column not in plan.columns]
    if missing:
        raise ValueError(f"plan is missing columns {missing}; make it with plan_parts()")
