"""Sheet records: validation on insert, exact counts, and pages built as bytes.

Each record is stored as its finished wire JSON next to a dense per-sheet ``seq``
(1, 2, 3, ...), so page k is ``seq BETWEEN (k-1)*size+1 AND k*size`` on the primary key:
page 1 and page 10,000 cost the same, and a page is the stored bytes joined by commas.
The sheet row keeps total / valid / error, updated in the insert's own transaction.

A query may select (:class:`Selection`), as Flatfile's records and counts routes do:

- ``filter`` ``valid`` / ``error``: records are also numbered densely per validity
  (``vseq``, fixed at insert: records are never changed), so page k of the valid records
  is the same range scan on ``records_valid``; ``all`` is every record.
- ``ids`` (at most 100): without a filter, only those records (an include-list); with a
  filter, those records left out (an exclude-list). Paging stays a range scan: the page
  start is moved past the left-out records before it, and at most 100 more rows are read.

``counts`` in a page and in ``/counts`` describe the selection (its total, valid, error).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final, Literal

import orjson

from .errors import bad_request, echo, not_found
from .ids import new_ids
from .store import Store

MAX_PAGE_SIZE = 10_000
CELL_KEYS = frozenset({"value", "valid", "messages", "metadata"})
_INT64 = 2**63
_SEED_CHUNK = 50_000  # rows per transaction when seeding: keeps the WAL small
MAX_IDS: Final = 100
# a range on the primary key: no OFFSET, so every page costs the same
PAGE_QUERY = "SELECT seq, doc FROM records WHERE sheet = ? AND seq BETWEEN ? AND ? ORDER BY seq"
# the same for one validity, on records_valid (sheet, valid, vseq)
VALID_PAGE_QUERY = (
    "SELECT vseq, doc FROM records WHERE sheet = ? AND valid = ? AND vseq BETWEEN ? AND ?"
    " ORDER BY vseq"
)
Filter = Literal["valid", "error", "all"]
Built = tuple[bytes, bool, str]  # a record's wire JSON, its validity, its id


@dataclass(frozen=True)
class Selection:
    """Which records a query means: ``filter`` and ``ids`` as in the module docstring."""

    filter: Filter | None = None
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.ids) > MAX_IDS:
            raise bad_request("ids", f"ids: at most {MAX_IDS} record ids, got {len(self.ids)}")


EVERY = Selection()


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


def counts_of(store: Store, sheet_id: str, selection: Selection = EVERY) -> dict[str, int]:
    """The counts of the selected records (of every record: read from the sheet row)."""
    with store.read() as conn:
        sheet = _SheetCounts.read(conn, sheet_id)
        if selection == EVERY:
            return sheet.as_dict()
        return _select(conn, sheet, selection, None)[1]


@dataclass(frozen=True)
class _SheetCounts:
    seq: int
    total: int
    valid: int
    error: int

    @classmethod
    def read(cls, conn: sqlite3.Connection, sheet_id: str) -> _SheetCounts:
        row = conn.execute(
            "SELECT seq, n_total, n_valid, n_error FROM sheets WHERE id = ?", (sheet_id,)
        ).fetchone()
        if row is None:
            raise not_found("sheet", sheet_id)
        return cls(*row)

    def as_dict(self) -> dict[str, int]:
        return {"total": self.total, "valid": self.valid, "error": self.error}


def _counts(valid: int, error: int) -> dict[str, int]:
    return {"total": valid + error, "valid": valid, "error": error}


def _by_ids(conn: sqlite3.Connection, sheet: int, ids: Sequence[str], columns: str) -> list[Any]:
    marks = ",".join("?" * len(ids))
    query = f"SELECT {columns} FROM records WHERE rid IN ({marks}) AND sheet = ? ORDER BY seq"
    return conn.execute(query, (*ids, sheet)).fetchall()


def _start(rank: int, left_out: Sequence[int]) -> int:
    """The position (in the filtered numbering) of the ``rank``-th record not left out;
    ``left_out`` is sorted."""
    position = rank
    for skipped in left_out:
        if skipped > position:
            break
        position += 1
    return position


def _select(
    conn: sqlite3.Connection, sheet: _SheetCounts, selection: Selection, rows: range | None
) -> tuple[list[bytes], dict[str, int]]:
    """The docs of the selected records at ranks ``rows`` (1-based; None: none) and the
    selection's counts."""
    if selection.filter is None:  # an include-list (or every record: see page())
        found = _by_ids(conn, sheet.seq, selection.ids, "valid, doc")
        n_valid = sum(bool(valid) for valid, _ in found)
        docs = [doc for _, doc in found]
        picked = [] if rows is None else docs[rows.start - 1 : rows.stop - 1]
        return picked, _counts(n_valid, len(found) - n_valid)
    # a filter, with ids left out: positions are seq (all) or vseq (valid / error)
    left = _by_ids(conn, sheet.seq, selection.ids, "valid, seq, vseq") if selection.ids else []
    valid_only = None if selection.filter == "all" else selection.filter == "valid"
    if valid_only is None:
        size, n_valid, n_error = sheet.total, sheet.valid, sheet.error
        left_out = sorted(seq for _, seq, _ in left)
        left_valid = sum(bool(valid) for valid, _, _ in left)
    else:
        size = sheet.valid if valid_only else sheet.error
        n_valid, n_error = (size, 0) if valid_only else (0, size)
        left_out = sorted(vseq for valid, _, vseq in left if bool(valid) == valid_only)
        left_valid = len(left_out) if valid_only else 0
    counts = _counts(n_valid - left_valid, n_error - (len(left_out) - left_valid))
    if rows is None or len(rows) == 0:
        return [], counts
    first = _start(rows.start, left_out)
    last = min(first + len(rows) - 1 + len(left_out), size)  # enough to fill the page
    if first > last:
        return [], counts
    if valid_only is None:
        found = conn.execute(PAGE_QUERY, (sheet.seq, first, last)).fetchall()
    else:
        found = conn.execute(VALID_PAGE_QUERY, (sheet.seq, valid_only, first, last)).fetchall()
    skip = set(left_out)
    docs = [doc for position, doc in found if position not in skip][: len(rows)]
    return docs, counts


def page(
    store: Store, sheet_id: str, page_number: int, page_size: int, selection: Selection = EVERY
) -> bytes:
    """The response JSON of one records page: stored bytes spliced, nothing re-encoded."""
    first = (page_number - 1) * page_size + 1
    with store.read() as conn:
        sheet = _SheetCounts.read(conn, sheet_id)
        if selection.ids or selection.filter in ("valid", "error"):
            docs, counts = _select(conn, sheet, selection, range(first, first + page_size))
        else:  # every record: the primary key range
            found = conn.execute(
                PAGE_QUERY, (sheet.seq, first, min(first + page_size - 1, sheet.total))
            ).fetchall()
            docs, counts = [doc for _, doc in found], sheet.as_dict()
    return (
        b'{"data":{"success":true,"records":['
        + b",".join(docs)
        + b'],"counts":'
        + orjson.dumps(counts)
        + b"}}"
    )
