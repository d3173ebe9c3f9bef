"""The event-driven flow: a listener splits the parent, processes parts, settles the parent."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from splitkit import Client, ClientConfig, Part
from splitkit.api import AuthError, Event, Job
from splitkit.engine.steps import part_index
from splitkit.listener import Listener, multipart_listener
from splitkit.listener.routes import Route
from splitkit.server import EmbeddedServer


@pytest.fixture
def sheet_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(db_path=tmp_path / "listener.db", records=3_000) as running:
        yield running


MakeJob = Callable[[], Job]
CONFIG = ClientConfig("http://127.0.0.1:9/v1", "t")


def wait_for_settled(client: Client, job_id: str, deadline_s: float = 60) -> str:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        status = client.get_job(job_id).status
        if status in {"complete", "failed", "canceled"}:
            return status
        time.sleep(0.05)
    raise AssertionError(f"parent {job_id} was not settled in {deadline_s} s")


def handler(part: Part) -> str:
    if part.index == 2:
        raise RuntimeError("this batch is rejected")
    assert len(part.records) == 500
    return f"{len(part.records)} checked"


def test_the_seed_flow_as_a_listener(sheet_server: EmbeddedServer) -> None:
    with Client(sheet_server.url, sheet_server.token) as client:
        listener = multipart_listener(client, handler, batch_size=500, poll_interval=0.05)
        listener.start()
        try:
            failing = client.create_job("sheet", "submitLargeSheet", sheet_server.sheet_id)
            assert wait_for_settled(client, failing.id) == "failed"
            parts = client.list_parts(failing.id)
            assert len(parts) == 6
            statuses = sorted(job.status for job in parts)
            assert statuses == ["complete"] * 5 + ["failed"]
            (failed,) = [job for job in parts if job.status == "failed"]
            assert "RuntimeError: this batch is rejected" in str(failed.outcome)
            assert "1 of 6 parts failed" in str(client.get_job(failing.id).outcome)

            # A part handler that raised did not stop the listener: the next parent goes
            # through. It is stopped mid-flight, wherever this parent has got to.
            interrupted = client.create_job("sheet", "submitLargeSheet", sheet_server.sheet_id)
        finally:
            listener.stop()
        # A part's failure is its outcome, not a listener error.
        assert listener.errors == []

        # With no listener running, a new parent's job:ready waits unacknowledged: the backlog.
        waiting = client.create_job("sheet", "submitLargeSheet", sheet_server.sheet_id)
        assert client.get_job(waiting.id).status == "ready"
        # Following only events from now on, a new listener would never see it...
        second = multipart_listener(
            client,
            lambda part: None,
            batch_size=500,
            poll_interval=0.05,
            since=datetime.now(UTC),
        )
        second.start()
        try:
            # ...yet it finishes both jobs: it drains the unacknowledged events first.
            # Whichever listener ran its part 2 decides (the first one rejects part 2, the
            # second accepts everything): every other part completes, and the parent ends
            # the way its part 2 did.
            parent_status = wait_for_settled(client, interrupted.id)
            parts = {part_index(job): job.status for job in client.list_parts(interrupted.id)}
            assert sorted(parts) == list(range(6))
            assert {i: s for i, s in parts.items() if i != 2} == dict.fromkeys(
                [0, 1, 3, 4, 5], "complete"
            )
            assert parts[2] in {"complete", "failed"}
            assert parent_status == ("failed" if parts[2] == "failed" else "complete")
            assert wait_for_settled(client, waiting.id) == "complete"
        finally:
            second.stop()
        assert len(client.list_parts(waiting.id)) == 6
        assert second.errors == []


@pytest.fixture
def client(sheet_server: EmbeddedServer) -> Iterator[Client]:
    with Client(sheet_server.url, sheet_server.token) as running:
        yield running


@pytest.fixture
def make_job(client: Client, sheet_server: EmbeddedServer) -> MakeJob:
    """A job no multipart listener cares about: its events are for the test's handlers."""
    assert sheet_server.sheet_id is not None
    return lambda: client.create_job("sheet", "audit", sheet_server.sheet_id)


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {deadline_s} s")
        time.sleep(0.02)


