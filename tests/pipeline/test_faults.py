"""The engine when the server misbehaves, and its other edges: faults injected into its own
requests (through the transport), sequential parts, stuck handlers, reuse, double runs."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from splitkit import (
    Client,
    Part,
    ThreadExecutor,
    dispatch,
    plan_parts,
    split_parent,
    start_parent_job,
)


class FaultyTransport(httpx.AsyncBaseTransport):
    """The real transport, except for the requests `fault` picks: those fail as told."""

    def __init__(self, fault: Callable[[httpx.Request, int], str | None]) -> None:
        self._inner = AiohttpTransport()
        self._fault = fault
        self._seen: dict[tuple[str, str], int] = {}
        self.injected: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        route = (request.method, request.url.path.rsplit("/", 1)[-1])
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


def test_a_lost_complete_answer_still_ends_the_part_completed_once(
    client: Client, split_job, job_events
) -> None:
    parent_id, _ = split_job(batch_size=500, total=2000)
    transport = FaultyTransport(
        lambda req, n: "lose-answer" if req.url.path.endswith("/complete") and n == 2 else None
    )
    handle = dispatch(
        client, parent_id, lambda p: "ok", transport=transport, progress=False, wait=True
    )
    assert transport.injected, "the fault was never injected"
    assert set(handle.outcomes["status"]) == {"completed"}
    for job in client.list_parts(parent_id):
        assert job.status == "complete"
        completed = [e for e in job_events("job:completed") if e.context["jobId"] == job.id]
        assert len(completed) == 1


def test_a_lost_ack_answer_retries_the_part(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)
    # The client does not resend a POST the server may have seen; the engine retries the part.
    transport = FaultyTransport(
        lambda req, n: "lose-answer" if req.url.path.endswith("/ack") and n == 1 else None
    )
    handle = dispatch(
        client, parent_id, lambda p: None, transport=transport, progress=False, wait=True
    )
    outcomes = handle.outcomes
    assert len(transport.injected) == 1
    assert set(outcomes["status"]) == {"completed"}
    assert sorted(outcomes["attempts"]) == [1, 2]


def test_a_server_that_cannot_take_outcomes_leaves_parts_open_not_failed(
    client: Client, split_job
) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)
    down = {"/complete", "/fail"}
    transport = FaultyTransport(
        lambda req, n: "503" if any(req.url.path.endswith(p) for p in down) else None
    )
    handle = dispatch(
        client, parent_id, lambda p: None, transport=transport, progress=False, wait=True
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
        handle = dispatch(client, parent_id, handler, timeout=0.3, progress=False, wait=True)
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
