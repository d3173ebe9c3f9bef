"""Every endpoint, once: what to send and how to read the answer. No I/O.

Each function checks its arguments (``ValueError``) and returns an
``Operation``: method, path (relative to the base URL), query params, JSON
body and a ``parse`` function from response bytes to the result. ``Client``
and ``AsyncClient`` only send them.

Work that takes several requests (paging through a job's parts) is a
generator that yields operations and receives their parsed results; both send
loops drive the same generator (the shape of ``httpx/_auth.py``).

Query values are encoded as the official SDKs do: ``true``/``false`` for
bools, repeated keys for lists, ISO-8601 with ``Z`` for datetimes.
Extra ``**fields`` may be given in snake_case or camelCase; top-level keys
become camelCase on the wire (nested dicts are sent untouched).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import orjson
import pandas as pd

from splitkit._checks import (
    boolean,
    integer,
    non_empty_str,
    optional_mapping,
    optional_str,
)
from splitkit.api.frames import records_body, records_frame
from splitkit.api.models import Event, Job, RecordCounts

# The endpoint functions are used as `operations.get_job(...)`; only the types are re-exported.
__all__ = ["Flow", "Operation", "Page"]

T = TypeVar("T")
R = TypeVar("R")

MAX_RECORDS_PAGE_SIZE = 10_000
MAX_EVENTS_PAGE_SIZE = 1_000
MAX_JOBS_PAGE_SIZE = 10_000
TRIGGERS = ("immediate", "manual")

Params = tuple[tuple[str, str], ...]


# Methods HTTP defines as safe to send twice (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Operation(Generic[T]):
    """One request and the reader of its answer. ``json=None`` sends no body.

    ``idempotent`` says whether sending the request twice has the effect of
    sending it once, so the client may resend it after a doubtful failure (a
    500/502/504, or an answer lost after sending). Left as None it follows the
    method (``IDEMPOTENT_METHODS``: a POST is not); after construction it is
    always a bool.
    """

    method: str
    path: str
    parse: Callable[[bytes], T]
    params: Params = ()
    json: Any = None
    idempotent: bool | None = None

    def __post_init__(self) -> None:
        if self.idempotent is None:
            object.__setattr__(self, "idempotent", self.method in IDEMPOTENT_METHODS)
        elif not isinstance(self.idempotent, bool):
            raise ValueError(f"idempotent must be True, False or None, got {self.idempotent!r}")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """A page of a list, with the ``pagination`` object when the server sent one."""

    items: list[T]
    pagination: Mapping[str, Any] | None = None


# A multi-request flow: yields operations, is sent their results, returns R.
Flow = Generator[Operation[Any], Any, R]


# -- encoding ------------------------------------------------------------------------------


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _wire_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {_camel(k): v for k, v in fields.items() if v is not None}


def _iso(value: datetime) -> str:
    # Naive datetimes are taken as UTC, like the server's own timestamps.
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def _query_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(
        f"{key} must be a string, number, bool, datetime or a list of them, got {value!r:.100}"
    )


def encode_query(params: Mapping[str, Any]) -> Params:
    """Query params as pairs: ``None`` dropped, bools lower-case, lists repeated."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        pairs.extend((_camel(key), _query_value(key, v)) for v in values)
    return tuple(pairs)


def _segment(name: str, value: object) -> str:
    """An id as one path segment, escaped so it can never change the route."""
    return quote(non_empty_str(name, value), safe="")


# -- decoding ------------------------------------------------------------------------------


def _data(content: bytes) -> Any:
    return orjson.loads(content)["data"]


def _dict(content: bytes) -> dict[str, Any]:
    data = _data(content)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object in data, got {type(data).__name__}")
    return data


def _dicts(content: bytes) -> list[dict[str, Any]]:
    data = _data(content)
    if not isinstance(data, list):
        raise ValueError(f"expected a JSON array in data, got {type(data).__name__}")
    return data


def _job(content: bytes) -> Job:
    return Job.from_wire(_dict(content))


def _jobs_page(content: bytes) -> Page[Job]:
    body = orjson.loads(content)
    return Page([Job.from_wire(j) for j in body["data"]], body.get("pagination"))


def _jobs(content: bytes) -> list[Job]:
    return _jobs_page(content).items


def _event(content: bytes) -> Event:
    return Event.from_wire(_dict(content))


