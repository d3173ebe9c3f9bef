"""settle() / asettle() against the embedded server over real HTTP.

The decision logic and the race handling are unit-tested with stand-in clients in
test_outcomes.py; here the server's own refusals (400 ``transition``), its parts and
the ``job:parts-completed`` payload it emits are the inputs, and lost or 502 answers
are injected by a transport that forwards to the server first (``answer_faults``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from answer_faults import AnswerFaults, AsyncAnswerFaults, Fault, posts_to

from splitkit.api import AsyncClient, Client, Event, Job, RetryPolicy
from splitkit.engine import Part, dispatch
from splitkit.engine.state import RunState
from splitkit.outcomes import empty_outcomes, frame_parent_id
from splitkit.pipeline import split_parent, start_parent_job
from splitkit.plan import plan_parts
from splitkit.server import EmbeddedServer
from splitkit.settlement import SettleResult, asettle, settle, settle_decision
from splitkit.summary import summarize


def _sheet(server: EmbeddedServer) -> str:
    assert server.sheet_id is not None  # the session server is made with a sample sheet
    return server.sheet_id


@pytest.fixture
def client(server: EmbeddedServer) -> Iterator[Client]:
    with Client(server.url, server.token, environment_id=server.environment_id) as c:
        yield c


@pytest.fixture
def parent(server: EmbeddedServer, client: Client) -> Callable[..., tuple[str, list[Job]]]:
    """A parent job on the session's sheet, acked and split: returns (parent id, parts)."""

    def make(parts: int = 3) -> tuple[str, list[Job]]:
        job = client.create_job("sheet", "submitLargeSheet", source=_sheet(server))
        client.ack_job(job.id, info="splitting", progress=10)
        client.split_job(job.id, parts)
        children = sorted(client.list_parts(job.id), key=lambda j: j.part or 0)
        assert len(children) == parts
        return job.id, children

    return make


def _end_parts(client: Client, parts: list[Job], statuses: list[str]) -> None:
    for part, status in zip(parts, statuses, strict=True):
        if status == "canceled":
            client.cancel_job(part.id)
            continue
        client.ack_job(part.id)
        if status == "complete":
            client.complete_job(part.id, message="done")
        else:
            client.fail_job(part.id, message="boom")


def _parts_completed(client: Client, parent_id: str) -> Event:
    events = [
        event
        for event in client.list_events(
            topic="job:parts-completed", include_acknowledged=True, page_size=1_000
        )
        if event.context.get("jobId") == parent_id
    ]
    assert len(events) == 1  # exactly one per round
    return events[0]


def test_all_parts_completed_completes_the_parent_once(client: Client, parent: Any) -> None:
    parent_id, parts = parent(3)
    _end_parts(client, parts, ["complete"] * 3)
    summary = summarize(parts_completed=_parts_completed(client, parent_id))
    assert summary[["total", "completed"]].iloc[0].tolist() == [3, 3]

    first = settle(client, parent_id, summary)
    assert first == SettleResult(parent_id, "complete", True, "3 of 3 parts completed")
    job = client.get_job(parent_id)
    assert job.status == "complete"
    assert job.outcome is not None
    assert job.outcome.get("message") == "3 of 3 parts completed"

    again = settle(client, parent_id, summary)
    assert again == SettleResult(
        parent_id, "complete", False, f"parent {parent_id} was already complete; unchanged"
    )
    assert client.get_job(parent_id).updated_at == job.updated_at


def test_settle_replaces_the_parents_status_line(client: Client, server: EmbeddedServer) -> None:
    # start_parent_job leaves "splitkit: planning parts" in info; a settled parent says how
    # it ended (info is what the Flatfile UI shows beside the status).
    assert server.sheet_id is not None
    parent = start_parent_job(client, server.sheet_id)
    assert client.get_job(parent.id).info == "splitkit: planning parts"
    total = client.get_counts(server.sheet_id).total
    split_parent(client, parent.id, plan_parts(total, batch_size=1_000))
    for job in client.list_parts(parent.id):
        client.ack_job(job.id)
        client.complete_job(job.id)
    settle(client, parent.id, summarize(parts_completed=_parts_completed(client, parent.id)))
    parts = len(client.list_parts(parent.id))
    assert client.get_job(parent.id).info == f"{parts} of {parts} parts completed"


