"""GET /v1/events, GET /v1/events/{id}, POST /v1/events/{id}/ack."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from .. import events
from ..clock import to_ms
from .common import SUCCESS, PageNumber, StoreDep, json_response, page_size_query, raw_json

router = APIRouter(tags=["events"])


@router.get("/events")
def list_events(
    store: StoreDep,
    environment_id: Annotated[str | None, Query(alias="environmentId")] = None,
    space_id: Annotated[str | None, Query(alias="spaceId")] = None,
    domain: str | None = None,
    topic: str | None = None,
    since: Annotated[
        datetime | None, Query(description="exclusive; ISO 8601, e.g. 2026-01-01T00:00:00.000Z")
    ] = None,
    after_sequence: Annotated[
        int | None,
        Query(
            alias="afterSequence",
            ge=0,
            le=2**63 - 1,
            description="exclusive; an event's `sequence` (an extension of this server)",
        ),
    ] = None,
    include_acknowledged: Annotated[bool, Query(alias="includeAcknowledged")] = False,
    page_number: PageNumber = 1,
    page_size: int = page_size_query(10, events.MAX_PAGE_SIZE),
) -> Response:
    """Events in creation order (which is `sequence` order)."""
    query = events.EventFilter(
        environment_id=environment_id,
        space_id=space_id,
        domain=domain,
        topic=topic,
        since_ms=None if since is None else to_ms(since),
        after_sequence=after_sequence,
        include_acknowledged=include_acknowledged,
        page_number=page_number,
        page_size=page_size,
    )
    return json_response(events.list_events(store, query))


@router.get("/events/{event_id}")
def get_event(store: StoreDep, event_id: str) -> Response:
    return json_response(events.get_event(store, event_id))


@router.post("/events/{event_id}/ack")
def ack_event(store: StoreDep, event_id: str) -> Response:
    events.ack_event(store, event_id)
    return raw_json(SUCCESS)