def _events(content: bytes) -> list[Event]:
    return [Event.from_wire(e) for e in _dicts(content)]


def _counts(content: bytes) -> RecordCounts:
    return RecordCounts.from_wire(_dict(content))


def _nothing(content: bytes) -> None:
    return None


# -- environments, spaces, workbooks, sheets -----------------------------------------------


def list_environments() -> Operation[list[dict[str, Any]]]:
    return Operation("GET", "/environments", _dicts)


def create_space(
    name: str | None = None, environment_id: str | None = None, **fields: Any
) -> Operation[dict[str, Any]]:
    body = _wire_fields(
        {"name": optional_str("name", name), "environment_id": environment_id, **fields}
    )
    return Operation("POST", "/spaces", _dict, json=body)


def create_workbook(
    name: str,
    sheets: Sequence[Mapping[str, Any]],
    *,
    space_id: str,
    environment_id: str | None = None,
    **fields: Any,
) -> Operation[dict[str, Any]]:
    non_empty_str("name", name)
    if isinstance(sheets, str | bytes | Mapping) or not isinstance(sheets, Sequence):
        raise ValueError(f"sheets must be a list of sheet configs, got {sheets!r:.100}")
    for i, sheet in enumerate(sheets):
        if not isinstance(sheet, Mapping):
            raise ValueError(f"sheets[{i}] must be a dict (a sheet config), got {sheet!r:.100}")
    _segment("space_id", space_id)
    body = _wire_fields(
        {
            "name": name,
            "space_id": space_id,
            "environment_id": environment_id,
            "sheets": [dict(s) for s in sheets],
            **fields,
        }
    )
    return Operation("POST", "/workbooks", _dict, json=body)


def get_workbook(workbook_id: str) -> Operation[dict[str, Any]]:
    return Operation("GET", f"/workbooks/{_segment('workbook_id', workbook_id)}", _dict)


def list_sheets(workbook_id: str) -> Operation[list[dict[str, Any]]]:
    _segment("workbook_id", workbook_id)
    return Operation("GET", "/sheets", _dicts, encode_query({"workbook_id": workbook_id}))


def get_sheet(sheet_id: str) -> Operation[dict[str, Any]]:
    return Operation("GET", f"/sheets/{_segment('sheet_id', sheet_id)}", _dict)


# -- records -------------------------------------------------------------------------------


def get_counts(sheet_id: str) -> Operation[RecordCounts]:
    return Operation("GET", f"/sheets/{_segment('sheet_id', sheet_id)}/counts", _counts)


def get_records(
    sheet_id: str, *, page_number: int = 1, page_size: int = MAX_RECORDS_PAGE_SIZE
) -> Operation[pd.DataFrame]:
    return _records_page(sheet_id, page_number, page_size, records_frame)


def get_records_raw(
    sheet_id: str, *, page_number: int = 1, page_size: int = MAX_RECORDS_PAGE_SIZE
) -> Operation[bytes]:
    """The page's response body as it came: for parsing later, or elsewhere."""
    return _records_page(sheet_id, page_number, page_size, bytes)


def _records_page(
    sheet_id: str, page_number: int, page_size: int, parse: Callable[[bytes], T]
) -> Operation[T]:
    path = f"/sheets/{_segment('sheet_id', sheet_id)}/records"
    query = encode_query(
        {
            "page_number": integer("page_number", page_number, low=1),
            "page_size": integer("page_size", page_size, low=1, high=MAX_RECORDS_PAGE_SIZE),
        }
    )
    return Operation("GET", path, parse, query)


def insert_records(
    sheet_id: str, records: pd.DataFrame | Sequence[Mapping[str, Any]]
) -> Operation[int]:
    path = f"/sheets/{_segment('sheet_id', sheet_id)}/records"
    body = records_body(records)

    def parse(content: bytes) -> int:
        # Part B marks `records` optional in the answer: fall back to what was sent.
        data = _data(content)
        sent = data.get("records") if isinstance(data, dict) else None
        return len(sent) if isinstance(sent, list) else len(body)

    return Operation("POST", path, parse, json=body)


