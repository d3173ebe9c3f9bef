"""The same flow, event-driven: a `Listener` polls the events API and calls handlers.

    listener = Listener(config)

    @listener.on("job:ready", job="sheet:submitLargeSheet", is_part=True)
    async def process(event, client): ...

    listener.run_forever()   # or listener.start() / listener.stop() from a notebook

`multipart_listener()` registers the seed's two listeners in one call: the parent's
`job:ready` splits it from a plan, each part's `job:ready` runs your handler on its
records, and the parent's `job:parts-completed` settles it from the summary counts.

Delivery is at least once (like Flatfile's own polling driver): events are de-duplicated
by id while the listener runs, and acknowledged on the server once every handler for them
succeeded, so a restarted listener does not redo them. On start a listener first drains
the backlog, the events nobody acknowledged (those that came while no listener ran, and
those whose handler failed), then follows new events. An event whose handler raised is
not acknowledged (unless `ack_failed=True`): the next listener to start handles it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import inspect
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from splitkit._checks import (
    boolean,
    callable_handler,
    instance_of,
    non_empty_str,
    positive_int,
    positive_number,
)
from splitkit.api import AsyncClient, Client, ClientConfig, Event
from splitkit.dispatch.executors import Executor, Handler, LoopExecutor
from splitkit.dispatch.steps import PartOptions, PartSpec, describe_error, part_index, run_part
from splitkit.outcomes import asettle, summarize
from splitkit.pipeline import part_data_for
from splitkit.plan import MAX_PAGE_SIZE, plan_parts

log = logging.getLogger("splitkit.listener")

EventHandler = Callable[[Event, AsyncClient], Awaitable[Any] | Any]
SEEN_IDS_KEPT = 50_000  # enough to de-duplicate the overlap between polls
EVENTS_PAGE_SIZE = 1_000  # the events API's largest page


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
    event_id: str
    topic: str
    error: str
    traceback: str = field(repr=False)


class Listener:
    """Polls `GET /events` and routes each new event to the handlers whose filter matches.

    `client` is a `Client`, an `AsyncClient` or a `ClientConfig` (the listener opens its own
    `AsyncClient` from its config). `poll_interval` is the pause in seconds when a poll
    found nothing new; `concurrency` bounds the events handled at once.

    Acknowledging: with `acknowledge=True` (the default) an event is acknowledged on the
    server (`POST /events/{id}/ack`) once handled, and acknowledged events are skipped.
    It is acknowledged only when every handler it matched returned without raising; a
    failed event stays unacknowledged, so the next listener to start handles it again
    from the backlog (errors are also kept in `errors`). `ack_failed=True` acknowledges
    failed events too: nothing is ever handled twice, and a failure is only logged and
    kept in `errors`. Events no handler matches are left alone for other listeners.

    Start-up: with `acknowledge=True` the listener first drains the backlog, every
    unacknowledged event however old (paged through, oldest first), then follows new
    events from `since` (timezone-aware; default: a second before the start). With
    `acknowledge=False` nothing is ever acknowledged, so there is no backlog to tell
    apart: only events from `since` on are handled.
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
        self.routes: list[Route] = []
        self.errors: list[HandlerError] = []
        self.handled = 0
        self.polls = 0  # how often the events were listed (a busy loop shows here)
        self._since = since
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        """Poll and handle events until `stop()` is called or `until()` is true."""
        semaphore = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        # The cursor is fixed before the backlog is read, so an event that comes while the
        # backlog drains is seen by the polling below (and de-duplicated by id if both see it).
        cursor = self._since or datetime.now(UTC) - timedelta(seconds=1)

        def handle_new(client: AsyncClient, events: list[Event]) -> int:
            new = 0
            for event in events:
                if event.id in self._seen:
                    continue
                new += 1
                self._remember(event.id)
                task = asyncio.create_task(self._handle(client, semaphore, event))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            return new

        async with AsyncClient.from_config(self.config) as client:
            backlog_done = not self.acknowledge  # nothing is acknowledged: no backlog
            while not self._stop.is_set() and not (until and until()):
                try:
                    if not backlog_done:
                        handle_new(client, await self._backlog(client))
                        backlog_done = True
                    events = await self._poll(client, cursor)
                except Exception as exc:  # the platform may blip; keep listening
                    log.warning("polling events failed: %s", exc)
                    events = []
                for event in events:
                    cursor = max(cursor, event.created_at - timedelta(milliseconds=1))
                # The overlap re-reads the newest events: only unseen ones skip the pause,
                # else the listener would poll without rest once any event exists.
                if not handle_new(client, events):
                    await asyncio.sleep(self.poll_interval)
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    def run_forever(self) -> None:
        """Block, handling events, until Ctrl-C or `stop()` from another thread."""
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self.run())

    def start(self) -> Listener:
        """Run in a background thread (for notebooks and tests); `stop()` ends it."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the listener is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self.run()), name="splitkit-listener", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    async def _poll(self, client: AsyncClient, since: datetime) -> list[Event]:
        self.polls += 1
        """Every event after `since`, acknowledged or not (acknowledged ones are skipped
        when handled, so a listener with `acknowledge=False` still sees them)."""
        return await self._pages(client, since=since, include_acknowledged=True)

    async def _backlog(self, client: AsyncClient) -> list[Event]:
        """Every unacknowledged event, however old: what came while no listener ran, and
        what failed before. All pages are read before any is handled, because handling
        acknowledges events and would shift the later pages."""
        return await self._pages(client, since=None, include_acknowledged=False)

    async def _pages(
        self, client: AsyncClient, *, since: datetime | None, include_acknowledged: bool
    ) -> list[Event]:
        events: list[Event] = []
        page = 1
        while True:
            batch = await client.list_events(
                since=since,
                include_acknowledged=include_acknowledged,
                page_size=EVENTS_PAGE_SIZE,
                page_number=page,
            )
            events.extend(batch)
            if len(batch) < EVENTS_PAGE_SIZE:
                return events
            page += 1

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        while len(self._seen) > SEEN_IDS_KEPT:
            self._seen.popitem(last=False)

    async def _handle(
        self, client: AsyncClient, semaphore: asyncio.Semaphore, event: Event
    ) -> None:
        routes = [route for route in self.routes if route.matches(event)]
        if not routes or (event.acknowledged_at is not None and self.acknowledge):
            return
        async with semaphore:
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
                    self.errors.append(HandlerError(event.id, event.topic, error, tb))
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
                except Exception as exc:
                    log.warning("could not acknowledge event %s: %s", event.id, exc)


def multipart_listener(
    client: Client | AsyncClient | ClientConfig,
    handler: Handler,
    *,
    batch_size: int = 1000,
    job: str = "sheet:submitLargeSheet",
    timeout: float | None = None,
    executor: Executor | None = None,
    **listener_options: Any,
) -> Listener:
    """The seed's flow as one listener: split parents, process parts, settle parents.

    `batch_size` (at most `MAX_PAGE_SIZE`, one records page) sizes the parts; `job` is the
    parent job's `<type>:<operation>`; `timeout` bounds each handler call; the other
    keyword arguments go to `Listener`.
    """
    batch_size = positive_int("batch_size", batch_size)
    if batch_size > MAX_PAGE_SIZE:
        raise ValueError(
            f"batch_size must be at most {MAX_PAGE_SIZE:,} (the records page limit), "
            f"got {batch_size!r}"
        )
    callable_handler(handler)
    non_empty_str("job", job, what="a job name like 'sheet:submitLargeSheet'")
    if timeout is not None:
        positive_number("timeout", timeout)
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"executor must be an Executor (run/close), got {executor!r}")
    listener = Listener(client, **listener_options)
    run_on = executor or LoopExecutor()
    part_options = PartOptions(timeout_s=timeout)

    @listener.on("job:ready", job=job, is_part=False)
    async def split_parent_job(event: Event, api: AsyncClient) -> None:
        parent_id = str(event.context["jobId"])
        sheet_id = str(event.context.get("sheetId") or (await api.get_job(parent_id)).source)
        counts = await api.get_counts(sheet_id)
        await api.ack_job(parent_id, info="Splitting job", progress=10)
        plan = plan_parts(counts.total, batch_size=batch_size)
        if len(plan) == 0:
            await api.complete_job(parent_id, message="The sheet has no records: nothing to do")
            return
        await api.split_job(parent_id, part_data_for(plan))
        await api.ack_job(parent_id, info=f"Job split into {len(plan)} parts", progress=20)

    @listener.on("job:ready", job=job, is_part=True)
    async def process_part(event: Event, api: AsyncClient) -> None:
        part_job = await api.get_job(str(event.context["jobId"]))
        spec = PartSpec(
            job_id=part_job.id,
            parent_id=str(part_job.parent_id),
            index=part_index(part_job),
            total=int((part_job.part_data or {}).get("total", 0)),
        )
        # The same core as dispatch(): retries, timeout, and the outcome on the server.
        await run_part(api, spec, handler, run_on, part_options)

    @listener.on("job:parts-completed", job=job, is_part=False)
    async def settle_parent(event: Event, api: AsyncClient) -> None:
        await asettle(api, str(event.context["jobId"]), summarize(parts_completed=event.payload))

    return listener
