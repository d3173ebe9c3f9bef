"""Records pages and counts, built as bytes from the stored wire JSON (``records.py``).

Each record is stored as its finished wire JSON next to a dense per-sheet ``seq``
(1, 2, 3, ...), so page k is ``seq BETWEEN (k-1)*size+1 AND k*size`` on the primary key:
page 1 and page 10,000 cost the same, and a page is the stored bytes joined by commas.
The sheet row keeps total / valid / error, so counts of every record cost one row read.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from .errors import bad_request, not_found
from .store import Store

MAX_IDS: Final = 100
# a range on the primary key: no OFFSET, so every page costs the same
PAGE_QUERY = "SELECT seq, doc FROM records WHERE sheet = ? AND seq BETWEEN ? AND ? ORDER BY seq"
# the same for one validity, on records_valid (sheet, valid, vseq)
VALID_PAGE_QUERY = (
    "SELECT vseq, doc FROM records WHERE sheet = ? AND valid = ? AND vseq BETWEEN ? AND ?"
    " ORDER BY vseq"
)
Filter = Literal["valid", "error", "all"]


@dataclass(frozen=True)
class Selection:
    """Which records a query means: ``filter`` and ``ids`` as in the module docstring."""

    filter: Filter | None = None
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.ids) > MAX_IDS:
            raise bad_request("ids", f"ids: at most {MAX_IDS} record ids, got {len(self.ids)}")


EVERY = Selection()


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
