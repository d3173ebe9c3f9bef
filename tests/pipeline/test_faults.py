"""The engine when the server misbehaves, and its other edges: faults injected into its own
requests (through the transport), sequential parts, stuck handlers, reuse, double runs."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from splitkit import (
    Client,
    Part,
    RetryPolicy,
    ThreadExecutor,
    dispatch,
    plan_parts,
    split_parent,
    start_parent_job,
)
from splitkit.engine.part_options import PartOptions
from splitkit.engine.steps import most_requests


class FaultyTransport(httpx.AsyncBaseTransport):
    """The real transport, except for the requests `fault` picks: those fail as told.

    `fault(request, n)` gets each request and how many requests to its exact path (method
    and path, e.g. one part's `/complete`) this one is, from 1; it returns None (forward),
    "refuse" (connection refused: never sent), "lose-answer" (the server does it, the
    answer never arrives) or "503". `sent` lists every request (method, path) the engine
    made, retries of the client included.
    """

    def __init__(self, fault: Callable[[httpx.Request, int], str | None]) -> None:
        self._inner = AiohttpTransport()
        self._fault = fault
        self._seen: dict[tuple[str, str], int] = {}
        self.injected: list[str] = []
        self.sent: list[tuple[str, str]] = []

    def count(self, method: str, path_end: str) -> int:
        """How many requests were sent whose path ends with `path_end`."""
        return sum(1 for m, p in self.sent if m == method and p.endswith(path_end))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        route = (request.method, request.url.path)
        self.sent.append(route)
        count = self._seen[route] = self._seen.get(route, 0) + 1
        what = self._fault(request, count)
        if what == "refuse":
            self.injected.append(f"refused {request.method} {request.url.path}")
            raise httpx.ConnectError("injected: connection refused", request=request)
        if what == "lose-answer":  # the server does it, the answer never arrives
            response = await self._inner.handle_async_request(request)
            await response.aread()
            self.injected.append(f"lost answer of {request.method} {request.url.path}")
            raise httpx.ReadError("injected: connection dropped", request=request)
        if what == "503":
            self.injected.append(f"503 for {request.method} {request.url.path}")
            return httpx.Response(503, json={"errors": [{"message": "injected"}]})
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def is_post(request: httpx.Request, path_end: str, job_id: str | None = None) -> bool:
    path = request.url.path
    return (
        request.method == "POST"
        and path.endswith(path_end)
        and (job_id is None or f"/jobs/{job_id}/" in path)
    )


class Calls:
    """How many times the handler ran, per part (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_part: Counter[int] = Counter()

    def handler(self, part: Part) -> dict[str, object]:
        with self._lock:
            self.by_part[part.index] += 1
        return {"message": f"part {part.index} done", "records": len(part.records)}


def test_a_lost_complete_answer_still_ends_the_part_completed_once(
    client: Client, split_job, job_events
) -> None:
    parent_id, _ = split_job(batch_size=500, total=2000)
    # Every part's first complete is done by the server, and its answer lost.
    transport = FaultyTransport(
        lambda req, n: "lose-answer" if is_post(req, "/complete") and n == 1 else None
    )
    calls = Calls()
    handle = dispatch(
        client, parent_id, calls.handler, transport=transport, progress=False, wait=True
    )
    assert len(transport.injected) == 4, transport.injected
    assert set(handle.outcomes["status"]) == {"completed"}, handle.outcomes["error"].tolist()
    assert calls.by_part == {0: 1, 1: 1, 2: 1, 3: 1}  # no handler ran twice
    for job in client.list_parts(parent_id):
        assert job.status == "complete"
        # The outcome the handler returned is the one recorded.
        assert job.outcome is not None and job.outcome["message"] == f"part {job.part} done"
        assert job.outcome["records"] == 500
        completed = [e for e in job_events("job:completed") if e.context["jobId"] == job.id]
        assert len(completed) == 1


def test_a_lost_ack_answer_never_fails_the_part(client: Client, split_job) -> None:
    parent_id, parts = split_job(batch_size=1000, total=2000)
    lost = parts["job_id"].iloc[0]
    transport = FaultyTransport(
        lambda req, n: "lose-answer" if is_post(req, "/ack", lost) and n == 1 else None
    )
    calls = Calls()
    handle = dispatch(
        client, parent_id, calls.handler, transport=transport, progress=False, wait=True
    )
    outcomes = handle.outcomes.set_index("part")
    assert len(transport.injected) == 1
    assert outcomes.loc[1, "status"] == "completed"
    # An ack is idempotent on the server, so the client resends it: the part ran once.
    assert transport.count("POST", f"/jobs/{lost}/ack") == 2
    assert outcomes.loc[0, "status"] == "completed"
    assert calls.by_part == {0: 1, 1: 1}


def test_an_ack_that_cannot_get_through_leaves_the_part_open(client: Client, split_job) -> None:
    parent_id, parts = split_job(batch_size=500, total=2000)
    blocked = parts["job_id"].iloc[1]
    transport = FaultyTransport(lambda req, n: "503" if is_post(req, "/ack", blocked) else None)
    calls = Calls()
    handle = dispatch(
        client, parent_id, calls.handler, transport=transport, progress=False, wait=True
    )
    outcomes = handle.outcomes.set_index("part")
    assert transport.injected, "the fault was never injected"
    assert outcomes.loc[1, "status"] == "pending"  # never failed: its handler did not run
    assert outcomes.loc[1, "attempts"] == 0
    error = outcomes.loc[1, "error"]
    assert f"could not start the part: ServerError: POST /jobs/{blocked}/ack → 503" in error
    assert "left open for a later run" in error
    assert calls.by_part == {0: 1, 2: 1, 3: 1}
    assert (outcomes.drop(index=1)["status"] == "completed").all()
    assert client.get_job(blocked).status == "ready"

    # The server takes acks again: the next run runs that part, and only that part.
    again = dispatch(client, parent_id, calls.handler, progress=False, wait=True)
    assert set(again.outcomes["status"]) == {"completed"}
    assert calls.by_part == {0: 1, 1: 1, 2: 1, 3: 1}


def test_an_end_refused_for_a_while_is_delivered_within_the_window(
    client: Client, split_job, job_events
) -> None:
    parent_id, _ = split_job(batch_size=500, total=2000)
    transport: FaultyTransport

    def fault(req: httpx.Request, n: int) -> str | None:
        # /complete answers 503 until the engine has read the part twice after a refusal:
        # longer than any retrying the client does on its own.
        if is_post(req, "/complete"):
            job_path = req.url.path.removesuffix("/complete")
            if transport.count("GET", job_path) < 2:
                return "503"
        return None

    transport = FaultyTransport(fault)
    calls = Calls()
    handle = dispatch(
        client, parent_id, calls.handler, transport=transport, progress=False, wait=True
    )
    assert set(handle.outcomes["status"]) == {"completed"}, handle.outcomes["error"].tolist()
    assert calls.by_part == {0: 1, 1: 1, 2: 1, 3: 1}
    for job in client.list_parts(parent_id):
        assert job.status == "complete"
        assert job.outcome is not None and job.outcome["message"] == f"part {job.part} done"
        assert transport.count("POST", f"/jobs/{job.id}/complete") > 1
    assert len(job_events("job:completed")) >= 4


def test_a_server_refusing_past_the_window_leaves_the_part_open(client: Client, split_job) -> None:
    parent_id, parts = split_job(batch_size=1000, total=2000)
    part_paths = {f"/jobs/{job_id}" for job_id in parts["job_id"]}

    def fault(req: httpx.Request, n: int) -> str | None:
        # The server refuses connections for the parts' end and for reading them back.
        path = req.url.path
        if path.endswith("/complete") or (req.method == "GET" and path.endswith(tuple(part_paths))):
            return "refuse"
        return None

    transport = FaultyTransport(fault)
    calls = Calls()
    handle = dispatch(
        client,
        parent_id,
        calls.handler,
        delivery_window=1,
        transport=transport,
        progress=False,
        wait=True,
    )
    outcomes = handle.outcomes
    assert set(outcomes["status"]) == {"pending"}, outcomes["error"].tolist()
    for error in outcomes["error"]:
        assert "could not record the outcome on the server within 1 s" in error
        assert "ConnectionFailedError" in error and "connection refused" in error
    assert calls.by_part == {0: 1, 1: 1}
    assert {job.status for job in client.list_parts(parent_id)} == {"executing"}
    # The window bounds the rounds (counted, not timed), and the documented bound on one
    # part's requests holds.
    options = PartOptions(delivery_window_s=1)
    attempts = RetryPolicy().attempts
    for job_id in parts["job_id"]:
        assert transport.count("POST", f"/jobs/{job_id}/complete") <= (
            attempts * options.delivery_rounds()
        )
        made = sum(1 for _, path in transport.sent if f"/jobs/{job_id}" in path)
        assert 3 < made <= most_requests(options, attempts)

    # The server is back: the next run runs them again (at-least-once) and ends them.
    again = dispatch(client, parent_id, calls.handler, progress=False, wait=True)
    assert set(again.outcomes["status"]) == {"completed"}


def test_a_server_that_cannot_take_outcomes_leaves_parts_open_not_failed(
    client: Client, split_job
) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)
    down = {"/complete", "/fail"}
    transport = FaultyTransport(
        lambda req, n: "503" if any(req.url.path.endswith(p) for p in down) else None
    )
    handle = dispatch(
        client,
        parent_id,
        lambda p: None,
        delivery_window=1,
        transport=transport,
        progress=False,
        wait=True,
    )
    outcomes = handle.outcomes
    assert set(outcomes["status"]) == {"pending"}  # not recorded: left to a later run
    assert all("could not record the outcome on the server" in e for e in outcomes["error"])
    assert {job.status for job in client.list_parts(parent_id)} == {"executing"}

    # The server is back: a new run finishes them, and the parent can be settled.
    again = dispatch(client, parent_id, lambda p: None, progress=False, wait=True)
    assert set(again.outcomes["status"]) == {"completed"}


def test_a_result_the_server_cannot_take_fails_the_part_with_the_reason(
    client: Client, split_job
) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)
    handle = dispatch(client, parent_id, lambda p: {"frame": p.records}, progress=False, wait=True)
    assert set(handle.outcomes["status"]) == {"failed"}
    assert all("JSON" in e or "serializ" in e for e in handle.outcomes["error"])
    assert {job.status for job in client.list_parts(parent_id)} == {"failed"}


