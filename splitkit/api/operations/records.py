"""A sheet's records: their counts, a page of them (as a DataFrame or the raw body), and
inserting them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pandas as pd

from splitkit._checks import integer
from splitkit.api.frames import records_body, records_frame
from splitkit.api.models import RecordCounts
from splitkit.api.operations.operation import Operation
from splitkit.api.operations.wire import data, data_dict, encode_query, segment

__all__ = [
    "MAX_RECORDS_PAGE_SIZE",
    "get_counts",
    "get_records",
    "get_records_raw",
    "insert_records",
]

T = TypeVar("T")

MAX_RECORDS_PAGE_SIZE = 10_000


def _counts(content: bytes) -> RecordCounts:
    return RecordCounts.from_wire(data_dict(content))


def get_counts(sheet_id: str) -> Operation[RecordCounts]:
    return Operation("GET", f"/sheets/{segment('sheet_id', sheet_id)}/counts", _counts)


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
    path = f"/sheets/{segment('sheet_id', sheet_id)}/records"
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
    path = f"/sheets/{segment('sheet_id', sheet_id)}/records"
    body = records_body(records)

    def parse(content: bytes) -> int:
        # Part B marks `records` optional in the answer: fall back to what was sent.
        answer = data(content)
        sent = answer.get("records") if isinstance(answer, dict) else None
        return len(sent) if isinstance(sent, list) else len(body)

    return Operation("POST", path, parse, json=body)
