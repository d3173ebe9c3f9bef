"""Where a listener's next read of the events starts, and whether an event read is new.

The cursor. The embedded server numbers its events (an integer `sequence` on each, and
`GET /events?afterSequence=N` lists the events after N in that order). When events carry
a sequence, the listener pages by it: it never reads an event twice, however many events
share one timestamp (a split writes all its parts' events in one millisecond).

The fallback, for a server without sequences (the real platform): each poll asks for
the events `since` the newest one seen minus `overlap` (default 5 s), so events that
become visible a little late are still found, and every event id seen inside that
window is kept and skipped when read again (pruned by event time, never by count), so
nothing inside the window is handed over twice. Its limits: an event that becomes
visible more than `overlap` after a newer event was seen is missed (by this listener;
unacknowledged, it is in the next listener's backlog); memory and each poll's reading
grow with the number of events inside the window (a 25,000-part split is re-read on
every poll until newer events move the window on); and the backlog is paged by page
number, so another listener acknowledging events while it is read can shift an event
past this listener's view (the next start's backlog has it).
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta

from splitkit.api import Event

__all__ = ["Cursor", "event_sequence"]


def event_sequence(event: Event) -> int | None:
    """The event's `sequence` (the embedded server's cursor), or None (the real platform)."""
    value = event.raw.get("sequence")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Cursor:
    """Where the next read starts, and whether an event read is new (see the module doc).

    With sequences: `after` (exclusive) moves to each new event's sequence, and anything
    at or before it is old. Without: `since` (exclusive) trails the newest event polled by
    `overlap`; `_seen` holds every id created after `since`, pruned as `since` moves on, so
    an id is forgotten only once no read can return it again.
    """

    def __init__(self, since: datetime, overlap: timedelta, use_sequence: bool) -> None:
        self.since = since
        self.after: int | None = None
        self._overlap = overlap
        self._use_sequence = use_sequence
        self._seen: set[str] = set()
        self._by_time: list[tuple[datetime, str]] = []  # a heap: the oldest pruned first

    def sequence(self, event: Event) -> int | None:
        return event_sequence(event) if self._use_sequence else None

    def admit(self, event: Event) -> bool:
        """True the first time an event is read (the caller hands it over)."""
        sequence = self.sequence(event)
        if sequence is not None:
            if self.after is not None and sequence <= self.after:
                return False
            self.after = sequence
            return True
        if event.id in self._seen:
            return False
        self._seen.add(event.id)
        heapq.heappush(self._by_time, (event.created_at, event.id))
        return True

    def advance(self, newest: datetime | None) -> None:
        """After a poll (never between its pages, which share one `since`)."""
        if newest is not None:
            self.since = max(self.since, newest - self._overlap)
        while self._by_time and self._by_time[0][0] <= self.since:
            self._seen.discard(heapq.heappop(self._by_time)[1])

    @property
    def remembered(self) -> int:
        """How many ids the fallback keeps (tests read it: bounded by the window)."""
        return len(self._seen)