# -- jobs ----------------------------------------------------------------------------------


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
    body = _wire_fields(
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
    return Operation("GET", f"/jobs/{_segment('job_id', job_id)}", _job)


def list_jobs_page(
    *,
    parent_id: str | None = None,
    page_number: int = 1,
    page_size: int = 100,
    **filters: Any,
) -> Operation[Page[Job]]:
    if parent_id is not None:
        _segment("parent_id", parent_id)
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
    # Check here: a generator's body would only run at the first send.
    _segment("parent_id", parent_id)
    integer("page_size", page_size, low=1, high=MAX_JOBS_PAGE_SIZE)
    return _list_parts(parent_id, page_size)


def _list_parts(parent_id: str, page_size: int) -> Flow[list[Job]]:
    parts: list[Job] = []
    page_number = 1
    while True:
        page: Page[Job] = yield list_jobs_page(
            parent_id=parent_id, page_number=page_number, page_size=page_size
        )
        parts.extend(page.items)
        # Stop on a short page, or when the server says this was the last one.
        last = (page.pagination or {}).get("pageCount")
        if len(page.items) < page_size or (isinstance(last, int) and page_number >= last):
            break
        page_number += 1
    return sorted(parts, key=lambda job: (job.part is None, job.part or 0))


def update_job(job_id: str, **fields: Any) -> Operation[Job]:
    if not fields:
        raise ValueError("update_job needs at least one field to change, e.g. progress=50")
    path = f"/jobs/{_segment('job_id', job_id)}"
    return Operation("PATCH", path, _job, json=_wire_fields(fields))


def execute_job(job_id: str) -> Operation[None]:
    return Operation("POST", f"/jobs/{_segment('job_id', job_id)}/execute", _nothing)


def ack_job(job_id: str, *, info: str | None = None, progress: int | None = None) -> Operation[Job]:
    if progress is not None:
        progress = integer("progress", progress, low=0, high=100)
    body = _wire_fields({"info": optional_str("info", info), "progress": progress})
    # An ack without details goes without a body, as the Node SDK sends it.
    path = f"/jobs/{_segment('job_id', job_id)}/ack"
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
    body = _wire_fields({"outcome": outcome, "info": optional_str("info", info)})
    path = f"/jobs/{_segment('job_id', job_id)}/{verb}"
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
    body = _wire_fields({"info": optional_str("info", info)})
    path = f"/jobs/{_segment('job_id', job_id)}/cancel"
    return Operation("POST", path, _job, json=body or None)


def retry_job(job_id: str) -> Operation[Job]:
    return Operation("POST", f"/jobs/{_segment('job_id', job_id)}/retry", _job)


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
    return Operation("POST", f"/jobs/{_segment('job_id', job_id)}/split", _job, json=body)


# -- events --------------------------------------------------------------------------------


def list_events(
    *,
    since: datetime | str | None = None,
    topic: str | None = None,
    domain: str | None = None,
    include_acknowledged: bool = False,
    page_number: int = 1,
    page_size: int = 100,
    environment_id: str | None = None,
    after_sequence: int | None = None,
) -> Operation[list[Event]]:
    """``after_sequence`` (exclusive) is the embedded server's event cursor (events carry a
    ``sequence``); the real platform has no such parameter."""
    if since is not None and not isinstance(since, datetime | str):
        raise ValueError(f"since must be a datetime, an ISO-8601 string or None, got {since!r}")
    if not isinstance(include_acknowledged, bool):
        raise ValueError(
            f"include_acknowledged must be True or False, got {include_acknowledged!r}"
        )
    query = encode_query(
        {
            "environment_id": environment_id,
            "since": since,
            "after_sequence": (
                None if after_sequence is None else integer("after_sequence", after_sequence, low=0)
            ),
            "topic": optional_str("topic", topic),
            "domain": optional_str("domain", domain),
            "include_acknowledged": include_acknowledged,
            "page_number": integer("page_number", page_number, low=1),
            "page_size": integer("page_size", page_size, low=1, high=MAX_EVENTS_PAGE_SIZE),
        }
    )
    return Operation("GET", "/events", _events, query)


def get_event(event_id: str) -> Operation[Event]:
    return Operation("GET", f"/events/{_segment('event_id', event_id)}", _event)


def ack_event(event_id: str) -> Operation[None]:
    # Acknowledging an acknowledged event changes nothing: safe to resend.
    path = f"/events/{_segment('event_id', event_id)}/ack"
    return Operation("POST", path, _nothing, idempotent=True)
