"""The polling `Listener`: reads the events API, queues what is new, runs the handlers
and acknowledges what they handled.

Work: a fixed pool of `concurrency` worker tasks takes events from a bounded queue;
the poller waits while the queue is full, so a large backlog is never materialised as
tasks. Handler errors are kept in `errors`, the latest `max_errors` of them. A 401/403
(`AuthError`) from the events API stops the listener: it is logged once and raised
from `run()` (kept in `failure` for `start()`); retrying a refused token cannot help.

Which events are new is the cursor's (`cursor.py`); which handlers an event goes to, the
routes' (`routes.py`). Delivery is at least once: see the package docstring.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from splitkit._checks import (
    boolean,
    callable_handler,
    instance_of,
    non_empty_str,
    positive_int,
    positive_number,
)
from splitkit.api import AsyncClient, AuthError, Client, ClientConfig, Event
from splitkit.engine.tracebacks import describe_error
from splitkit.listener.cursor import Cursor
from splitkit.listener.routes import EventHandler, HandlerError, Route

__all__ = ["Listener"]

# The package's name, as before the split: log filters and tests select on it.
log = logging.getLogger("splitkit.listener")

EVENTS_PAGE_SIZE = 1_000  # the events API's largest page
DEFAULT_OVERLAP_S = 5.0  # as Flatfile's own polling driver (since = now - 5 s)
DEFAULT_MAX_ERRORS = 1_000


class Listener:
    """Polls `GET /events` and routes each new event to the handlers whose filter matches.

    `client` is a `Client`, an `AsyncClient` or a `ClientConfig` (the listener opens its own
    `AsyncClient` from its config). `poll_interval` is the pause in seconds when a poll
    found nothing new; `concurrency` is the number of worker tasks, so the events handled
    at once; `queue_size` (default: `concurrency`) bounds the events read and waiting for a
    worker: the poller waits while the queue is full.

    Acknowledging: with `acknowledge=True` (the default) an event is acknowledged on the
    server (`POST /events/{id}/ack`) once handled, and acknowledged events are skipped.
    It is acknowledged only when every handler it matched returned without raising; a
    failed event stays unacknowledged, so the next listener to start handles it again
    from the backlog (errors are also kept in `errors`). `ack_failed=True` acknowledges
    failed events too: nothing is ever handled twice, and a failure is only logged and
    kept in `errors`. Events no handler matches are left alone for other listeners.

    Start-up: with `acknowledge=True` the listener first drains the backlog, every
    unacknowledged event however old (oldest first), then follows new events from
    `since` (timezone-aware; default: a second before the start). With
    `acknowledge=False` nothing is ever acknowledged, so there is no backlog to tell
    apart: only events from `since` on are handled.

    The cursor: the server's event `sequence` when it has one; `use_sequence=False`
    forces the fallback, a `since` cursor re-reading the last `overlap` seconds with every
    id inside that window remembered (see `cursor.py` for its limits).

    `page_size` is the events read per request (at most 1,000).

    `errors` keeps the latest `max_errors` handler errors (`error_count` counts them all).
    An `AuthError` (401/403) from the events API ends `run()` with that error, logged once;
    after `start()` it is in `failure` once the thread has ended.
    """

    def __init__(
        self,
        client: Client | AsyncClient | ClientConfig,
        *,
        poll_interval: float = 0.25,
        concurrency: int = 16,
        acknowledge: bool = True,
        ack_failed: bool = False,
        since: datetime | None = None,
        overlap: float = DEFAULT_OVERLAP_S,
        use_sequence: bool = True,
        queue_size: int | None = None,
        max_errors: int = DEFAULT_MAX_ERRORS,
        page_size: int = EVENTS_PAGE_SIZE,
    ) -> None:
        instance_of(
            "client",
            client,
            (Client, AsyncClient, ClientConfig),
            "a splitkit Client, AsyncClient or ClientConfig",
        )
        self.config = client if isinstance(client, ClientConfig) else client.config
        self.poll_interval = positive_number("poll_interval", poll_interval)
        self.concurrency = positive_int("concurrency", concurrency)
        self.acknowledge = boolean("acknowledge", acknowledge)
        self.ack_failed = boolean("ack_failed", ack_failed)
        if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
            raise ValueError(
                "since must be a timezone-aware datetime or None, got "
                f"{since!r}; e.g. datetime.now(UTC) - timedelta(minutes=5)"
            )
        self.overlap = timedelta(seconds=positive_number("overlap", overlap))
        self.use_sequence = boolean("use_sequence", use_sequence)
        self.queue_size = (
            self.concurrency if queue_size is None else positive_int("queue_size", queue_size)
        )
        self.max_errors = positive_int("max_errors", max_errors)
        self.page_size = positive_int("page_size", page_size)
        if self.page_size > EVENTS_PAGE_SIZE:
            raise ValueError(
                f"page_size must be at most {EVENTS_PAGE_SIZE:,} (the events API's largest "
                f"page), got {page_size!r}"
            )
        self.routes: list[Route] = []
        self._errors: deque[HandlerError] = deque(maxlen=self.max_errors)
        self.error_count = 0
        self.handled = 0
        self.queued = 0  # events read and handed to the workers' queue
        self.polls = 0  # reads of the events, backlog included (a busy loop shows here)
        self.failure: BaseException | None = None  # what ended the last run, if anything
        self._since = since
        self._cursor: Cursor | None = None
        self._fatal: AuthError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def remembered_ids(self) -> int:
        """How many event ids the fallback cursor keeps (those inside its window)."""
        return 0 if self._cursor is None else self._cursor.remembered

    @property
    def errors(self) -> list[HandlerError]:
        """The latest `max_errors` handler errors, oldest first."""
        return list(self._errors)

    def on(
        self, topic: str | Sequence[str], *, job: str | None = None, is_part: bool | None = None
    ) -> Callable[[EventHandler], EventHandler]:
        """Register a handler(event, client) for a topic (globs like `job:*` allowed)."""
        topics = (topic,) if isinstance(topic, str) else tuple(topic)
        if not topics or not all(isinstance(t, str) and t for t in topics):
            raise ValueError(f"topic must be a topic name or a list of them, got {topic!r}")
        if job is not None:
            non_empty_str("job", job, what="a job name like 'sheet:submitLargeSheet' or None")
        if is_part is not None:
            boolean("is_part", is_part)

        def register(handler: EventHandler) -> EventHandler:
            callable_handler(handler, what="a function of (event, client)")
            self.routes.append(Route(topics, handler, job, is_part))
            return handler

        return register

    # -- running -------------------------------------------------------------------------
    async def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Poll and handle events until `stop()` is called or `until()` is true.

        Raises `AuthError` when the server refuses the token (after in-flight handlers end).
        """
        self._fatal = None
        # The cursor starts before the backlog is read, so an event that comes while the
        # backlog drains is seen by the polling below (and recognised if both see it).
        cursor = Cursor(
            self._since or datetime.now(UTC) - timedelta(seconds=1),
            self.overlap,
            self.use_sequence,
        )
        self._cursor = cursor
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=self.queue_size)

        def stopping() -> bool:
            return self._stop.is_set() or self._fatal is not None or bool(until and until())

        async with AsyncClient.from_config(self.config) as client:
            workers = [
                asyncio.create_task(self._work(client, queue)) for _ in range(self.concurrency)
            ]
            try:
                await self._follow(client, cursor, queue, stopping)
                await queue.join()  # what was queued is handled (skipped after an AuthError)
            finally:
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        if self._fatal is not None:
            log.error(
                "listener stopped: the server refused its token (%s); check the API key",
                self._fatal,
            )
            raise self._fatal

    async def _follow(
        self,
        client: AsyncClient,
        cursor: Cursor,
        queue: asyncio.Queue[Event],
        stopping: Callable[[], bool],
    ) -> None:
        backlog_done = not self.acknowledge  # nothing is acknowledged: no backlog
        while not stopping():
            try:
                if not backlog_done:
                    await self._drain_backlog(client, cursor, queue, stopping)
                    backlog_done = True
                new = await self._poll(client, cursor, queue, stopping)
            except AuthError as exc:  # a refused token stays refused: stop, do not retry
                self._fatal = exc
                return
            except Exception as exc:  # the platform may blip; keep listening
                log.warning("polling events failed: %s", exc)
                new = 0
            # Only unseen events skip the pause, else the listener would poll without rest
            # once any event exists (the fallback re-reads its overlap window).
            if not new and not stopping():
                await asyncio.sleep(self.poll_interval)

    async def _queue(
        self,
        queue: asyncio.Queue[Event],
        cursor: Cursor,
        events: list[Event],
        stopping: Callable[[], bool],
    ) -> int | None:
        """Queue the new ones of `events`, waiting while the queue is full (the workers
        always drain it); the count, or None when the listener stops meanwhile."""
        new = 0
        for event in events:
            if stopping():
                return None
            if cursor.admit(event):
                await queue.put(event)
                self.queued += 1
                new += 1
        return new

    async def _poll(
        self,
        client: AsyncClient,
        cursor: Cursor,
        queue: asyncio.Queue[Event],
        stopping: Callable[[], bool],
    ) -> int:
        """Queue every new event (acknowledged ones too: they are skipped when handled, so
        a listener with `acknowledge=False` still sees them); returns how many."""
        self.polls += 1
        since = cursor.since  # one `since` for every page of this poll
        new, page, newest = 0, 1, None
        while True:
            after = cursor.after
            batch = await self._page(client, after, page, since=since, acknowledged=True)
            if batch:
                newest = max(newest or batch[-1].created_at, *(e.created_at for e in batch))
            queued = await self._queue(queue, cursor, batch, stopping)
            if queued is None:
                return new
            new += queued
            # A full page means more; a sequence cursor that did not move would re-read it.
            if len(batch) < self.page_size or (after is not None and cursor.after == after):
                break
            page += 1
        cursor.advance(newest)
        return new

    async def _page(
        self,
        client: AsyncClient,
        after: int | None,
        page: int,
        *,
        since: datetime | None,
        acknowledged: bool,
    ) -> list[Event]:
        """One page of events: after a sequence number when there is one (the server's
        cursor), else page `page` of those from `since` (Flatfile's paging)."""
        if after is not None:
            return await client.list_events(
                after_sequence=after, include_acknowledged=acknowledged, page_size=self.page_size
            )
        return await client.list_events(
            since=since,
            include_acknowledged=acknowledged,
            page_size=self.page_size,
            page_number=page,
        )

    async def _drain_backlog(
        self,
        client: AsyncClient,
        cursor: Cursor,
        queue: asyncio.Queue[Event],
        stopping: Callable[[], bool],
    ) -> None:
        """Queue every unacknowledged event, however old: what came while no listener ran,
        and what failed before. By sequence when the server has one (acknowledging while
        handling does not move a sequence cursor); else every page is read before any is
        handled, because acknowledging would shift the later pages."""
        self.polls += 1
        held: list[Event] = []
        page, last = 1, None
        while True:
            batch = await self._page(client, last, page, since=None, acknowledged=False)
            last = cursor.sequence(batch[-1]) if batch else None
            if last is None:
                held.extend(batch)
            elif await self._queue(queue, cursor, batch, stopping) is None:
                return
            if len(batch) < self.page_size:
                break
            page += 1
        await self._queue(queue, cursor, held, stopping)

    async def _work(self, client: AsyncClient, queue: asyncio.Queue[Event]) -> None:
        while True:
            event = await queue.get()
            try:
                if self._fatal is None:
                    await self._handle(client, event)
            finally:
                queue.task_done()

    def run_forever(self) -> None:
        """Block, handling events, until Ctrl-C or `stop()` from another thread.

        Raises `AuthError` when the server refuses the token."""
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self.run())

    def start(self) -> Listener:
        """Run in a background thread (for notebooks and tests); `stop()` ends it.

        Whatever ends the thread early (an `AuthError`) is kept in `failure`."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the listener is already running")
        self._stop.clear()
        self.failure = None
        self._thread = threading.Thread(
            target=self._run_in_thread, name="splitkit-listener", daemon=True
        )
        self._thread.start()
        return self

    def _run_in_thread(self) -> None:
        try:
            asyncio.run(self.run())
        except AuthError as exc:  # run() has logged it
            self.failure = exc
        except Exception as exc:
            log.exception("the listener stopped")
            self.failure = exc

    def stop(self, timeout: float | None = 30) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    async def _handle(self, client: AsyncClient, event: Event) -> None:
        routes = [route for route in self.routes if route.matches(event)]
        if not routes or (event.acknowledged_at is not None and self.acknowledge):
            return
        failed = False
        for route in routes:
            try:
                result = route.handler(event, client)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # a handler's error never stops the listener
                failed = True
                error, tb = describe_error(exc)
                log.error("handler for %s %s failed: %s", event.topic, event.id, error)
                self._errors.append(HandlerError(event.id, event.topic, error, tb))
                self.error_count += 1
        self.handled += 1
        if failed and not self.ack_failed:
            if self.acknowledge:
                log.warning(
                    "event %s left unacknowledged: a handler failed; a restarted "
                    "listener handles it again",
                    event.id,
                )
            return
        if self.acknowledge:
            try:
                await client.ack_event(event.id)
            except AuthError as exc:
                self._fatal = self._fatal or exc
            except Exception as exc:
                log.warning("could not acknowledge event %s: %s", event.id, exc)
