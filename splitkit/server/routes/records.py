"""GET and POST /v1/sheets/{id}/records."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from .. import pages, records
from .common import PageNumber, SelectionDep, StoreDep, page_size_query, raw_json

router = APIRouter(tags=["records"])


@router.get("/sheets/{sheet_id}/records")
def get_records(
    store: StoreDep,
    sheet_id: str,
    selection: SelectionDep,
    page_number: PageNumber = 1,
    page_size: int = page_size_query(records.MAX_PAGE_SIZE, records.MAX_PAGE_SIZE),
    for_event: Annotated[
        str | None, Query(alias="for", description="an event id; accepted and ignored")
    ] = None,
) -> Response:
    """A page of the sheet's records, or of those ``filter`` / ``ids`` select; ``counts``
    are the selection's. Other Flatfile parameters (q, sortField, ...) are refused."""
    return raw_json(pages.page(store, sheet_id, page_number, page_size, selection))


@router.post("/sheets/{sheet_id}/records")
def insert_records(
    store: StoreDep,
    sheet_id: str,
    rows: Annotated[
        list[dict[str, Any]],
        Body(description="records: {field: {value, valid?, messages?}} or {field: value}"),
    ],
) -> Response:
    return raw_json(records.insert(store, sheet_id, rows))
