"""Events: written inside the transaction of the change they report, listed in creation order.

Timestamps never go backwards (an event is never stamped before the previous one), so
``since`` filters agree with creation order even if the wall clock steps back.

Each event also carries ``sequence``, its row's integer key (an extension of the wire
format: the official SDKs ignore unknown fields). Writes are serialized (``BEGIN
IMMEDIATE``) and events are never deleted, so sequences only grow and a reader that has
seen sequence N has seen every committed event before it: ``afterSequence=N`` is a cursor
that neither skips nor repeats, even when thousands of events share one millisecond.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from typing import Any

import orjson

from .clock import iso, now_ms
from .errors import not_found
from .ids import new_ids
from .store import Store

JSON = dict[str, Any]
MAX_PAGE_SIZE = 1_000


@dataclass(frozen=True)
class NewEvent:
    """An event to write. ``data_url_sheet``: the sheet whose records its ``dataUrl`` points
    at; the URL is relative and has a query string, as ``@flatfile/listener`` appends its own
    params to it."""

    topic: str
    domain: str
    context: JSON
    payload: JSON
    data_url_sheet: str | None = None


def emit(conn: sqlite3.Connection, *new: NewEvent) -> list[str]:
    """Write events in the caller's transaction, in order; returns their ids."""
    (last,) = conn.execute("SELECT MAX(created_ms) FROM events").fetchone()
    created_ms = max(now_ms(), last or 0)
    created_at = iso(created_ms)
    rows, ids = [], new_ids("event", len(new))
    for event, event_id in zip(new, ids, strict=True):
        doc: JSON = {
            "id": event_id,
            "topic": event.topic,
            "domain": event.domain,
            "context": event.context,
            "payload": event.payload,
            "createdAt": created_at,
        }
        if event.data_url_sheet is not None:
            doc["dataUrl"] = f"v1/sheets/{event.data_url_sheet}/records?for={event_id}"
        context = event.context
        rows.append(
            (
                event_id,
                event.topic,
                event.domain,
                context["environmentId"],
                context.get("spaceId"),
                context.get("jobId"),
                created_ms,
                orjson.dumps(doc).decode(),
            )
        )
    conn.executemany(
        "INSERT INTO events (id, topic, domain, environment_id, space_id, job_id, created_ms, doc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return ids


def _wire(doc: str, acknowledged_ms: int | None, sequence: int) -> JSON:
    event: JSON = orjson.loads(doc)
    event["sequence"] = sequence
    event["acknowledgedAt"] = None if acknowledged_ms is None else iso(acknowledged_ms)
    return event


@dataclass(frozen=True)
class EventFilter:
    """The query of ``GET /v1/events``; ``since_ms`` and ``after_sequence`` are exclusive."""

    environment_id: str | None = None
    space_id: str | None = None
    domain: str | None = None
    topic: str | None = None
    since_ms: int | None = None
    after_sequence: int | None = None
    include_acknowledged: bool = False
    page_number: int = 1
    page_size: int = 10


def list_events(store: Store, query: EventFilter) -> list[JSON]:
    """One page; in linear time over all pages read in order (see ``cursors.py``)."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("environment_id", query.environment_id),
        ("space_id", query.space_id),
        ("domain", query.domain),
        ("topic", query.topic),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if query.since_ms is not None:
        clauses.append("created_ms > ?")
        params.append(query.since_ms)
    if query.after_sequence is not None:
        clauses.append("seq > ?")
        params.append(query.after_sequence)
    if not query.include_acknowledged:
        clauses.append("acknowledged_ms IS NULL")
    listing = replace(query, page_number=0)
    with store.read() as conn:
        # events are only ever appended (at a higher seq) and their filtered columns never
        # change, except acknowledged_ms: acks are what can move an earlier page's rows
        version = 0 if query.include_acknowledged else _acks(conn)
        after = store.page_cursors.start_after(listing, query.page_number, version)
        if after is None:
            offset = (query.page_number - 1) * query.page_size
        else:
            clauses.append("seq > ?")
            params.append(after)
            offset = 0
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = conn.execute(
            f"SELECT doc, acknowledged_ms, seq FROM events {where} ORDER BY seq LIMIT ? OFFSET ?",
            (*params, query.page_size, offset),
        ).fetchall()
    if len(rows) == query.page_size:
        store.page_cursors.remember(listing, query.page_number, version, rows[-1][2])
    return [_wire(doc, acked, seq) for doc, acked, seq in rows]


def _acks(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'event_acks'").fetchone()
    return 0 if row is None else int(row[0])


def get_event(store: Store, event_id: str) -> JSON:
    row = (
        store.connection()
        .execute("SELECT doc, acknowledged_ms, seq FROM events WHERE id = ?", (event_id,))
        .fetchone()
    )
    if row is None:
        raise not_found("event", event_id)
    return _wire(*row)


def ack_event(store: Store, event_id: str) -> None:
    """Mark an event acknowledged; acknowledging it again keeps the first time."""
    with store.write() as conn:
        cursor = conn.execute(
            "UPDATE events SET acknowledged_ms = COALESCE(acknowledged_ms, ?) WHERE id = ?",
            (now_ms(), event_id),
        )
        if cursor.rowcount == 0:
            raise not_found("event", event_id)
        # in the same transaction: a page cursor read before this ack is stale (any process)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('event_acks', 1)"
            " ON CONFLICT (key) DO UPDATE SET value = value + 1"
        )
