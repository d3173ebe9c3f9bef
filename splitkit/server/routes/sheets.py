"""GET /v1/sheets?workbookId=, /v1/sheets/{id} and /v1/sheets/{id}/counts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from .. import pages, resources
from .common import SelectionDep, StoreDep, json_response

router = APIRouter(tags=["sheets"])


@router.get("/sheets")
def list_sheets(
    store: StoreDep, workbook_id: Annotated[str, Query(alias="workbookId")]
) -> Response:
    return json_response(resources.list_sheets(store, workbook_id))


@router.get("/sheets/{sheet_id}")
def get_sheet(store: StoreDep, sheet_id: str) -> Response:
    return json_response(resources.get_sheet(store, sheet_id))


@router.get("/sheets/{sheet_id}/counts")
def get_counts(store: StoreDep, sheet_id: str, selection: SelectionDep) -> Response:
    """Exact counts, read from the sheet row (kept current by every insert); with
    ``filter`` / ``ids``, the counts of the records they select."""
    counts = pages.counts_of(store, sheet_id, selection)
    return json_response({"success": True, "counts": counts})