def test_failed_and_canceled_parts_fail_the_parent(client: Client, parent: Any) -> None:
    parent_id, parts = parent(3)
    _end_parts(client, parts, ["complete", "failed", "canceled"])
    event = _parts_completed(client, parent_id)

    result = settle(client, parent_id, summarize(parts_completed=event))
    assert result == SettleResult(parent_id, "failed", True, "1 of 3 parts failed, 1 canceled")
    assert client.get_job(parent_id).status == "failed"

    # Settling again, even with a summary that now says "all completed", changes nothing.
    again = settle(
        client, parent_id, summarize(parts_completed={"parts": {"total": 3, "completed": 3}})
    )
    assert (again.status, again.changed) == ("failed", False)
    assert client.get_job(parent_id).status == "failed"


def test_settle_from_an_outcome_frame_without_parts(client: Client, server: EmbeddedServer) -> None:
    # Zero records: nothing to split, the parent is completed directly.
    job = client.create_job("sheet", "submitLargeSheet", source=_sheet(server))
    client.ack_job(job.id)
    result = settle(client, job.id, empty_outcomes(), message="nothing to do")
    assert (result.status, result.changed, result.message) == ("complete", True, "nothing to do")


def test_lost_race_against_the_server_reports_unchanged(
    server: EmbeddedServer, client: Client, parent: Any
) -> None:
    parent_id, parts = parent(3)
    _end_parts(client, parts, ["complete"] * 3)
    summary = summarize(parts_completed=_parts_completed(client, parent_id))

    class RacedTransport(httpx.HTTPTransport):
        """Another settler fails the parent right after our first read of it."""

        def __init__(self) -> None:
            super().__init__()
            self.reads = 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            if (request.method, request.url.path) == ("GET", f"/v1/jobs/{parent_id}"):
                self.reads += 1
                if self.reads == 1:
                    client.fail_job(parent_id, message="the other settler")
            return response  # our complete_job is then refused by the server: 400

    raced = RacedTransport()
    with Client(server.url, server.token, transport=raced) as raced_client:
        result = settle(raced_client, parent_id, summary)
    assert result == SettleResult(
        parent_id, "failed", False, f"parent {parent_id} was already failed; unchanged"
    )
    assert raced.reads == 2
    job = client.get_job(parent_id)
    assert job.outcome is not None
    assert job.outcome.get("message") == "the other settler"


def test_concurrent_settlers_change_the_parent_exactly_once(
    server: EmbeddedServer, client: Client, parent: Any
) -> None:
    parent_id, parts = parent(3)
    _end_parts(client, parts, ["complete"] * 3)
    summary = summarize(parts_completed=_parts_completed(client, parent_id))
    start = threading.Barrier(8)
    results: list[SettleResult] = []
    lock = threading.Lock()

    def settler() -> None:
        with Client(server.url, server.token, environment_id=server.environment_id) as own:
            start.wait()
            result = settle(own, parent_id, summary)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=settler) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8
    assert sum(r.changed for r in results) == 1
    assert {r.status for r in results} == {"complete"}


def test_asettle(server: EmbeddedServer, client: Client, parent: Any) -> None:
    parent_id, parts = parent(3)
    _end_parts(client, parts, ["complete", "complete", "failed"])
    summary = summarize(parts_completed=_parts_completed(client, parent_id))

    async def main() -> tuple[SettleResult, SettleResult]:
        async with AsyncClient(
            server.url, server.token, environment_id=server.environment_id
        ) as async_client:
            first = await asettle(async_client, parent_id, summary)
            second = await asettle(async_client, parent_id, summary)
            return first, second

    first, second = asyncio.run(main())
    assert first == SettleResult(parent_id, "failed", True, "1 of 3 parts failed, 0 canceled")
    assert (second.status, second.changed) == ("failed", False)
    assert client.get_job(parent_id).status == "failed"


def _split_from_a_plan(client: Client, server: EmbeddedServer, parts: int) -> str:
    """A parent split the way dispatch() expects: each part's partData names its page."""
    parent = start_parent_job(client, _sheet(server))
    plan = plan_parts(client.get_counts(_sheet(server)).total, parts=parts)
    split_parent(client, parent.id, plan)
    return parent.id


def test_settle_a_run_handle_waits_for_the_run(client: Client, server: EmbeddedServer) -> None:
    parent_id = _split_from_a_plan(client, server, 3)
    release = threading.Event()

    def handler(part: Part) -> str:
        release.wait(30)  # the run is still going when settle() is called
        return "ok"

    handle = dispatch(client, parent_id, handler, progress=False, wait=False)
    with pytest.raises(ValueError, match="wait for the run"):
        settle_decision(handle)  # never waits: the run is going, so it refuses
    deadline = time.monotonic() + 30
    while len(handle.outcomes) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # the engine lists the parts first
    # Its outcomes now have parts that have not ended: settling from them is refused.
    with pytest.raises(ValueError, match="3 parts have not ended; wait for the run"):
        settle(client, parent_id, summarize(handle.outcomes))
    assert client.get_job(parent_id).status not in {"complete", "failed", "canceled"}

    threading.Timer(0.2, release.set).start()
    result = settle(client, parent_id, handle)  # waits, then settles from the outcomes
    assert handle.done
    assert result == SettleResult(parent_id, "complete", True, "3 of 3 parts completed")
    assert client.get_job(parent_id).status == "complete"


