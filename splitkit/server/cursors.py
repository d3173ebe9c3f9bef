"""PageCursors: where page k of a listing ended, so that page k + 1 starts there.

``GET /v1/events`` is paged by number (``pageNumber``), and OFFSET makes SQLite step over
every earlier row again for each page: reading all N pages costs N²/2 pages' worth of
rows. Clients read pages in order, so each page remembers the ``seq`` of its last row and
the next page is a range from there (``seq > last``, on the primary key): every page costs
the same, and the rows are exactly those OFFSET would give while the listing's rows
before that point have not changed. A cursor is keyed by everything in the query except
the page number, and carries a version of what could have changed them (for events: the
count of acknowledgements, when acknowledged events are left out); a page whose cursor is
missing or stale is read with OFFSET, as before. Why a cache and not a dense column: the
filters (environment, topic, unacknowledged, ...) select sparse subsets of the rows; only
a parent's parts are dense (``jobs.py`` pages them as a range of ``part``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Final

CAPACITY: Final = 512  # listings remembered at once (each: a few ints per page read)


class PageCursors:
    """The last ``seq`` of the pages read so far, per listing, least recently used out."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._listings: OrderedDict[Hashable, tuple[int, dict[int, int]]] = OrderedDict()
        self._lock = threading.Lock()

    def start_after(self, listing: Hashable, page_number: int, version: int) -> int | None:
        """The ``seq`` that page ``page_number`` starts after, if page - 1 was read at this
        ``version``; None: read it with OFFSET."""
        if page_number == 1:
            return None
        with self._lock:
            found = self._listings.get(listing)
            if found is None or found[0] != version:
                return None
            self._listings.move_to_end(listing)
            return found[1].get(page_number - 1)

    def remember(self, listing: Hashable, page_number: int, version: int, last_seq: int) -> None:
        """Page ``page_number`` (full, read at ``version``) ended at ``last_seq``."""
        with self._lock:
            found = self._listings.get(listing)
            if found is None or found[0] != version:
                found = (version, {})
                self._listings[listing] = found
            found[1][page_number] = last_seq
            self._listings.move_to_end(listing)
            while len(self._listings) > self._capacity:
                self._listings.popitem(last=False)
