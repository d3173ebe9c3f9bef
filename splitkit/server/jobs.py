"""The job lifecycle: create, execute, ack, complete, fail, cancel, update, delete.

    created ──execute──► ready ──ack──► executing ──complete──► complete
       │  (trigger "immediate"  │             │    ──fail──────► failed
       │   skips created)       └─────────────┴────cancel──────► canceled
       └─ waiting: a sequential part until its predecessor ends

Each change and its events are one ``BEGIN IMMEDIATE`` transaction; a part that reaches
a terminal status is booked on its parent in that same transaction (see ``parts.py``).
A refused change is a 400 whose error has ``key: "transition"``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import Any, Final

from splitkit.statuses import JOB_TERMINAL, JobStatus

from . import events, parts
from .clock import iso, now_ms
from .errors import bad_request, not_found, refused
from .ids import new_id
from .jobrows import JSON, JobRow, emit, insert_rows, load, load_where, save, wire
from .resources import require_environment, source_context
from .store import Store

CONFIG_FIELDS: Final = frozenset(
    {"type", "operation", "source", "destination", "config", "trigger", "progress", "fileId",
     "mode", "input", "subject", "outcome", "info", "managed", "environmentId", "metadata"}
)  # fmt: skip
UPDATABLE: Final = frozenset({"config", "progress", "info", "metadata", "outcomeAcknowledgedAt"})
# A job can be acked (moved to, or kept, executing) until it ends; a waiting part cannot yet.
ACKABLE: Final = frozenset(JobStatus) - JOB_TERMINAL - {JobStatus.WAITING}
_OWN_PREFIXES: Final = {"us_sh_": "sheet", "us_wb_": "workbook", "us_sp_": "space"}


def create(store: Store, body: Mapping[str, Any]) -> JSON:
    doc = {k: v for k, v in body.items() if k in CONFIG_FIELDS and v is not None}
    doc.setdefault("trigger", "manual")
    source = doc["source"]
    now = now_ms()
    with store.write() as conn:
        context = source_context(conn, source) or {}
        kind = next((k for p, k in _OWN_PREFIXES.items() if source.startswith(p)), None)
        if kind is not None and not context:
            raise not_found(kind, source)
        environment_id = doc.get("environmentId") or context.get("environmentId")
        environment_id = environment_id or store.environment_id
        if context and context["environmentId"] != environment_id:
            raise bad_request("environmentId", f"source {source} is not in {environment_id}")
        require_environment(conn, environment_id)
        doc["environmentId"] = environment_id
        context = {**context, "accountId": store.account_id, "environmentId": environment_id}
        status = "ready" if doc["trigger"] == "immediate" else "created"
        job = JobRow(
            new_id("job"), environment_id, context.get("spaceId"), context.get("workbookId"),
            None, None, status, now, now, None, None, doc, context,
        )  # fmt: skip
        insert_rows(conn, [job])
        emit(conn, "job:created", job, {"status": "created"})
        if status == "ready":
            emit(conn, "job:ready", job)
        return wire(job)


def get(store: Store, job_id: str) -> JSON:
    return wire(load(store.connection(), job_id))


_FILTER_COLUMNS: Final = {
    "environment_id": "environment_id",
    "space_id": "space_id",
    "workbook_id": "workbook_id",
    "parent_id": "parent_id",
    "file_id": "json_extract(doc, '$.fileId')",
}


def list_jobs(
    store: Store,
    *,
    page_number: int,
    page_size: int,
    descending: bool = False,
    exclude_parts: bool = False,
    **filters: str | None,
) -> tuple[list[JSON], int]:
    """One page of jobs and the total. Filters: environment_id, space_id, workbook_id,
    parent_id, file_id. In creation order; the parts of a parent in part order."""
    if filters.get("parent_id") is not None and filters.get("file_id") is None:
        return _list_parts(store, page_number, page_size, descending, filters)
    clauses: list[str] = []
    params: list[Any] = []
    for name, value in filters.items():
        if value is not None:
            clauses.append(f"{_FILTER_COLUMNS[name]} = ?")
            params.append(value)
    parent_id = filters.get("parent_id")
    if exclude_parts and parent_id is None:
        clauses.append("parent_id IS NULL")
    where = " AND ".join(clauses) or "1"
    order = "part" if parent_id is not None else "seq"
    direction = "DESC" if descending else "ASC"
    with store.read() as conn:
        (total,) = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", params).fetchone()
        page = load_where(
            conn,
            f"{where} ORDER BY {order} {direction} LIMIT ? OFFSET ?",
            (*params, page_size, (page_number - 1) * page_size),
        )
    return [wire(job) for job in page], total


def _list_parts(
    store: Store, page_number: int, page_size: int, descending: bool, filters: dict[str, Any]
) -> tuple[list[JSON], int]:
    """A page of a parent's parts, in linear time over all pages (issue 10).

    A parent's parts are numbered densely, 0 to parts_total - 1 (split makes them all at
    once; a part alone is never deleted), so page k is a range of ``part`` on the
    ``jobs_parent`` index: no OFFSET, which would step over every earlier part again (all
    pages: quadratic), and no COUNT(*) (the parent row holds the total). The parts copy
    their parent's environment, space and workbook: those filters take all or none."""
    with store.read() as conn:
        parent = conn.execute(
            "SELECT parts_total, environment_id, space_id, workbook_id FROM jobs WHERE id = ?",
            (filters["parent_id"],),
        ).fetchone()
        columns = ("environment_id", "space_id", "workbook_id")
        matches = parent is not None and all(
            filters.get(name) in (None, parent[i + 1]) for i, name in enumerate(columns)
        )
        total = parent[0] if matches else 0
        skipped = (page_number - 1) * page_size
        first, last = skipped, min(skipped + page_size, total) - 1
        order = "ASC"
        if descending:  # page 1 ends at the last part
            first, last, order = total - 1 - last, total - 1 - first, "DESC"
        page = (
            load_where(
                conn,
                f"parent_id = ? AND part BETWEEN ? AND ? ORDER BY part {order}",
                (filters["parent_id"], first, last),
            )
            if first <= last
            else []
        )
    return [wire(job) for job in page], total


