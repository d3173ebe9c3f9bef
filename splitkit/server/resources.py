"""Environments, spaces, workbooks and sheets: create, read, and their wire form.

Each row keeps the client's own fields as a JSON ``doc``; ids, parents and timestamps live
in columns and are added when the wire form is built.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from typing import Any

import orjson

from .clock import iso, now_ms
from .errors import bad_request, not_found
from .ids import new_id
from .store import Store

JSON = dict[str, Any]

# -- environments ------------------------------------------------------------------------


def list_environments(store: Store, page_number: int, page_size: int) -> tuple[list[JSON], int]:
    with store.read() as conn:
        (total,) = conn.execute("SELECT COUNT(*) FROM environments").fetchone()
        rows = conn.execute(
            "SELECT doc FROM environments ORDER BY seq LIMIT ? OFFSET ?",
            (page_size, (page_number - 1) * page_size),
        ).fetchall()
    return [orjson.loads(doc) for (doc,) in rows], total


def get_environment(store: Store, environment_id: str) -> JSON:
    row = (
        store.connection()
        .execute("SELECT doc FROM environments WHERE id = ?", (environment_id,))
        .fetchone()
    )
    if row is None:
        raise not_found("environment", environment_id)
    environment: dict[str, Any] = orjson.loads(row[0])
    return environment


def require_environment(conn: sqlite3.Connection, environment_id: str) -> None:
    if (
        conn.execute("SELECT 1 FROM environments WHERE id = ?", (environment_id,)).fetchone()
        is None
    ):
        raise not_found("environment", environment_id)


# -- spaces --------------------------------------------------------------------------------


def create_space(store: Store, fields: Mapping[str, Any]) -> JSON:
    doc = {k: v for k, v in fields.items() if k not in ("id", "environmentId") and v is not None}
    doc.setdefault("name", "Untitled space")
    environment_id = fields.get("environmentId") or store.environment_id
    space_id, now = new_id("space"), now_ms()
    with store.write() as conn:
        require_environment(conn, environment_id)
        conn.execute(
            "INSERT INTO spaces (id, environment_id, created_ms, updated_ms, doc)"
            " VALUES (?, ?, ?, ?, ?)",
            (space_id, environment_id, now, now, orjson.dumps(doc).decode()),
        )
    return get_space(store, space_id)


def get_space(store: Store, space_id: str) -> JSON:
    with store.read() as conn:
        row = conn.execute(
            "SELECT environment_id, created_ms, updated_ms, doc FROM spaces WHERE id = ?",
            (space_id,),
        ).fetchone()
        if row is None:
            raise not_found("space", space_id)
        (workbooks,) = conn.execute(
            "SELECT COUNT(*) FROM workbooks WHERE space_id = ?", (space_id,)
        ).fetchone()
    environment_id, created_ms, updated_ms, doc = row
    return {
        "guestAuthentication": ["shared_link"],
        **orjson.loads(doc),
        "id": space_id,
        "environmentId": environment_id,
        "workbooksCount": workbooks,
        "filesCount": 0,
        "createdAt": iso(created_ms),
        "updatedAt": iso(updated_ms),
    }


# -- workbooks and sheets ---------------------------------------------------------------


def slugify(name: str) -> str:
    slug = re.sub(r"[^0-9A-Za-z]+", "-", name).strip("-").lower()
    return slug or "sheet"


def create_workbook(store: Store, fields: Mapping[str, Any]) -> JSON:
    """A workbook and its sheets (``fields["sheets"]``: sheet configs), in one transaction."""
    space_id = fields.get("spaceId")
    if not space_id:
        raise bad_request("spaceId", "spaceId is required: create a space first (POST /v1/spaces)")
    skip = ("id", "spaceId", "environmentId", "sheets")
    doc = {k: v for k, v in fields.items() if k not in skip and v is not None}
    sheets = [_sheet_doc(config) for config in fields.get("sheets") or []]
    workbook_id, now = new_id("workbook"), now_ms()
    with store.write() as conn:
        row = conn.execute("SELECT environment_id FROM spaces WHERE id = ?", (space_id,)).fetchone()
        if row is None:
            raise not_found("space", space_id)
        environment_id = row[0]
        asked = fields.get("environmentId")
        if asked and asked != environment_id:
            raise bad_request(
                "environmentId",
                f"environmentId {asked} does not match space {space_id} (in {environment_id})",
            )
        conn.execute(
            "INSERT INTO workbooks (id, space_id, environment_id, created_ms, updated_ms, doc)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (workbook_id, space_id, environment_id, now, now, orjson.dumps(doc).decode()),
        )
        conn.executemany(
            "INSERT INTO sheets (id, workbook_id, created_ms, updated_ms, doc)"
            " VALUES (?, ?, ?, ?, ?)",
            [(new_id("sheet"), workbook_id, now, now, orjson.dumps(s).decode()) for s in sheets],
        )
    return get_workbook(store, workbook_id)


def _sheet_doc(config: Mapping[str, Any]) -> JSON:
    config = {k: v for k, v in config.items() if v is not None}
    config.setdefault("slug", slugify(str(config.get("name", ""))))
    doc: JSON = {"name": config["name"], "slug": config["slug"], "config": config}
    for key in ("metadata", "namespace"):
        if key in config:
            doc[key] = config[key]
    return doc


def get_workbook(store: Store, workbook_id: str) -> JSON:
    with store.read() as conn:
        row = conn.execute(
            "SELECT space_id, environment_id, created_ms, updated_ms, doc FROM workbooks"
            " WHERE id = ?",
            (workbook_id,),
        ).fetchone()
        if row is None:
            raise not_found("workbook", workbook_id)
        sheets = _sheets(conn, workbook_id)
    space_id, environment_id, created_ms, updated_ms, doc = row
    return {
        **orjson.loads(doc),
        "id": workbook_id,
        "spaceId": space_id,
        "environmentId": environment_id,
        "sheets": sheets,
        "createdAt": iso(created_ms),
        "updatedAt": iso(updated_ms),
    }


def tag_sample(store: Store, workbook_id: str, sample: str) -> None:
    """Mark a workbook as made from ``sample`` so a restart can find and reuse it."""
    with store.write() as conn:
        conn.execute("UPDATE workbooks SET sample = ? WHERE id = ?", (sample, workbook_id))


def find_sample_workbook(store: Store, environment_id: str, sample: str) -> JSON | None:
    """The workbook made earlier from ``sample`` in ``environment_id``, if any."""
    row = (
        store.connection()
        .execute(
            "SELECT id FROM workbooks WHERE environment_id = ? AND sample = ? ORDER BY seq LIMIT 1",
            (environment_id, sample),
        )
        .fetchone()
    )
    return None if row is None else get_workbook(store, row[0])


_SHEET_COLUMNS = "id, workbook_id, created_ms, updated_ms, doc, n_total, n_valid, n_error"


def _sheet_wire(row: tuple[Any, ...]) -> JSON:
    sheet_id, workbook_id, created_ms, updated_ms, doc, total, valid, error = row
    return {
        **orjson.loads(doc),
        "id": sheet_id,
        "workbookId": workbook_id,
        "createdAt": iso(created_ms),
        "updatedAt": iso(updated_ms),
        "recordCounts": {"total": total, "valid": valid, "error": error},
    }


def _sheets(conn: sqlite3.Connection, workbook_id: str) -> list[JSON]:
    rows = conn.execute(
        f"SELECT {_SHEET_COLUMNS} FROM sheets WHERE workbook_id = ? ORDER BY seq", (workbook_id,)
    ).fetchall()
    return [_sheet_wire(row) for row in rows]


def list_sheets(store: Store, workbook_id: str) -> list[JSON]:
    with store.read() as conn:
        if conn.execute("SELECT 1 FROM workbooks WHERE id = ?", (workbook_id,)).fetchone() is None:
            raise not_found("workbook", workbook_id)
        return _sheets(conn, workbook_id)


def get_sheet(store: Store, sheet_id: str) -> JSON:
    row = (
        store.connection()
        .execute(f"SELECT {_SHEET_COLUMNS} FROM sheets WHERE id = ?", (sheet_id,))
        .fetchone()
    )
    if row is None:
        raise not_found("sheet", sheet_id)
    return _sheet_wire(row)


def source_context(conn: sqlite3.Connection, source: str) -> JSON | None:
    """The ids an event about a job on ``source`` carries in its context.

    ``source`` may be a sheet, a workbook or a space; None when it is none of those
    (a file or app id, say: the job is accepted, its events just carry less context).
    """
    row = conn.execute(
        "SELECT w.environment_id, w.space_id, w.id, s.doc FROM sheets s"
        " JOIN workbooks w ON w.id = s.workbook_id WHERE s.id = ?",
        (source,),
    ).fetchone()
    if row is not None:
        environment_id, space_id, workbook_id, doc = row
        return {
            "environmentId": environment_id,
            "spaceId": space_id,
            "workbookId": workbook_id,
            "sheetId": source,
            "sheetSlug": orjson.loads(doc)["slug"],
        }
    row = conn.execute(
        "SELECT environment_id, space_id FROM workbooks WHERE id = ?", (source,)
    ).fetchone()
    if row is not None:
        return {"environmentId": row[0], "spaceId": row[1], "workbookId": source}
    row = conn.execute("SELECT environment_id FROM spaces WHERE id = ?", (source,)).fetchone()
    if row is not None:
        return {"environmentId": row[0], "spaceId": source}
    return None
