"""What the client resends, and what it says, when the network or a gateway fails.

Requests go through ``FaultProxy`` (tests/faultproxy.py) to the real embedded server;
server state is then read directly, past the proxy. A POST that the server may have
processed (502 after forwarding, answer lost after forwarding, connection reset) must
not be resent: resending stored records twice and made two jobs. A POST the answer
says was not processed (429, 503 with Retry-After) is resent, and so is any
idempotent request (GET, the acks). Every test runs on ``Client`` and ``AsyncClient``.
"""

from __future__ import annotations

import asyncio
import inspect
import pickle
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from faultproxy import KINDS, FaultProxy

from splitkit.api import (
    AsyncClient,
    Client,
    ConnectionFailedError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
)
from splitkit.api import operations as ops

FAST = RetryPolicy(attempts=4, initial=0.0, max_wait=0.05, jitter=0.0)
NOT_RETRIED = "not retried: the server may have processed this POST"
RECORDS = "/v1/sheets/*/records"
FIELDS = [{"key": "name", "type": "string"}, {"key": "n", "type": "number"}]
ROWS = [{"name": f"row {i}", "n": i} for i in range(100)]


class _Awaited:
    """An AsyncClient seen through synchronous calls on one event loop of its own."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        return lambda *a, **kw: self._loop.run_until_complete(attribute(*a, **kw))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


@pytest.fixture(scope="module")
def _proxy(server: Any) -> Iterator[FaultProxy]:
    with FaultProxy(server.url) as proxy:
        yield proxy


@pytest.fixture
def proxy(_proxy: FaultProxy) -> Iterator[FaultProxy]:
    _proxy.clear()
    yield _proxy
    _proxy.clear()


@pytest.fixture
def direct(server: Any) -> Iterator[Client]:
    """A client past the proxy, to read what the server really holds."""
    with Client(server.url, server.token, environment_id=server.environment_id) as client:
        yield client


@pytest.fixture(params=["Client", "AsyncClient"])
def api(request: pytest.FixtureRequest, server: Any, proxy: FaultProxy) -> Iterator[Any]:
    """A client through the proxy."""
    args = (proxy.url, server.token)
    kwargs: dict[str, Any] = {"environment_id": server.environment_id, "retry": FAST}
    if request.param == "Client":
        with Client(*args, **kwargs) as client:
            yield client
    else:
        awaited = _Awaited(AsyncClient(*args, **kwargs))
        yield awaited
        awaited.close()


@pytest.fixture(scope="module", autouse=True)
def _source(server: Any) -> None:
    # Jobs need a sheet that exists as their source: the seeded one.
    global SOURCE
    SOURCE = server.sheet_id


SOURCE = ""


def _new_sheet(direct: Client) -> str:
    space = direct.create_space(name="faults")
    workbook = direct.create_workbook(
        "faults", [{"name": "rows", "slug": "rows", "fields": FIELDS}], space_id=space["id"]
    )
    return str(workbook["sheets"][0]["id"])


def _jobs_named(direct: Client, operation: str) -> int:
    return sum(job.operation == operation for job in direct.list_jobs(page_size=10_000))


# -- a POST the server may have processed is not resent -------------------------------------


def test_insert_after_a_502_after_forwarding_is_not_resent(
    api: Any, direct: Client, proxy: FaultProxy
) -> None:
    sheet_id = _new_sheet(direct)
    proxy.script(method="POST", path_glob=RECORDS, faults=["502_after_forward"])
    with pytest.raises(ServerError) as info:
        api.insert_records(sheet_id, ROWS)
    error = info.value
    assert error.status == 502 and error.maybe_processed
    assert NOT_RETRIED in str(error)
    assert direct.get_counts(sheet_id).total == 100  # stored once, not 200
    assert proxy.forwarded_count("POST", RECORDS) == 1


def test_create_job_after_a_502_after_forwarding_makes_one_job(
    api: Any, direct: Client, proxy: FaultProxy
) -> None:
    operation = f"faults-{uuid.uuid4().hex[:8]}"
    proxy.script(method="POST", path_glob="/v1/jobs", faults=["502_after_forward"])
    with pytest.raises(ServerError, match=NOT_RETRIED) as info:
        api.create_job("sheet", operation, SOURCE)
    assert info.value.maybe_processed
    assert _jobs_named(direct, operation) == 1


def test_insert_whose_answer_is_lost_is_not_resent(
    api: Any, direct: Client, proxy: FaultProxy
) -> None:
    sheet_id = _new_sheet(direct)
    proxy.script(method="POST", path_glob=RECORDS, faults=["lost_after_forward"])
    with pytest.raises(ConnectionFailedError) as info:
        api.insert_records(sheet_id, ROWS)
    error = info.value
    assert error.maybe_processed and error.request_sent
    assert "connection closed by the server before an answer" in str(error)
    assert NOT_RETRIED in str(error) and "no answer within" not in str(error)
    assert direct.get_counts(sheet_id).total == 100
    assert proxy.forwarded_count("POST", RECORDS) == 1


def test_create_job_after_a_reset_is_not_resent(
    api: Any, direct: Client, proxy: FaultProxy
) -> None:
    # The proxy reset before forwarding, but the client cannot know that: it must not guess.
    operation = f"faults-{uuid.uuid4().hex[:8]}"
    proxy.script(method="POST", path_glob="/v1/jobs", faults=["reset"])
    with pytest.raises(ConnectionFailedError) as info:
        api.create_job("sheet", operation, SOURCE)
    assert info.value.maybe_processed
    assert "connection reset by the server before an answer" in str(info.value)
    assert proxy.received_count("POST", "/v1/jobs") == 1
    assert _jobs_named(direct, operation) == 0


# -- what may be resent is resent -----------------------------------------------------------


def test_ack_job_after_a_502_is_resent(api: Any, direct: Client, proxy: FaultProxy) -> None:
    job = direct.create_job("sheet", f"faults-{uuid.uuid4().hex[:8]}", SOURCE)
    proxy.script(method="POST", path_glob="/v1/jobs/*/ack", faults=["502_after_forward"])
    acked = api.ack_job(job.id, info="working", progress=5)
    assert acked.status == "executing" and acked.info == "working"
    assert proxy.forwarded_count("POST", "/v1/jobs/*/ack") == 2  # the second ack only updates


def test_ack_event_after_a_lost_answer_is_resent(
    api: Any, direct: Client, proxy: FaultProxy
) -> None:
    direct.create_job("sheet", f"faults-{uuid.uuid4().hex[:8]}", SOURCE)
    event = direct.list_events(include_acknowledged=True, page_size=1)[0]
    proxy.script(method="POST", path_glob="/v1/events/*/ack", faults=["lost_after_forward"])
    api.ack_event(event.id)
    assert proxy.forwarded_count("POST", "/v1/events/*/ack") == 2


def test_insert_answered_503_with_retry_after_is_resent_once(
    api: Any, direct: Client, proxy: FaultProxy
) -> None:
    sheet_id = _new_sheet(direct)
    proxy.script(method="POST", path_glob=RECORDS, faults=["503"])
    assert api.insert_records(sheet_id, ROWS) == 100
    assert direct.get_counts(sheet_id).total == 100
    assert proxy.received_count("POST", RECORDS) == 2
    assert proxy.forwarded_count("POST", RECORDS) == 1


def test_create_job_answered_429_is_resent(api: Any, direct: Client, proxy: FaultProxy) -> None:
    operation = f"faults-{uuid.uuid4().hex[:8]}"
    proxy.script(method="POST", path_glob="/v1/jobs", faults=["429", "429"])
    assert api.create_job("sheet", operation, SOURCE).operation == operation
    assert proxy.received_count("POST", "/v1/jobs") == 3
    assert _jobs_named(direct, operation) == 1


@pytest.mark.parametrize("fault", ["500", "502_after_forward", "lost_after_forward", "reset"])
def test_get_is_resent_after_any_fault(
    api: Any, direct: Client, proxy: FaultProxy, fault: str
) -> None:
    job = direct.create_job("sheet", f"faults-{uuid.uuid4().hex[:8]}", SOURCE)
    proxy.script(method="GET", path_glob="/v1/jobs/*", faults=[fault])
    assert api.get_job(job.id).id == job.id
    assert proxy.received_count("GET", "/v1/jobs/*") == 2


def test_resending_is_bounded_by_attempts(api: Any, direct: Client, proxy: FaultProxy) -> None:
    sheet_id = _new_sheet(direct)
    proxy.script(method="POST", path_glob=RECORDS, faults=["503"] * 10)
    with pytest.raises(ServerError) as info:
        api.insert_records(sheet_id, ROWS)
    assert not info.value.maybe_processed  # every answer said "not processed"
    assert NOT_RETRIED not in str(info.value)
    assert proxy.received_count("POST", RECORDS) == FAST.attempts
    assert direct.get_counts(sheet_id).total == 0


def test_rate_limited_to_the_end_is_not_maybe_processed(
    api: Any, direct: Client, proxy: FaultProxy
) -> None:
    proxy.script(method="POST", path_glob="/v1/jobs", faults=["429"] * FAST.attempts)
    with pytest.raises(RateLimitedError) as info:
        api.create_job("sheet", f"faults-{uuid.uuid4().hex[:8]}", SOURCE)
    assert not info.value.maybe_processed and info.value.retry_after == 0


# -- saying what happened -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("reset", "connection reset by the server before an answer"),
        ("lost_after_forward", "connection closed by the server before an answer"),
    ],
)
def test_a_dropped_connection_is_not_called_a_timeout(
    api: Any, direct: Client, proxy: FaultProxy, fault: str, said: str
) -> None:
    job = direct.create_job("sheet", f"faults-{uuid.uuid4().hex[:8]}", SOURCE)
    # aiohttp resends a GET once per attempt on a dropped connection (see _base.py): 2 ×.
    proxy.script(method="GET", path_glob="/v1/jobs/*", faults=[fault] * 2 * FAST.attempts)
    with pytest.raises(ConnectionFailedError) as info:
        api.get_job(job.id)
    error = info.value
    assert said in str(error), str(error)
    assert "no answer within" not in str(error)
    assert error.request_sent and not error.maybe_processed  # a GET: resent, nothing in doubt
    sent = proxy.received_count("GET", "/v1/jobs/*")
    assert sent == FAST.attempts * (2 if isinstance(api, _Awaited) else 1)


# -- the flag itself --------------------------------------------------------------------------


def test_idempotent_follows_the_method_unless_told() -> None:
    assert ops.get_job("us_jb_1").idempotent is True
    assert ops.update_job("us_jb_1", progress=1).idempotent is True  # PATCH
    assert ops.create_job("sheet", "x", "us_sh_1").idempotent is False
    assert ops.insert_records("us_sh_1", [{"a": 1}]).idempotent is False
    assert ops.complete_job("us_jb_1").idempotent is False
    assert ops.split_job("us_jb_1", 2).idempotent is False
    assert ops.ack_job("us_jb_1").idempotent is True
    assert ops.ack_event("us_ev_1").idempotent is True
    assert ops.list_jobs(parent_id="us_jb_1").idempotent is True
    with pytest.raises(ValueError, match=r"idempotent must be True, False or None, got 'yes'"):
        ops.Operation("POST", "/x", bytes, idempotent="yes")  # type: ignore[arg-type]


def test_maybe_processed_survives_pickling() -> None:
    server = ServerError("POST", "/jobs", 502, "Bad Gateway", maybe_processed=True)
    lost = ConnectionFailedError("POST", "http://h/v1/jobs", "lost", maybe_processed=True)
    for error in (server, lost):
        again = pickle.loads(pickle.dumps(error))
        assert again.maybe_processed is True and str(again) == str(error)
        assert NOT_RETRIED in str(again)


# -- the proxy itself (tests/faultproxy.py), for the tests built on it ------------------------


def _outcomes(proxy: FaultProxy, token: str, seed: int) -> list[str]:
    """What 60 plain GETs through the proxy got, in order, under random faults."""
    proxy.clear()
    rates = {kind: 0.1 for kind in KINDS}
    proxy.randomize(rates, seed=seed, methods=["GET"])
    seen: list[str] = []
    with httpx.Client(base_url=proxy.url, headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(60):
            try:
                seen.append(str(http.get("/environments").status_code))
            except httpx.TransportError as exc:
                seen.append(type(exc).__name__)
    return seen


def test_random_faults_follow_the_seed_and_are_counted(server: Any, proxy: FaultProxy) -> None:
    first = _outcomes(proxy, server.token, seed=3)
    injected = dict(proxy.injected)
    assert _outcomes(proxy, server.token, seed=3) == first  # same seed, same faults in order
    assert dict(proxy.injected) == injected
    assert _outcomes(proxy, server.token, seed=4) != first
    # Every kind shows up in 60 draws at 10% each for this seed, and is counted as what it is.
    proxy.clear()
    first = _outcomes(proxy, server.token, seed=3)
    assert set(proxy.injected) == set(KINDS)
    assert first.count("429") == proxy.injected["429"]
    assert first.count("503") == proxy.injected["503"]
    assert first.count("500") == proxy.injected["500"]
    assert first.count("502") == proxy.injected["502_after_forward"]
    not_forwarded = sum(proxy.injected[k] for k in ("429", "500", "503", "reset"))
    assert proxy.received_count("GET") == 60
    assert proxy.forwarded_count("GET", "/v1/environments") == 60 - not_forwarded
    assert first.count("200") == 60 - sum(proxy.injected.values()) + proxy.injected["latency"]


def test_proxy_refuses_unknown_faults(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match=r"fault must be one of"):
        proxy.script(faults=["teapot"])
    with pytest.raises(ValueError, match=r"sum to at most 1"):
        proxy.randomize({"500": 0.7, "reset": 0.7})
    with pytest.raises(ValueError, match=r"rates keys must be among"):
        proxy.randomize({"slow": 0.1})
