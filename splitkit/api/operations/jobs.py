"""Jobs and their parts: create, read, list (one page, or every part of a parent as a
``Flow``), update, and the lifecycle (execute, ack, complete, fail, cancel, retry, split)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from splitkit._checks import boolean, integer, non_empty_str, optional_mapping, optional_str
from splitkit.api.models import Job
from splitkit.api.operations.operation import Flow, Operation, Page
from splitkit.api.operations.wire import data_dict, encode_query, nothing, segment, wire_fields

__all__ = [
    "MAX_JOBS_PAGE_SIZE",
    "TRIGGERS",
    "ack_job",
    "cancel_job",
    "complete_job",
    "create_job",
    "execute_job",
    "fail_job",
    "fold_parts",
    "get_job",
    "list_jobs",
    "list_jobs_page",
    "list_parts",
    "retry_job",
    "split_job",
    "update_job",
]

MAX_JOBS_PAGE_SIZE = 10_000
#: fold_parts' page: a smaller page bounds what a fold holds at once (~2.5 KB a Job).
FOLD_PAGE_SIZE = 1_000
TRIGGERS = ("immediate", "manual")


def _job(content: bytes) -> Job:
    return Job.from_wire(data_dict(content))


def _jobs_page(content: bytes) -> Page[Job]:
    body = orjson.loads(content)
    return Page([Job.from_wire(j) for j in body["data"]], body.get("pagination"))


def _jobs(content: bytes) -> list[Job]:
    return _jobs_page(content).items


def create_job(
    type: str,
    operation: str,
    source: str,
    *,
    trigger: str = "immediate",
    environment_id: str | None = None,
    **fields: Any,
) -> Operation[Job]:
    for name, value in (("type", type), ("operation", operation), ("source", source)):
        non_empty_str(name, value)
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be 'immediate' or 'manual', got {trigger!r}")
    body = wire_fields(
        {
            "type": type,
            "operation": operation,
            "source": source,
            "trigger": trigger,
            "environment_id": environment_id,
            **fields,
        }
    )
    return Operation("POST", "/jobs", _job, json=body)


def get_job(job_id: str) -> Operation[Job]:
    return Operation("GET", f"/jobs/{segment('job_id', job_id)}", _job)


def list_jobs_page(
    *,
    parent_id: str | None = None,
    page_number: int = 1,
    page_size: int = 100,
    **filters: Any,
) -> Operation[Page[Job]]:
    if parent_id is not None:
        segment("parent_id", parent_id)
    query = encode_query(
        {
            "parent_id": parent_id,
            **filters,
            "page_number": integer("page_number", page_number, low=1),
            "page_size": integer("page_size", page_size, low=1, high=MAX_JOBS_PAGE_SIZE),
        }
    )
    return Operation("GET", "/jobs", _jobs_page, query)


def list_jobs(
    *,
    parent_id: str | None = None,
    page_number: int = 1,
    page_size: int = 100,
    **filters: Any,
) -> Operation[list[Job]]:
    page = list_jobs_page(
        parent_id=parent_id, page_number=page_number, page_size=page_size, **filters
    )
    return Operation(page.method, page.path, _jobs, page.params, idempotent=page.idempotent)


def list_parts(parent_id: str, *, page_size: int = MAX_JOBS_PAGE_SIZE) -> Flow[list[Job]]:
    """Every part of ``parent_id``, all pages, ordered by part index."""
    parts: list[Job] = []
    flow = fold_parts(parent_id, parts.extend, page_size=page_size)
    return _sorted_parts(flow, parts)


def _sorted_parts(flow: Flow[int], parts: list[Job]) -> Flow[list[Job]]:
    yield from flow
    return sorted(parts, key=lambda job: (job.part is None, job.part or 0))


def fold_parts(
    parent_id: str, fold: Callable[[list[Job]], None], *, page_size: int = FOLD_PAGE_SIZE
) -> Flow[int]:
    """Every part of ``parent_id``, page by page: each page is handed to ``fold``, then
    dropped. Returns how many parts there were.

    ``list_parts`` keeps every part's ``Job`` (about 2.5 KB each: 250 MB at 100,000 parts);
    a caller that needs a few fields of each keeps those and lets the pages go (memory
    bounded by one page).
    """
    # Check here: a generator's body would only run at the first send.
    segment("parent_id", parent_id)
    integer("page_size", page_size, low=1, high=MAX_JOBS_PAGE_SIZE)
    return _fold_parts(parent_id, fold, page_size)


def _fold_parts(parent_id: str, fold: Callable[[list[Job]], None], page_size: int) -> Flow[int]:
    seen = 0
    page_number = 1
    while True:
        page: Page[Job] = yield list_jobs_page(
            parent_id=parent_id, page_number=page_number, page_size=page_size
        )
        fold(page.items)
        seen += len(page.items)
        # Stop on a short page, or when the server says this was the last one.
        last = (page.pagination or {}).get("pageCount")
        if len(page.items) < page_size or (isinstance(last, int) and page_number >= last):
            return seen
        page_number += 1


def update_job(job_id: str, **fields: Any) -> Operation[Job]:
    if not fields:
        raise ValueError("update_job needs at least one field to change, e.g. progress=50")
    path = f"/jobs/{segment('job_id', job_id)}"
    return Operation("PATCH", path, _job, json=wire_fields(fields))


def execute_job(job_id: str) -> Operation[None]:
    return Operation("POST", f"/jobs/{segment('job_id', job_id)}/execute", nothing)


def ack_job(job_id: str, *, info: str | None = None, progress: int | None = None) -> Operation[Job]:
    if progress is not None:
        progress = integer("progress", progress, low=0, high=100)
    body = wire_fields({"info": optional_str("info", info), "progress": progress})
    # An ack without details goes without a body, as the Node SDK sends it.
    path = f"/jobs/{segment('job_id', job_id)}/ack"
    # The server takes a second ack as an update (info, progress): safe to resend.
    return Operation("POST", path, _job, json=body or None, idempotent=True)


def _ending(
    verb: str,
    job_id: str,
    message: str | None,
    outcome: Mapping[str, Any] | None,
    info: str | None,
) -> Operation[Job]:
    outcome = optional_mapping("outcome", outcome)
    if optional_str("message", message) is not None:
        outcome = {**(outcome or {}), "message": message}
    body = wire_fields({"outcome": outcome, "info": optional_str("info", info)})
    path = f"/jobs/{segment('job_id', job_id)}/{verb}"
    return Operation("POST", path, _job, json=body or None)


def complete_job(
    job_id: str,
    *,
    message: str | None = None,
    outcome: Mapping[str, Any] | None = None,
    info: str | None = None,
) -> Operation[Job]:
    """``message`` is shorthand for ``outcome["message"]`` (and wins over it)."""
    return _ending("complete", job_id, message, outcome, info)


def fail_job(
    job_id: str,
    *,
    message: str | None = None,
    outcome: Mapping[str, Any] | None = None,
    info: str | None = None,
) -> Operation[Job]:
    """``message`` is shorthand for ``outcome["message"]`` (and wins over it)."""
    return _ending("fail", job_id, message, outcome, info)


def cancel_job(job_id: str, *, info: str | None = None) -> Operation[Job]:
    body = wire_fields({"info": optional_str("info", info)})
    path = f"/jobs/{segment('job_id', job_id)}/cancel"
    return Operation("POST", path, _job, json=body or None)


def retry_job(job_id: str) -> Operation[Job]:
    return Operation("POST", f"/jobs/{segment('job_id', job_id)}/retry", _job)


def split_job(
    job_id: str,
    parts: int | Sequence[Mapping[str, Any]],
    *,
    run_in_parallel: bool = True,
) -> Operation[Job]:
    """Split into ``parts`` parts (an int), or one part per dict of part data."""
    wire_parts: int | list[dict[str, Any]]
    if isinstance(parts, int) and not isinstance(parts, bool) and parts >= 1:
        wire_parts = parts
    elif isinstance(parts, Sequence) and not isinstance(parts, str | bytes) and parts:
        for i, part in enumerate(parts):
            if not isinstance(part, Mapping):
                raise ValueError(f"parts[{i}] must be a dict of part data, got {part!r:.100}")
        wire_parts = [dict(p) for p in parts]
    else:
        raise ValueError(
            f"parts must be a positive integer or a non-empty list of dicts, got {parts!r:.100}"
        )
    run_in_parallel = boolean("run_in_parallel", run_in_parallel)
    body = {"parts": wire_parts, "runInParallel": run_in_parallel}
    return Operation("POST", f"/jobs/{segment('job_id', job_id)}/split", _job, json=body)
