"""The same flow, event-driven: a `Listener` polls the events API and calls handlers.

    listener = Listener(config)

    @listener.on("job:ready", job="sheet:submitLargeSheet", is_part=True)
    async def process(event, client): ...

    listener.run_forever()   # or listener.start() / listener.stop() from a notebook

`multipart_listener()` registers the seed's two listeners in one call: the parent's
`job:ready` splits it from a plan, each part's `job:ready` runs your handler on its
records, and the parent's `job:parts-completed` settles it from the summary counts.

Delivery is at least once (like Flatfile's own polling driver): events are de-duplicated
by id while the listener runs, and acknowledged on the server once handled, so a restarted
listener does not redo them.
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

from splitkit.api import AsyncClient, Client, ClientConfig, Event
from splitkit.dispatch.executors import Executor, Handler, LoopExecutor
from splitkit.dispatch.steps import PartOptions, PartSpec, describe_error, part_index, run_part
from splitkit.outcomes import asettle, summarize
from splitkit.pipeline import part_data_for
from splitkit.plan import plan_parts

log = logging.getLogger("splitkit.listener")

EventHandler = Callable[[Event, AsyncClient], Awaitable[Any] | Any]
SEEN_IDS_KEPT = 50_000  # enough to de-duplicate the overlap between polls


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
    """Polls `GET /events` and routes each new event to the handlers whose filter matches."""

    def __init__(
        self,
        client: Client | AsyncClient | ClientConfig,
        *,
        poll_interval: float = 0.25,
        concurrency: int = 16,
        acknowledge: bool = True,
        since: datetime | None = None,
    ) -> None:
        self.config = client if isinstance(client, ClientConfig) else client.config
        if (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, int | float)
            or (poll_interval <= 0)
        ):
            raise ValueError(f"poll_interval must be a positive number, got {poll_interval!r}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
        self.poll_interval = float(poll_interval)
        self.concurrency = concurrency
        self.acknowledge = acknowledge
        self.routes: list[Route] = []
        self.errors: list[HandlerError] = []
        self.handled = 0
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

        def register(handler: EventHandler) -> EventHandler:
            if not callable(handler):
                raise TypeError(f"handler must be callable, got {handler!r}")
            self.routes.append(Route(topics, handler, job, is_part))
            return handler

        return register

    # -- running -------------------------------------------------------------------------
    async def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Poll and handle events until `stop()` is called or `until()` is true."""
        semaphore = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        cursor = self._since or datetime.now(UTC) - timedelta(seconds=1)
        async with AsyncClient.from_config(self.config) as client:
            while not self._stop.is_set() and not (until and until()):
                try:
                    events = await self._poll(client, cursor)
                except Exception as exc:  # the platform may blip; keep listening
                    log.warning("polling events failed: %s", exc)
                    events = []
                for event in events:
                    cursor = max(cursor, event.created_at - timedelta(milliseconds=1))
                    if event.id in self._seen:
                        continue
                    self._remember(event.id)
                    task = asyncio.create_task(self._handle(client, semaphore, event))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if not events:
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
        events: list[Event] = []
        page = 1
        while True:
            batch = await client.list_events(
                since=since, include_acknowledged=True, page_size=1000, page_number=page
            )
            events.extend(batch)
            if len(batch) < 1000:
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
            for route in routes:
                try:
                    result = route.handler(event, client)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:  # a handler's error never stops the listener
                    error, tb = describe_error(exc)
                    log.error("handler for %s %s failed: %s", event.topic, event.id, error)
                    self.errors.append(HandlerError(event.id, event.topic, error, tb))
            self.handled += 1
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
    """The seed's flow as one listener: split parents, process parts, settle parents."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not callable(handler):
        raise TypeError(f"handler must be callable (a function of one Part), got {handler!r}")
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