def test_sequential_parts_run_one_after_another_in_order(server, client: Client) -> None:
    plan = plan_parts(2000, batch_size=400)
    parent = start_parent_job(client, server.sheet_id)
    split_parent(client, parent.id, plan, run_in_parallel=False)
    order: list[int] = []
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def handler(part: Part) -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
            order.append(part.index)
        with lock:
            in_flight -= 1

    handle = dispatch(client, parent.id, handler, concurrency=8, progress=False, wait=True)
    assert set(handle.outcomes["status"]) == {"completed"}
    assert order == [0, 1, 2, 3, 4] and peak == 1


def test_a_stuck_handler_does_not_hold_the_run(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)
    release = threading.Event()

    def handler(part: Part) -> None:
        if part.index == 0:
            release.wait(60)  # stuck far past the timeout

    try:
        handle = dispatch(client, parent_id, handler, timeout=2.0, progress=False, wait=True)
        assert handle.done and not release.is_set()  # ended while the handler is still stuck
        outcomes = handle.outcomes.set_index("part")
        assert outcomes.loc[0, "status"] == "failed"
        assert outcomes.loc[1, "status"] == "completed"
    finally:
        release.set()


def test_sync_handlers_get_as_many_threads_as_the_concurrency(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=160, total=1920)  # 12 parts
    barrier = threading.Barrier(12, timeout=30)  # only passes if all 12 run at once

    def handler(part: Part) -> None:
        barrier.wait()

    handle = dispatch(
        client,
        parent_id,
        handler,
        concurrency=12,
        progress=False,
        wait=True,
    )
    assert set(handle.outcomes["status"]) == {"completed"}


def test_an_executor_passed_in_can_be_used_again(client: Client, split_job) -> None:
    executor = ThreadExecutor(2)
    try:
        for _ in range(2):
            parent_id, _ = split_job(batch_size=1000, total=2000)
            handle = dispatch(
                client, parent_id, lambda p: None, executor=executor, progress=False, wait=True
            )
            assert set(handle.outcomes["status"]) == {"completed"}
    finally:
        executor.close()


def test_a_second_run_on_a_parent_still_running_is_refused(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)
    release = threading.Event()
    first = dispatch(
        client, parent_id, lambda p: release.wait(30) and None, progress=False, wait=False
    )
    try:
        with pytest.raises(RuntimeError, match=f"a run on parent {parent_id} is still going"):
            dispatch(client, parent_id, lambda p: None, progress=False, wait=False)
    finally:
        release.set()
        first.wait(30)
    assert set(first.outcomes["status"]) == {"completed"}
