"""GET /v1/environments and /v1/environments/{id}."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from .. import resources
from .common import PageNumber, StoreDep, json_response, page_size_query, paged_response

router = APIRouter(tags=["environments"])


@router.get("/environments")
def list_environments(
    store: StoreDep, page_number: PageNumber = 1, page_size: int = page_size_query(10, 1000)
) -> Response:
    items, total = resources.list_environments(store, page_number, page_size)
    return paged_response(items, total, page_number, page_size)


@router.get("/environments/{environment_id}")
def get_environment(store: StoreDep, environment_id: str) -> Response:
    return json_response(resources.get_environment(store, environment_id))
