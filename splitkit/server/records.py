"""Sheet records: validation on insert, exact counts, and the stored wire JSON.

Each record is stored as its finished wire JSON next to a dense per-sheet ``seq``
(1, 2, 3, ...) and a dense per-validity ``vseq`` (see ``pages.py``, which reads them).
The sheet row keeps total / valid / error, updated in the insert's own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import orjson

from .errors import bad_request, echo, not_found
from .ids import new_ids
from .pages import counts_of
from .store import Store

MAX_PAGE_SIZE = 10_000
CELL_KEYS = frozenset({"value", "valid", "messages", "metadata"})
_INT64 = 2**63
_SEED_CHUNK = 50_000  # rows per transaction when seeding: keeps the WAL small
Built = tuple[bytes, bool, str]  # a record's wire JSON, its validity, its id


@dataclass(frozen=True)
class Field:
    """What validation needs to know about one sheet field."""

    key: str
    label: str
    required: bool


def sheet_fields(config: Mapping[str, Any]) -> list[Field]:
    fields = []
    for spec in config.get("fields") or []:
        constraints = spec.get("constraints") or []
        required = any(c.get("type") == "required" for c in constraints if isinstance(c, dict))
        fields.append(Field(spec["key"], spec.get("label") or spec["key"], required))
    return fields


def _check_value(value: Any, where: str) -> None:
    if value is None or isinstance(value, str | bool | float):
        return
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise bad_request(where, f"{where}: integer {value} is beyond 64 bits")
        return
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return
    raise bad_request(
        where,
        f"{where}: a value must be a string, number, boolean, null or list of strings,"
        f" got {echo(value)}",
    )


def _cell(raw: Any, where: str) -> dict[str, Any]:
    """A cell from ``{"value": v, "valid"?, "messages"?}`` or from a plain value."""
    if not isinstance(raw, dict):
        _check_value(raw, where)
        return {"value": raw, "valid": True, "messages": []}
    unknown = raw.keys() - CELL_KEYS
    if unknown:
        raise bad_request(
            where, f"{where}: unknown cell keys {sorted(unknown)}; use {sorted(CELL_KEYS)}"
        )
    value = raw.get("value")
    _check_value(value, f"{where}.value")
    valid = raw.get("valid", True)
    if not isinstance(valid, bool):
        raise bad_request(f"{where}.valid", f"{where}.valid must be a boolean, got {echo(valid)}")
    messages = raw.get("messages", [])
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise bad_request(f"{where}.messages", f"{where}.messages must be a list of objects")
    cell = {"value": value, "valid": valid, "messages": list(messages)}
    if isinstance(raw.get("metadata"), dict):
        cell["metadata"] = raw["metadata"]
    return cell


def _is_empty(value: Any) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def build_record(
    row: Any, required: Sequence[Field], index: int, record_id: str
) -> tuple[bytes, bool]:
    """One record's wire JSON and its validity. Cells keep the valid/messages they bring;
    a ``required`` field that is missing or empty makes its cell invalid with a message.
    (Written as plain loops: seeding a million records runs this a million times.)"""
    if not isinstance(row, dict):
        raise bad_request(f"[{index}]", f"[{index}]: a record must be an object, got {echo(row)}")
    values: dict[str, dict[str, Any]] = {}
    valid = True
    for key, raw in row.items():
        if type(raw) is str:  # the common case needs none of a cell object's checks
            values[key] = {"value": raw, "valid": True, "messages": []}
        else:
            cell = values[key] = _cell(raw, f"[{index}].{key}")
            valid = valid and cell["valid"]
    for field in required:
        cell = values.get(field.key) or values.setdefault(
            field.key, {"value": None, "valid": False, "messages": []}
        )
        if _is_empty(cell["value"]):
            cell["valid"] = valid = False
            cell["messages"].append(
                {
                    "field": field.key,
                    "type": "error",
                    "source": "required-constraint",
                    "message": f"{field.label} is required",
                }
            )
    record = {"id": record_id, "values": values, "valid": valid, "messages": [], "metadata": {}}
    return orjson.dumps(record), valid


def build_records(
    rows: Iterable[Any], fields: Sequence[Field], first_index: int = 0
) -> list[Built]:
    """Build every row (indexes in messages count from ``first_index``)."""
    required = [field for field in fields if field.required]
    rows = list(rows)
    ids = new_ids("record", len(rows))
    return [
        (*build_record(row, required, first_index + i, ids[i]), ids[i])
        for i, row in enumerate(rows)
    ]


def _sheet_row(store: Store, sheet_id: str) -> tuple[int, Mapping[str, Any]]:
    row = (
        store.connection()
        .execute("SELECT seq, doc FROM sheets WHERE id = ?", (sheet_id,))
        .fetchone()
    )
    if row is None:
        raise not_found("sheet", sheet_id)
    return row[0], orjson.loads(row[1])["config"]


def _insert_built(store: Store, sheet: int, built: Sequence[Built]) -> dict[str, int]:
    """Append prebuilt records and update the sheet's counts, in one transaction."""
    n_valid = sum(valid for _, valid, _ in built)
    with store.write() as conn:
        total, last_valid, last_error = conn.execute(
            "SELECT n_total, n_valid, n_error FROM sheets WHERE seq = ?", (sheet,)
        ).fetchone()
        rows = []
        for i, (doc, valid, record_id) in enumerate(built, start=1):
            # vseq continues the sheet's count of its validity: dense per (sheet, valid)
            if valid:
                last_valid += 1
                rows.append((sheet, total + i, doc, True, last_valid, record_id))
            else:
                last_error += 1
                rows.append((sheet, total + i, doc, False, last_error, record_id))
        conn.executemany(
            "INSERT INTO records (sheet, seq, doc, valid, vseq, rid) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute(
            "UPDATE sheets SET n_total = n_total + ?, n_valid = n_valid + ?,"
            " n_error = n_error + ? WHERE seq = ?",
            (len(built), n_valid, len(built) - n_valid, sheet),
        )
        row = conn.execute("SELECT n_total, n_valid, n_error FROM sheets WHERE seq = ?", (sheet,))
        t, v, e = row.fetchone()
    return {"total": t, "valid": v, "error": e}


def insert(store: Store, sheet_id: str, rows: Sequence[Any]) -> bytes:
    """Insert ``rows``; the response JSON: the inserted records and the sheet's counts."""
    sheet, config = _sheet_row(store, sheet_id)
    fields = sheet_fields(config)
    built = build_records(rows, fields)
    counts = _insert_built(store, sheet, built)
    return (
        b'{"data":{"success":true,"records":['
        + b",".join(doc for doc, _, _ in built)
        + b'],"counts":'
        + orjson.dumps(counts)
        + b"}}"
    )


def seed(store: Store, sheet_id: str, rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Insert many rows (e.g. a million generated ones) in chunked transactions."""
    sheet, config = _sheet_row(store, sheet_id)
    fields = sheet_fields(config)
    counts = counts_of(store, sheet_id)
    remaining, done = iter(rows), 0
    while built := build_records(islice(remaining, _SEED_CHUNK), fields, done):
        counts = _insert_built(store, sheet, built)
        done += len(built)
    return counts