def ready_event(client: Client, job_id: str) -> Event:
    """The job's job:ready event, acknowledged or not."""
    (found,) = [
        e
        for e in client.list_events(topic="job:ready", include_acknowledged=True, page_size=1000)
        if e.context.get("jobId") == job_id
    ]
    return found


def run_once(listener: Listener, condition: Callable[[], bool], what: str) -> None:
    """Run the listener until `condition()`, then stop it (in-flight handlers finish)."""
    listener.start()
    try:
        wait_until(condition, what)
    finally:
        listener.stop()


def test_a_failed_event_is_not_acknowledged_and_a_restart_handles_it(
    client: Client, make_job: MakeJob
) -> None:
    job = make_job()
    seen: list[str] = []

    def broken(event: Event, api: object) -> None:
        if event.context.get("jobId") == job.id:
            seen.append(event.id)
            raise RuntimeError("not today")

    first = Listener(client, poll_interval=0.02)
    first.on("job:ready")(broken)
    run_once(first, lambda: bool(first.errors), "the failing handler")
    (error,) = first.errors
    assert "RuntimeError: not today" in error.error
    assert ready_event(client, job.id).acknowledged_at is None

    handled: list[str] = []

    def fixed(event: Event, api: object) -> None:
        if event.context.get("jobId") == job.id:
            handled.append(event.id)

    # Started long after the event: only the backlog can bring it back.
    second = Listener(client, poll_interval=0.02, since=datetime.now(UTC))
    second.on("job:ready")(fixed)
    run_once(second, lambda: bool(handled), "the retry from the backlog")
    assert handled == seen
    assert ready_event(client, job.id).acknowledged_at is not None
    assert second.errors == []


def test_ack_failed_acknowledges_a_failed_event(client: Client, make_job: MakeJob) -> None:
    job = make_job()

    def broken(event: Event, api: object) -> None:
        if event.context.get("jobId") == job.id:
            raise RuntimeError("not today")

    listener = Listener(client, poll_interval=0.02, ack_failed=True)
    listener.on("job:ready")(broken)
    run_once(listener, lambda: bool(listener.errors), "the failing handler")
    assert ready_event(client, job.id).acknowledged_at is not None


def test_one_failing_handler_of_two_keeps_the_event_unacknowledged(
    client: Client, make_job: MakeJob
) -> None:
    job = make_job()
    ran: list[str] = []

    def fine(event: Event, api: object) -> None:
        ran.append(event.topic)

    async def broken(event: Event, api: object) -> None:
        if event.context.get("jobId") == job.id:
            raise RuntimeError("half done")

    listener = Listener(client, poll_interval=0.02)
    listener.on("job:ready")(fine)
    listener.on("job:*")(broken)
    run_once(
        listener,
        lambda: any(e.topic == "job:ready" for e in listener.errors),
        "the failing handler on job:ready",
    )
    assert "job:ready" in ran  # the other handler did its part
    assert ready_event(client, job.id).acknowledged_at is None


def test_without_acknowledging_there_is_no_backlog(client: Client, make_job: MakeJob) -> None:
    job = make_job()
    seen: list[str] = []
    listener = Listener(client, poll_interval=0.02, acknowledge=False, since=datetime.now(UTC))
    listener.on("job:*")(lambda event, api: seen.append(str(event.context.get("jobId"))))
    listener.start()
    try:
        later = make_job()
        wait_until(lambda: later.id in seen, "the new job's events")
    finally:
        listener.stop()
    assert job.id not in seen  # older than `since`, and there is no backlog to drain
    assert ready_event(client, later.id).acknowledged_at is None


def event(topic: str, **payload: object) -> Event:
    return Event.from_wire(
        {
            "id": "us_evt_1",
            "topic": topic,
            "domain": "job",
            "context": {"accountId": "a", "environmentId": "e", "jobId": "j"},
            "payload": payload,
            "createdAt": "2026-01-01T00:00:00.000Z",
        }
    )