def test_asettle_awaits_a_run_handle(server: EmbeddedServer, client: Client) -> None:
    parent_id = _split_from_a_plan(client, server, 2)

    def handler(part: Part) -> str:
        if part.index == 1:
            raise RuntimeError("rejected")
        return "ok"

    handle = dispatch(client, parent_id, handler, progress=False, wait=False)

    async def main() -> SettleResult:
        async with AsyncClient(
            server.url, server.token, environment_id=server.environment_id
        ) as async_client:
            return await asettle(async_client, parent_id, handle)

    result = asyncio.run(main())
    assert result == SettleResult(parent_id, "failed", True, "1 of 2 parts failed, 0 canceled")
    assert client.get_job(parent_id).status == "failed"


# --- settle decides from the server ---------------------------------------------------------

OPEN = {"created", "planning", "scheduled", "ready", "executing", "waiting"}


def test_settle_refuses_the_outcomes_of_a_run_still_going(
    client: Client, server: EmbeddedServer
) -> None:
    parent_id = _split_from_a_plan(client, server, 3)
    before = client.get_job(parent_id)
    release = threading.Event()

    def handler(part: Part) -> str:
        release.wait(30)
        return "ok"

    handle = dispatch(client, parent_id, handler, progress=False, wait=False)
    try:
        # What handle.outcomes is before the engine has listed the parts: no rows.
        # Read as "0 of 0 parts completed", it once completed the parent.
        not_listed = RunState(parent_id).frame()
        assert frame_parent_id(not_listed) == parent_id
        with pytest.raises(ValueError) as refused:
            settle(client, parent_id, not_listed)
        assert f"parent {parent_id} has 3 of 3 parts not ended on the server (" in str(
            refused.value
        )
        assert "the frame handed in counts 0 parts, 0 not ended" in str(refused.value)
        # The frame as it is now (listed or not): refused all the same.
        with pytest.raises(ValueError, match="not ended"):
            settle(client, parent_id, handle.outcomes)
        job = client.get_job(parent_id)
        # Unchanged by settle (its metadata changes: the run's dispatch claim lives there).
        assert (job.status, job.outcome, job.finished_at) == (
            before.status,
            before.outcome,
            before.finished_at,
        )
    finally:
        release.set()
    result = settle(client, parent_id, handle)
    assert result == SettleResult(parent_id, "complete", True, "3 of 3 parts completed")


def test_settle_refuses_the_outcomes_of_another_parent(
    client: Client, server: EmbeddedServer
) -> None:
    a = _split_from_a_plan(client, server, 2)
    b = _split_from_a_plan(client, server, 2)
    a_outcomes = dispatch(client, a, lambda part: "ok", progress=False).outcomes
    assert frame_parent_id(a_outcomes) == a
    b_before = client.get_job(b)

    for frame in (a_outcomes, summarize(a_outcomes)):
        with pytest.raises(ValueError, match=f"the frame handed in is of parent {a}, not {b}"):
            settle(client, b, frame)
    # Stripped of its parent id, A's frame is checked against B's parts: still ready.
    anonymous = a_outcomes.drop(columns="parent_id")
    anonymous.attrs = {}
    assert frame_parent_id(anonymous) is None
    with pytest.raises(ValueError, match=f"parent {b} has 2 of 2 parts not ended on the server"):
        settle(client, b, anonymous)

    job = client.get_job(b)
    assert (job.status, job.updated_at) == (b_before.status, b_before.updated_at)
    assert {part.status for part in client.list_parts(b)} <= OPEN

    # B's parts ended just as A's did: the counts agree, only the parent id tells.
    b_outcomes = dispatch(client, b, lambda part: "ok", progress=False).outcomes
    assert summarize(b_outcomes)[["total", "completed"]].iloc[0].tolist() == [2, 2]
    with pytest.raises(ValueError, match=f"the frame handed in is of parent {a}, not {b}"):
        settle(client, b, summarize(a_outcomes))
    assert client.get_job(b).status not in {"complete", "failed", "canceled"}
    assert settle(client, a, a_outcomes).changed
    assert settle(client, b, b_outcomes).changed


