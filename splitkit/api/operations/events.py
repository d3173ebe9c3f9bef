"""Events: listing them (by time, or after the embedded server's sequence cursor), reading
one, and acknowledging it."""

from __future__ import annotations

from datetime import datetime

from splitkit._checks import integer, optional_str
from splitkit.api.models import Event
from splitkit.api.operations.operation import Operation
from splitkit.api.operations.wire import data_dict, data_dicts, encode_query, nothing, segment

__all__ = ["MAX_EVENTS_PAGE_SIZE", "ack_event", "get_event", "list_events"]

MAX_EVENTS_PAGE_SIZE = 1_000


def _event(content: bytes) -> Event:
    return Event.from_wire(data_dict(content))


def _events(content: bytes) -> list[Event]:
    return [Event.from_wire(e) for e in data_dicts(content)]


def list_events(
    *,
    since: datetime | str | None = None,
    topic: str | None = None,
    domain: str | None = None,
    include_acknowledged: bool = False,
    page_number: int = 1,
    page_size: int = 100,
    environment_id: str | None = None,
    after_sequence: int | None = None,
) -> Operation[list[Event]]:
    """``after_sequence`` (exclusive) is the embedded server's event cursor (events carry a
    ``sequence``); the real platform has no such parameter."""
    if since is not None and not isinstance(since, datetime | str):
        raise ValueError(f"since must be a datetime, an ISO-8601 string or None, got {since!r}")
    if not isinstance(include_acknowledged, bool):
        raise ValueError(
            f"include_acknowledged must be True or False, got {include_acknowledged!r}"
        )
    query = encode_query(
        {
            "environment_id": environment_id,
            "since": since,
            "after_sequence": (
                None if after_sequence is None else integer("after_sequence", after_sequence, low=0)
            ),
            "topic": optional_str("topic", topic),
            "domain": optional_str("domain", domain),
            "include_acknowledged": include_acknowledged,
            "page_number": integer("page_number", page_number, low=1),
            "page_size": integer("page_size", page_size, low=1, high=MAX_EVENTS_PAGE_SIZE),
        }
    )
    return Operation("GET", "/events", _events, query)


def get_event(event_id: str) -> Operation[Event]:
    return Operation("GET", f"/events/{segment('event_id', event_id)}", _event)


def ack_event(event_id: str) -> Operation[None]:
    # Acknowledging an acknowledged event changes nothing: safe to resend.
    path = f"/events/{segment('event_id', event_id)}/ack"
    return Operation("POST", path, nothing, idempotent=True)
