"""Which handlers an event goes to (`Route`), and what a failing handler leaves behind
(`HandlerError`, kept in `Listener.errors`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from splitkit.api import AsyncClient, Event

__all__ = ["EventHandler", "HandlerError", "Route"]

EventHandler = Callable[[Event, AsyncClient], Awaitable[Any] | Any]


@dataclass(frozen=True)
class Route:
    topics: tuple[str, ...]
    handler: EventHandler
    job: str | None = None
    is_part: bool | None = None

    def matches(self, event: Event) -> bool:
        if not any(fnmatch.fnmatchcase(event.topic, topic) for topic in self.topics):
            return False
        payload = event.payload or {}
        if self.job is not None and not fnmatch.fnmatchcase(str(payload.get("job", "")), self.job):
            return False
        # As in @flatfile/listener: a filter on isPart needs the key present with that value.
        return self.is_part is None or payload.get("isPart") is self.is_part


@dataclass
class HandlerError:
    """A handler's failure on one event, kept in `Listener.errors`."""

    event_id: str
    topic: str
    error: str
    traceback: str = field(repr=False)