# -- transitions: each core changes one loaded row inside the caller's transaction --------


def _execute(conn: sqlite3.Connection, job: JobRow) -> None:
    if job.status != "created":
        raise refused(job.id, job.status, "execute", "only a created job is executed")
    job.status = "ready"
    save(conn, job)
    emit(conn, "job:ready", job)


def _ack(conn: sqlite3.Connection, job: JobRow, details: Mapping[str, Any]) -> None:
    if job.status not in ACKABLE:
        why = "it waits for its predecessor" if job.status == "waiting" else "it has ended"
        raise refused(job.id, job.status, "ack", why)
    job.status = "executing"
    job.started_ms = job.started_ms or now_ms()
    for key in ("info", "progress", "estimatedCompletionAt"):
        if details.get(key) is not None:
            job.doc[key] = details[key]
    save(conn, job)
    emit(conn, "job:updated", job)


def _finish(conn: sqlite3.Connection, job: JobRow, status: str, details: Mapping[str, Any]) -> None:
    verbs = {JobStatus.COMPLETE: "complete", JobStatus.FAILED: "fail", JobStatus.CANCELED: "cancel"}
    transition = verbs[JobStatus(status)]
    if job.status in JOB_TERMINAL:
        raise refused(job.id, job.status, transition, "it has already ended")
    job.status, job.finished_ms = JobStatus(status).value, now_ms()  # stored as a plain str
    for key in ("outcome", "info"):
        if details.get(key) is not None:
            job.doc[key] = details[key]
    if status == "complete":
        job.doc["progress"] = 100
    save(conn, job)
    topics = {JobStatus.COMPLETE: "job:completed", JobStatus.FAILED: "job:failed"}
    topic = topics.get(JobStatus(status), "job:updated")
    emit(conn, topic, job)
    if job.is_part:
        parts.part_ended(conn, job)


def _change(store: Store, job_id: str, apply: Callable[[sqlite3.Connection, JobRow], None]) -> JSON:
    with store.write() as conn:
        job = load(conn, job_id)
        apply(conn, job)
        return wire(job)


def execute(store: Store, job_id: str) -> None:
    _change(store, job_id, _execute)


def ack(store: Store, job_id: str, details: Mapping[str, Any]) -> JSON:
    return _change(store, job_id, lambda conn, job: _ack(conn, job, details))


def complete(store: Store, job_id: str, details: Mapping[str, Any]) -> JSON:
    return _change(store, job_id, lambda conn, job: _finish(conn, job, JobStatus.COMPLETE, details))


def fail(store: Store, job_id: str, details: Mapping[str, Any]) -> JSON:
    return _change(store, job_id, lambda conn, job: _finish(conn, job, JobStatus.FAILED, details))


def cancel(store: Store, job_id: str, details: Mapping[str, Any]) -> JSON:
    return _change(store, job_id, lambda conn, job: _finish(conn, job, JobStatus.CANCELED, details))


def update(store: Store, job_id: str, fields: Mapping[str, Any]) -> JSON:
    """PATCH: plain fields change in place; a new ``status`` goes through its transition."""

    def apply(conn: sqlite3.Connection, job: JobRow) -> None:
        status = fields.get("status")
        if status is not None and status != job.status:
            if status == "ready":
                _execute(conn, job)
            elif status == "executing":
                _ack(conn, job, {})
            elif status in JOB_TERMINAL:
                _finish(conn, job, status, {})
            else:
                raise refused(job.id, job.status, f"set status {status!r} on", "not a transition")
        changed = {k: v for k, v in fields.items() if k in UPDATABLE and v is not None}
        if changed or status is None:  # a status change has written its own event
            job.doc.update(changed)
            save(conn, job)
            emit(conn, "job:updated", job)

    return _change(store, job_id, apply)


def acknowledge_outcome(store: Store, job_id: str) -> JSON:
    def apply(conn: sqlite3.Connection, job: JobRow) -> None:
        job.doc["outcomeAcknowledgedAt"] = iso(now_ms())
        save(conn, job)
        emit(conn, "job:outcome-acknowledged", job)

    return _change(store, job_id, apply)


def delete(store: Store, job_id: str) -> None:
    """Delete a job and its parts (a part alone cannot go: its parent counts it)."""
    with store.write() as conn:
        job = load(conn, job_id)
        if job.is_part:
            raise refused(job.id, job.status, "delete", f"it is a part of {job.parent_id}")
        conn.execute("DELETE FROM jobs WHERE id = ? OR parent_id = ?", (job.id, job.id))
        context = {**job.context, "jobId": job.id}
        events.emit(conn, events.NewEvent("job:deleted", "job", context, {}))
