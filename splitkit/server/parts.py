"""Parts of a job: split, retry, and the exactly-once ``job:parts-completed``.

The parent row counts its parts by terminal status, and two round numbers make the event
exactly-once: a split opens round 1; the transaction in which the last open part ends
emits ``job:parts-completed`` and marks the round done (``parts_completed_round =
parts_round``); a retry after that opens the next round. Each of these runs in the
``BEGIN IMMEDIATE`` transaction of the part's own status change, so two parts ending at
the same instant, in two threads or two processes, are serialized: one of them sees the
count reach the total, and only it emits.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

from splitkit.statuses import JOB_RETRYABLE, JOB_TERMINAL, JobStatus

from . import events
from .clock import now_ms
from .errors import bad_request, echo, refused
from .ids import new_ids
from .jobrows import (
    JSON,
    PART_COUNTER,
    JobRow,
    emit,
    event,
    insert_rows,
    load,
    load_where,
    save,
    wire,
)
from .store import Store

SPLITTABLE = frozenset({JobStatus.READY, JobStatus.EXECUTING})
_COPIED = ("type", "operation", "source", "environmentId", "subject")


def part_data_list(parts: Any, max_parts: int) -> list[JSON]:
    """The extra ``partData`` of each part, from an int count or an array of objects."""
    if isinstance(parts, int) and not isinstance(parts, bool):
        if not 1 <= parts <= max_parts:
            raise bad_request("parts", f"parts must be between 1 and {max_parts}, got {parts}")
        return [{} for _ in range(parts)]
    if isinstance(parts, list) and parts and all(isinstance(p, dict) for p in parts):
        if len(parts) > max_parts:
            raise bad_request(
                "parts", f"parts may hold at most {max_parts} objects, got {len(parts)}"
            )
        return parts
    raise bad_request(
        "parts", f"parts must be an integer >= 1 or a non-empty array of objects, got {echo(parts)}"
    )


def split(store: Store, job_id: str, parts: Any, run_in_parallel: bool, max_parts: int) -> JSON:
    """Create the parts of ``job_id`` (all or none) and return the parent."""
    extras = part_data_list(parts, max_parts)
    total, now = len(extras), now_ms()
    execution = "parallel" if run_in_parallel else "sequential"
    with store.write() as conn:
        parent = load(conn, job_id)
        if parent.is_part:
            raise refused(
                parent.id, parent.status, "split", f"it is a part of job {parent.parent_id}"
            )
        if parent.is_split:
            raise refused(
                parent.id,
                parent.status,
                "split",
                f"it is already split into {parent.parts_total} parts",
            )
        if parent.status not in SPLITTABLE:
            raise refused(parent.id, parent.status, "split", "only a ready or executing job splits")
        ids = new_ids("job", total)
        base = {key: parent.doc[key] for key in _COPIED if key in parent.doc}
        rows = []
        for i, extra in enumerate(extras):
            doc = {
                **base,
                "trigger": "immediate",
                "parentId": parent.id,
                "part": i,
                "partData": {**extra, "part": i, "total": total},
                "partExecution": execution,
            }
            if not run_in_parallel and i > 0:
                doc["predecessorIds"] = [ids[i - 1]]
            status = "ready" if run_in_parallel or i == 0 else "waiting"
            rows.append(
                JobRow(
                    ids[i], parent.environment_id, parent.space_id, parent.workbook_id, parent.id,
                    i, status, now, now, None, None, doc, parent.context,
                )
            )  # fmt: skip
        insert_rows(conn, rows)
        # every part has the same payload: build it once per topic, not once per event
        created = event("job:created", rows[0], {"status": "created"})
        ready = event("job:ready", rows[0], {"status": "ready"})
        events.emit(
            conn,
            *(replace(created, context={**row.context, "jobId": row.id}) for row in rows),
            *(
                replace(ready, context={**row.context, "jobId": row.id})
                for row in rows
                if row.status == "ready"
            ),
        )
        parent.parts_total, parent.parts_round = total, 1
        save(conn, parent)
        return wire(parent)


def part_ended(conn: sqlite3.Connection, part: JobRow) -> None:
    """Book a part that just reached a terminal status (in that change's transaction)."""
    assert part.parent_id is not None and part.part is not None and part.status in JOB_TERMINAL
    parent = load(conn, part.parent_id)
    counter = PART_COUNTER[part.status]
    setattr(parent, counter, getattr(parent, counter) + 1)
    if part.doc.get("partExecution") == "sequential":
        for successor in load_where(
            conn, "parent_id = ? AND part = ? AND status = 'waiting'", (parent.id, part.part + 1)
        ):
            successor.status = "ready"
            save(conn, successor)
            emit(conn, "job:ready", successor)
    if (
        parent.parts_ended == parent.parts_total
        and parent.parts_completed_round < parent.parts_round
    ):
        parent.parts_completed_round = parent.parts_round
        save(conn, parent)
        emit(conn, "job:parts-completed", parent, {"parts": parent.parts_counts()})
    else:
        save(conn, parent)


def retry(store: Store, job_id: str) -> JSON:
    """Move a failed or canceled job back to ``ready``; for a part, reopen its parent's round."""
    with store.write() as conn:
        job = load(conn, job_id)
        if job.status not in JOB_RETRYABLE:
            raise refused(job.id, job.status, "retry", "only a failed or canceled job is retried")
        if job.is_split:
            raise refused(job.id, job.status, "retry", "it was split: retry its parts")
        if job.parent_id is not None:
            parent = load(conn, job.parent_id)
            if parent.status in JOB_TERMINAL:
                raise refused(
                    job.id,
                    job.status,
                    "retry",
                    f"its parent {parent.id} is settled ({parent.status})",
                )
            counter = PART_COUNTER[job.status]
            setattr(parent, counter, getattr(parent, counter) - 1)
            if parent.parts_completed_round == parent.parts_round:
                parent.parts_round += 1  # parts-completed was emitted: this retry opens a new round
            save(conn, parent)
        metadata = dict(job.doc.get("metadata") or {})
        attempt = metadata.get("attempt")
        metadata["attempt"] = (attempt if isinstance(attempt, int) else 1) + 1
        for key in ("outcome", "progress", "info"):
            job.doc.pop(key, None)
        job.doc["metadata"] = metadata
        job.status, job.started_ms, job.finished_ms = "ready", None, None
        save(conn, job)
        emit(conn, "job:ready", job)
        return wire(job)