def test_routes_filter_like_the_flatfile_listener() -> None:
    def noop(event: Event, client: object) -> None:
        return None

    parts = Route(("job:ready",), noop, job="sheet:submit*", is_part=True)
    assert parts.matches(event("job:ready", job="sheet:submitLargeSheet", isPart=True))
    assert not parts.matches(event("job:ready", job="sheet:submitLargeSheet", isPart=False))
    assert not parts.matches(event("job:ready", job="sheet:submitLargeSheet"))  # no isPart key
    assert not parts.matches(event("job:completed", job="sheet:submitLargeSheet", isPart=True))
    assert Route(("job:*",), noop).matches(event("job:parts-completed"))


def test_bad_listener_arguments() -> None:
    config = Client("http://127.0.0.1:9/v1", "t").config
    with pytest.raises(ValueError, match="poll_interval must be a positive number, got 0"):
        Listener(config, poll_interval=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        multipart_listener(config, handler, batch_size=0)
    with pytest.raises(ValueError, match=re.escape("batch_size must be at most 10,000")):
        multipart_listener(config, handler, batch_size=20_000)
    with pytest.raises(TypeError, match="handler must be callable"):
        multipart_listener(config, "nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="topic must be"):
        Listener(config).on("")
    with pytest.raises(TypeError, match="handler must be callable"):
        Listener(config).on("job:ready")("nope")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("client", "kwargs", "error", "message"),
    [
        (
            None,
            {},
            TypeError,
            "client must be a splitkit Client, AsyncClient or ClientConfig, got NoneType",
        ),
        (
            "http://127.0.0.1:9/v1",
            {},
            TypeError,
            "client must be a splitkit Client, AsyncClient or ClientConfig, got str",
        ),
        (
            CONFIG,
            {"acknowledge": "yes"},
            ValueError,
            "acknowledge must be True or False, got 'yes'",
        ),
        (CONFIG, {"acknowledge": 1}, ValueError, "acknowledge must be True or False, got 1"),
        (CONFIG, {"ack_failed": None}, ValueError, "ack_failed must be True or False, got None"),
        (CONFIG, {"concurrency": 0}, ValueError, "concurrency must be a positive integer, got 0"),
        (
            CONFIG,
            {"since": datetime(2026, 1, 1)},
            ValueError,
            "since must be a timezone-aware datetime or None",
        ),
        (CONFIG, {"since": "2026-01-01"}, ValueError, "since must be a timezone-aware datetime"),
        (CONFIG, {"overlap": 0}, ValueError, "overlap must be a positive number, got 0"),
        (CONFIG, {"use_sequence": 1}, ValueError, "use_sequence must be True or False, got 1"),
        (CONFIG, {"queue_size": 0}, ValueError, "queue_size must be a positive integer, got 0"),
        (CONFIG, {"max_errors": -1}, ValueError, "max_errors must be a positive integer, got -1"),
        (CONFIG, {"page_size": 0}, ValueError, "page_size must be a positive integer, got 0"),
        (CONFIG, {"page_size": 1001}, ValueError, "page_size must be at most 1,000"),
    ],
)
def test_listener_checks_its_arguments(
    client: object, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        Listener(client, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(error, match=re.escape(message)):
        multipart_listener(client, handler, **kwargs)  # type: ignore[arg-type]


def test_an_idle_listener_rests_between_polls(sheet_server: EmbeddedServer) -> None:
    with Client(sheet_server.url, sheet_server.token) as client:
        listener = Listener(client, poll_interval=0.2).start()
        try:
            client.create_job("sheet", "submitLargeSheet", sheet_server.sheet_id)  # events exist
            time.sleep(0.5)
            before = listener.polls
            time.sleep(1.0)
            during_rest = listener.polls - before
        finally:
            listener.stop()
    # About 5 polls a second at rest; a listener that never rests polls hundreds of times.
    assert 1 <= during_rest <= 25


# -- delivery under load: a cursor that cannot re-deliver, a bounded queue ---------------------


def all_events(client: Client) -> list[Event]:
    found: list[Event] = []
    page = 1
    while True:
        batch = client.list_events(include_acknowledged=True, page_size=1000, page_number=page)
        found.extend(batch)
        if len(batch) < 1000:
            return found
        page += 1


def split_events(client: Client, make_job: MakeJob, parts: int) -> set[str]:
    """Split a new job into `parts` parts; the ids of its and its parts' events, after
    checking that the split wrote its parts' events in one millisecond."""
    parent = make_job()
    client.ack_job(parent.id)
    client.split_job(parent.id, parts)
    jobs = {parent.id} | {job.id for job in client.list_parts(parent.id)}
    ours = [e for e in all_events(client) if e.job_id in jobs]
    part_ready = [e for e in ours if e.topic == "job:ready" and e.job_id != parent.id]
    assert len(part_ready) == parts
    assert len({e.created_at for e in part_ready}) == 1  # what defeated the old cursor
    return {e.id for e in ours}


def counting_listener(client: Client, **options: object) -> tuple[Listener, Counter[str]]:
    calls: Counter[str] = Counter()
    listener = Listener(client, poll_interval=0.02, **options)  # type: ignore[arg-type]
    listener.on("job:*")(lambda event, api: calls.update([event.id]))
    return listener, calls


def handled_all_then_polled_more(
    listener: Listener, calls: Counter[str], expected: set[str]
) -> None:
    wait_until(lambda: expected <= calls.keys(), f"handling {len(expected):,} events")
    polls = listener.polls
    wait_until(lambda: listener.polls >= polls + 3, "three more polls")  # chances to repeat


@pytest.mark.parametrize("use_sequence", [True, False], ids=["sequence", "fallback"])
def test_a_large_split_in_one_millisecond_is_handled_once(
    client: Client, make_job: MakeJob, use_sequence: bool
) -> None:
    # acknowledge=False: acknowledged events are not skipped, so only the cursor and the
    # de-duplication stand between a re-read and a second handling. overlap: 1 ms, the
    # smallest window, as tight as the old cursor's.
    listener, calls = counting_listener(
        client, acknowledge=False, use_sequence=use_sequence, overlap=0.001
    )
    listener.start()
    try:
        expected = split_events(client, make_job, 2_500)
        handled_all_then_polled_more(listener, calls, expected)
        if not use_sequence:
            # The fallback keeps every id of the newest window (the split's 2 events per
            # part), and forgets them once the window has moved past them.
            assert listener.remembered_ids >= 2 * 2_500
            time.sleep(0.01)  # the next events are stamped at a later millisecond
            make_job()
            wait_until(lambda: listener.remembered_ids < 100, "the window moving on")
    finally:
        listener.stop()
    repeated = {event_id: n for event_id, n in calls.items() if n > 1}
    assert repeated == {}, f"{len(repeated):,} events handled more than once"
    assert listener.errors == []


@pytest.mark.parametrize("use_sequence", [True, False], ids=["sequence", "fallback"])
def test_a_large_backlog_is_handled_once_and_acknowledged(
    client: Client, make_job: MakeJob, use_sequence: bool
) -> None:
    # The split comes before the listener: its events are the backlog (more than one
    # page), and the polling that follows reads them again, acknowledged or not yet.
    expected = split_events(client, make_job, 150)
    listener, calls = counting_listener(
        client,
        use_sequence=use_sequence,
        overlap=0.001,
        page_size=100,  # 4 pages
    )
    listener.start()
    try:
        handled_all_then_polled_more(listener, calls, expected)
    finally:
        listener.stop()
    assert {event_id: n for event_id, n in calls.items() if n > 1} == {}
    unacknowledged = {e.id for e in client.list_events(page_size=1000)}
    assert not unacknowledged & expected


def test_the_work_queue_bounds_the_handlers_and_the_tasks(
    client: Client, make_job: MakeJob
) -> None:
    started, running, most_running, most_tasks, most_waiting = 0, 0, 0, 0, 0

    async def slow(event: Event, api: object) -> None:
        nonlocal started, running, most_running, most_tasks, most_waiting
        started += 1
        running += 1
        most_running = max(most_running, running)
        most_tasks = max(most_tasks, len(asyncio.all_tasks()))
        most_waiting = max(most_waiting, listener.queued - started)  # read, not yet started
        await asyncio.sleep(0.001)
        running -= 1

    listener = Listener(client, poll_interval=0.02, acknowledge=False, concurrency=4, queue_size=10)
    listener.on("job:*")(slow)
    listener.start()
    try:
        expected = split_events(client, make_job, 1_000)
        wait_until(lambda: started >= len(expected) // 2, "half the split's events")
    finally:
        listener.stop()
    assert most_running <= 4
    # The poller waits while the queue is full: 2,000 events were there to read at once.
    assert most_waiting <= 10
    # The run's task and its 4 workers (the HTTP client may add one or two), never one
    # task per event read.
    assert most_tasks <= 4 + 3, most_tasks


def test_the_error_history_keeps_the_latest(client: Client, make_job: MakeJob) -> None:
    jobs = [make_job().id for _ in range(8)]
    ready_ids = [ready_event(client, job_id).id for job_id in jobs]

    def broken(event: Event, api: object) -> None:
        raise RuntimeError(f"refused {event.id}")

    listener = Listener(client, poll_interval=0.02, concurrency=1, max_errors=5)
    listener.on("job:ready")(broken)
    run_once(listener, lambda: listener.error_count >= 8, "eight handler errors")
    assert listener.error_count == 8
    # One worker takes the backlog in order: the five kept are the last five.
    assert [error.event_id for error in listener.errors] == ready_ids[-5:]
    assert all(f"refused {e.event_id}" in e.error for e in listener.errors)


def test_a_refused_token_stops_the_listener_with_one_error(
    sheet_server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-the-token-" + sheet_server.token[:4]
    listener = Listener(Client(sheet_server.url, wrong), poll_interval=0.01)
    listener.on("job:*")(lambda event, api: None)
    caplog.set_level(logging.DEBUG, logger="splitkit")
    # A listener that kept retrying would return normally after 50 polls.
    with pytest.raises(AuthError, match=r"GET /events → 401") as raised:
        asyncio.run(listener.run(until=lambda: listener.polls >= 50))
    assert listener.polls == 1
    assert wrong not in str(raised.value) and wrong not in repr(raised.value)
    records = [r for r in caplog.records if r.name.startswith("splitkit.listener")]
    assert [(r.levelname, "401" in r.getMessage()) for r in records] == [("ERROR", True)]
    assert "refused its token" in records[0].getMessage()
    assert all(wrong not in r.getMessage() for r in caplog.records)


def test_a_refused_token_ends_a_started_listener(sheet_server: EmbeddedServer) -> None:
    listener = Listener(Client(sheet_server.url, "wrong-token"), poll_interval=0.01).start()
    try:
        wait_until(lambda: listener.failure is not None, "the listener giving up")
    finally:
        listener.stop()
    assert isinstance(listener.failure, AuthError)
    assert listener.polls == 1


def test_splitkit_listen_ends_with_one_line_on_a_refused_token(
    sheet_server: EmbeddedServer,
) -> None:
    wrong = "wrong-" + sheet_server.token[:6]
    env = {
        **os.environ,
        "FLATFILE_API_KEY": wrong,
        "FLATFILE_API_URL": sheet_server.url,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    env.pop("FLATFILE_BEARER_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "splitkit.cli", "listen", "json:dumps"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a guard: a listener that retried forever would never exit
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("refused its token") == 1, done.stderr
    assert "401" in done.stderr and "Traceback" not in done.stderr
    assert wrong not in done.stdout + done.stderr