def test_settle_refuses_a_summary_whose_counts_differ_from_the_server(
    client: Client, parent: Any
) -> None:
    parent_id, parts = parent(3)
    _end_parts(client, parts, ["complete", "failed", "canceled"])
    before = client.get_job(parent_id)
    wrong = summarize(parts_completed={"parts": {"total": 3, "completed": 3}})
    with pytest.raises(ValueError) as refused:
        settle(client, parent_id, wrong)
    assert (
        "frame total=3 completed=3 failed=0 canceled=0 pending=0; "
        "server total=3 completed=1 failed=1 canceled=1 pending=0"
    ) in str(refused.value)
    job = client.get_job(parent_id)
    assert (job.status, job.updated_at) == (before.status, before.updated_at)
    # The event's own counts agree with the server: settled.
    right = summarize(parts_completed=_parts_completed(client, parent_id))
    assert frame_parent_id(right) == parent_id  # the whole event names its job
    assert settle(client, parent_id, right).status == "failed"


def test_settle_allow_unfinished_fails_a_parent_with_open_parts(
    client: Client, parent: Any
) -> None:
    parent_id, parts = parent(3)
    _end_parts(client, parts[:1], ["complete"])
    counts = {"total": 3, "completed": 1, "failed": 0, "canceled": 0}
    summary = summarize(parts_completed={"parts": counts})
    with pytest.raises(ValueError, match="2 parts have not ended"):
        settle(client, parent_id, summary)
    result = settle(client, parent_id, summary, allow_unfinished=True)
    assert result == SettleResult(
        parent_id, "failed", True, "0 of 3 parts failed, 0 canceled, 2 not ended"
    )


# --- settle reports what it did when the answer is lost ---------------------------------------


@pytest.mark.parametrize("fault", ["lost", "502 after"])
def test_settle_reports_its_change_when_the_answer_is_lost(
    server: EmbeddedServer, client: Client, parent: Any, fault: Fault
) -> None:
    parent_id, parts = parent(3)
    _end_parts(client, parts, ["complete"] * 3)
    summary = summarize(parts_completed=_parts_completed(client, parent_id))
    faults = AnswerFaults(posts_to(f"/jobs/{parent_id}/complete"), fault)
    with Client(
        server.url,
        server.token,
        environment_id=server.environment_id,
        retry=RetryPolicy(attempts=1),  # the client alone would not resend it either
        transport=faults,
    ) as lossy:
        result = settle(lossy, parent_id, summary)
    assert faults.spoiled == 1
    assert result == SettleResult(parent_id, "complete", True, "3 of 3 parts completed")
    job = client.get_job(parent_id)
    assert job.outcome is not None
    assert (job.status, job.outcome.get("message")) == ("complete", "3 of 3 parts completed")


def test_settle_sends_again_when_the_request_never_got_through(
    server: EmbeddedServer, client: Client, parent: Any
) -> None:
    parent_id, parts = parent(2)
    _end_parts(client, parts, ["complete", "failed"])
    summary = summarize(parts_completed=_parts_completed(client, parent_id))
    faults = AnswerFaults(posts_to(f"/jobs/{parent_id}/fail"), "502 before", times=2)
    with Client(
        server.url,
        server.token,
        environment_id=server.environment_id,
        retry=RetryPolicy(attempts=1),
        transport=faults,
    ) as lossy:
        result = settle(lossy, parent_id, summary)
    assert faults.spoiled == 2
    assert faults.forwarded.count(f"POST /v1/jobs/{parent_id}/fail") == 1
    assert result == SettleResult(parent_id, "failed", True, "1 of 2 parts failed, 0 canceled")


def test_asettle_reports_its_change_after_a_502(
    server: EmbeddedServer, client: Client, parent: Any
) -> None:
    parent_id, parts = parent(2)
    _end_parts(client, parts, ["complete", "complete"])
    summary = summarize(parts_completed=_parts_completed(client, parent_id))
    faults = AsyncAnswerFaults(posts_to(f"/jobs/{parent_id}/complete"), "502 after")

    async def main() -> SettleResult:
        async with AsyncClient(
            server.url,
            server.token,
            environment_id=server.environment_id,
            retry=RetryPolicy(attempts=1),
            transport=faults,
        ) as lossy:
            return await asettle(lossy, parent_id, summary)

    result = asyncio.run(main())
    assert faults.spoiled == 1
    assert result == SettleResult(parent_id, "complete", True, "2 of 2 parts completed")
