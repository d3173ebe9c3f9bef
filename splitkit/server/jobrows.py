"""A job as stored (one ``jobs`` row) and as sent (the wire dict), and its events.

The row keeps what the rules query or change in columns (status, parent, part, timestamps,
the parent's part counts) and the client's own fields as a JSON ``doc``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Final

import orjson

from splitkit.statuses import JobStatus

from . import events
from .clock import iso, iso_or_none, now_ms
from .errors import not_found

JSON = dict[str, Any]

# the status column of a part's parent counter that a terminal status increments
PART_COUNTER: Final[dict[str, str]] = {
    JobStatus.COMPLETE: "parts_completed",
    JobStatus.FAILED: "parts_failed",
    JobStatus.CANCELED: "parts_canceled",
}

COLUMNS: Final = (
    "id, environment_id, space_id, workbook_id, parent_id, part, status, created_ms, updated_ms,"
    " started_ms, finished_ms, doc, context, parts_total, parts_completed, parts_failed,"
    " parts_canceled, parts_round, parts_completed_round"
)


@dataclass
class JobRow:
    id: str
    environment_id: str
    space_id: str | None
    workbook_id: str | None
    parent_id: str | None
    part: int | None
    status: str
    created_ms: int
    updated_ms: int
    started_ms: int | None
    finished_ms: int | None
    doc: JSON
    context: JSON
    parts_total: int = 0
    parts_completed: int = 0
    parts_failed: int = 0
    parts_canceled: int = 0
    parts_round: int = 0
    parts_completed_round: int = 0

    @property
    def is_part(self) -> bool:
        return self.parent_id is not None

    @property
    def is_split(self) -> bool:
        return self.parts_total > 0

    @property
    def parts_ended(self) -> int:
        return self.parts_completed + self.parts_failed + self.parts_canceled

    def parts_counts(self) -> dict[str, int]:
        return {
            "total": self.parts_total,
            "completed": self.parts_completed,
            "failed": self.parts_failed,
            "canceled": self.parts_canceled,
        }


def _from_row(row: tuple[Any, ...]) -> JobRow:
    values = list(row)
    values[11] = orjson.loads(values[11])
    values[12] = orjson.loads(values[12])
    return JobRow(*values)


def load(conn: sqlite3.Connection, job_id: str) -> JobRow:
    row = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise not_found("job", job_id)
    return _from_row(row)


def load_where(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> list[JobRow]:
    rows = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE {where}", params).fetchall()
    return [_from_row(row) for row in rows]


def save(conn: sqlite3.Connection, job: JobRow) -> None:
    """Write back the mutable columns of ``job`` (its ``updatedAt`` moves to now)."""
    job.updated_ms = now_ms()
    conn.execute(
        "UPDATE jobs SET status = ?, updated_ms = ?, started_ms = ?, finished_ms = ?, doc = ?,"
        " parts_total = ?, parts_completed = ?, parts_failed = ?, parts_canceled = ?,"
        " parts_round = ?, parts_completed_round = ? WHERE id = ?",
        (
            job.status,
            job.updated_ms,
            job.started_ms,
            job.finished_ms,
            orjson.dumps(job.doc).decode(),
            job.parts_total,
            job.parts_completed,
            job.parts_failed,
            job.parts_canceled,
            job.parts_round,
            job.parts_completed_round,
            job.id,
        ),
    )


def insert_rows(conn: sqlite3.Connection, jobs: list[JobRow]) -> None:
    contexts: dict[int, str] = {}  # parts share their parent's context: encode it once
    conn.executemany(
        "INSERT INTO jobs (id, environment_id, space_id, workbook_id, parent_id, part, status,"
        " created_ms, updated_ms, doc, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                j.id,
                j.environment_id,
                j.space_id,
                j.workbook_id,
                j.parent_id,
                j.part,
                j.status,
                j.created_ms,
                j.updated_ms,
                orjson.dumps(j.doc).decode(),
                contexts.get(id(j.context))
                or contexts.setdefault(id(j.context), orjson.dumps(j.context).decode()),
            )
            for j in jobs
        ],
    )


def wire(job: JobRow) -> JSON:
    """The job as the API returns it (Flatfile's ``Job``)."""
    out: JSON = {"id": job.id, **job.doc, "status": job.status}
    out["createdAt"] = iso(job.created_ms)
    out["updatedAt"] = iso(job.updated_ms)
    out["startedAt"] = iso_or_none(job.started_ms)
    out["finishedAt"] = iso_or_none(job.finished_ms)
    if job.space_id is not None:
        out["spaceId"] = job.space_id
    return out


def payload(job: JobRow) -> JSON:
    """The payload every job event carries; ``isPart`` is always present (listener filters)."""
    out: JSON = {
        "job": f"{job.doc['type']}:{job.doc['operation']}",
        "operation": job.doc["operation"],
        "domain": job.doc["type"],
        "status": job.status,
        "isPart": job.is_part,
    }
    for key in ("info", "input"):
        if job.doc.get(key) is not None:
            out[key] = job.doc[key]
    return out


def event(topic: str, job: JobRow, extra: JSON | None = None) -> events.NewEvent:
    """The event ``topic`` about ``job``: its context and payload."""
    return events.NewEvent(
        topic,
        "job",
        {**job.context, "jobId": job.id},
        {**payload(job), **(extra or {})},
        job.context.get("sheetId"),
    )


def emit(conn: sqlite3.Connection, topic: str, job: JobRow, extra: JSON | None = None) -> str:
    """Write ``topic`` about ``job`` in the caller's transaction."""
    return events.emit(conn, event(topic, job, extra))[0]
