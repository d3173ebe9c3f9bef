"""What goes on the wire, errors from odd answers, and retries, over real loopback HTTP.

The server here is ``scripted`` (see conftest): it answers what each test queues.
Every behaviour is checked on both ``Client`` and ``AsyncClient``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from splitkit.api import (
    ApiError,
    AsyncClient,
    AuthError,
    BadRequestError,
    Client,
    ConnectionFailedError,
    InvalidTransitionError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
)

TOKEN = "sk_test_scripted_secret_token"  # what the scripted server's clients send
FAST = RetryPolicy(attempts=3, initial=0.01, max_wait=0.05, jitter=0.0)
JOB = {
    "id": "us_jb_1",
    "type": "sheet",
    "operation": "export",
    "status": "ready",
    "createdAt": "2026-01-01T00:00:00Z",
    "updatedAt": "2026-01-01T00:00:00Z",
}

# A call runs one client method by name on a fresh Client or AsyncClient and returns its
# result, so each test states the behaviour once and runs it on both send loops.
Call = Callable[..., Any]


def _sync_call(base_url: str, method: str, *args: Any, client_kwargs: Any = None, **kw: Any) -> Any:
    with Client(base_url, TOKEN, **(client_kwargs or {"retry": FAST})) as client:
        return getattr(client, method)(*args, **kw)


def _async_call(
    base_url: str, method: str, *args: Any, client_kwargs: Any = None, **kw: Any
) -> Any:
    async def run() -> Any:
        async with AsyncClient(base_url, TOKEN, **(client_kwargs or {"retry": FAST})) as client:
            return await getattr(client, method)(*args, **kw)

    return asyncio.run(run())


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest) -> Call:
    return _sync_call if request.param == "sync" else _async_call


# -- what is sent ----------------------------------------------------------------------------


def test_headers_and_json_body(scripted: Any, call: Call) -> None:
    scripted.reply(body={"data": JOB})
    job = call(scripted.base_url, "complete_job", "us_jb_1", message="done", info="all good")
    assert job.id == "us_jb_1"
    (seen,) = scripted.requests
    assert (seen.method, seen.path) == ("POST", "/v1/jobs/us_jb_1/complete")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["x-disable-hooks"] == "true"
    assert seen.headers["content-type"] == "application/json"
    assert orjson.loads(seen.body) == {"outcome": {"message": "done"}, "info": "all good"}


def test_ack_without_details_sends_no_body(scripted: Any, call: Call) -> None:
    scripted.reply(body={"data": JOB})
    call(scripted.base_url, "ack_job", "us_jb_1")
    (seen,) = scripted.requests
    assert seen.body == b""
    # aiohttp labels any POST application/octet-stream; what matters is that it is not JSON.
    assert seen.headers.get("content-type", "") != "application/json"


def test_query_encoding(scripted: Any, call: Call) -> None:
    scripted.reply(body={"data": []})
    kwargs = {"client_kwargs": {"retry": FAST, "environment_id": "us_env_1"}}
    events = call(
        scripted.base_url,
        "list_events",
        since="2026-01-01T00:00:00.000Z",
        topic="job:ready",
        include_acknowledged=True,
        page_size=1000,
        **kwargs,
    )
    assert events == []
    (seen,) = scripted.requests
    # Compared decoded: aiohttp (yarl) leaves ':' unescaped in a query, httpx escapes it.
    assert parse_qsl(seen.query) == [
        ("environmentId", "us_env_1"),
        ("since", "2026-01-01T00:00:00.000Z"),
        ("topic", "job:ready"),
        ("includeAcknowledged", "true"),
        ("pageNumber", "1"),
        ("pageSize", "1000"),
    ]


def test_numpy_values_in_a_body(scripted: Any, call: Call) -> None:
    import numpy as np
    import pandas as pd

    scripted.reply(body={"data": {"success": True}})
    frame = pd.DataFrame(
        {"n": np.array([1, 2], dtype="int64"), "when": pd.to_datetime(["2026-01-01", None])}
    )
    assert call(scripted.base_url, "insert_records", "us_sh_1", frame) == 2
    body = orjson.loads(scripted.requests[0].body)
    assert body == [
        {"n": {"value": 1}, "when": {"value": "2026-01-01T00:00:00"}},
        {"n": {"value": 2}},
    ]


# -- errors from what comes back --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error_type", "message"),
    [
        (401, {"errors": [{"message": "invalid token"}]}, AuthError, "invalid token"),
        (403, {"errors": [{"message": "forbidden"}]}, AuthError, "forbidden"),
        (
            404,
            {"errors": [{"key": "id", "message": "Job 'us_jb_1' not found"}]},
            NotFoundError,
            "not found",
        ),
        (404, {"detail": "Not Found"}, NotFoundError, "Not Found"),  # FastAPI's own shape
        (
            422,
            {"errors": [{"key": "parts", "message": "a"}, {"message": "b"}]},
            BadRequestError,
            "a; b",
        ),
        (
            400,
            {"errors": [{"key": "transition", "message": "nope"}]},
            InvalidTransitionError,
            "nope",
        ),
        (409, {"errors": [{"message": "conflict"}]}, ApiError, "conflict"),
    ],
)
def test_error_bodies_map_to_types(
    scripted: Any, call: Call, status: int, body: Any, error_type: type, message: str
) -> None:
    scripted.reply(status, body)
    with pytest.raises(error_type) as info:
        call(scripted.base_url, "get_job", "us_jb_1")
    error = info.value
    assert type(error) is error_type
    assert error.status == status and error.body == body
    assert str(error) == f"GET /jobs/us_jb_1 → {status}: {error.message}"
    assert message in error.message
    assert len(scripted.requests) == 1  # client errors are never retried


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "<html><body><h1>502 Bad Gateway"),
        (b"", "Bad Gateway"),
        (b'["odd"]', '["odd"]'),
    ],
)
def test_odd_error_bodies(scripted: Any, call: Call, raw: bytes, expected: str) -> None:
    for _ in range(FAST.attempts):
        scripted.reply(502, raw=raw)
    with pytest.raises(ServerError) as info:
        call(scripted.base_url, "get_job", "us_jb_1")
    assert expected in str(info.value)


def test_an_odd_success_body_is_an_api_error(scripted: Any, call: Call) -> None:
    scripted.reply(200, raw=b"<html>a captive portal</html>")
    with pytest.raises(ApiError, match="GET /jobs/us_jb_1 → 200: unexpected response body"):
        call(scripted.base_url, "get_job", "us_jb_1")


def test_token_is_never_in_an_error(scripted: Any, call: Call) -> None:
    # A server that echoes the header back must not leak it through our messages.
    scripted.reply(401, {"errors": [{"message": f"bad token Bearer {TOKEN}"}]})
    with pytest.raises(AuthError) as info:
        call(scripted.base_url, "get_job", "us_jb_1")
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
    assert "Bearer ***" in str(info.value)


# -- retries ---------------------------------------------------------------------------------


def test_429_then_200_honours_retry_after(scripted: Any, call: Call) -> None:
    scripted.reply(429, {"errors": [{"message": "slow down"}]}, headers={"Retry-After": "1"})
    scripted.reply(body={"data": JOB})
    policy = RetryPolicy(attempts=2, initial=0.0, max_wait=5.0, jitter=0.0)
    started = time.monotonic()
    job = call(scripted.base_url, "get_job", "us_jb_1", client_kwargs={"retry": policy})
    assert job.id == "us_jb_1"
    assert 0.9 <= time.monotonic() - started < 3
    assert len(scripted.requests) == 2


def test_retry_after_is_capped(scripted: Any, call: Call) -> None:
    scripted.reply(429, {"errors": [{"message": "slow down"}]}, headers={"Retry-After": "3600"})
    scripted.reply(body={"data": JOB})
    started = time.monotonic()
    call(scripted.base_url, "get_job", "us_jb_1")  # FAST: max_wait 0.05 s
    assert time.monotonic() - started < 2  # far below the hour asked for, with room for a slow CI


def test_503_then_200(scripted: Any, call: Call) -> None:
    scripted.reply(503, {"errors": [{"message": "the database is busy; retry the request"}]})
    scripted.reply(body={"data": JOB})
    assert call(scripted.base_url, "get_job", "us_jb_1").status == "ready"
    assert len(scripted.requests) == 2


def test_retries_are_bounded(scripted: Any, call: Call, caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(5):
        scripted.reply(429, {"errors": [{"message": "still busy"}]})
    with (
        caplog.at_level(logging.INFO, logger="splitkit.api"),
        pytest.raises(RateLimitedError) as info,
    ):
        call(scripted.base_url, "get_job", "us_jb_1")
    assert len(scripted.requests) == FAST.attempts == 3
    assert info.value.retry_after is None
    assert len([r for r in caplog.records if r.message.startswith("retry")]) == 2


def test_server_down_is_connection_failed_after_bounded_retries(
    closed_port_url: str, call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    with (
        caplog.at_level(logging.INFO, logger="splitkit.api"),
        pytest.raises(ConnectionFailedError) as info,
    ):
        call(closed_port_url, "get_job", "us_jb_1")
    assert time.monotonic() - started < 5
    assert len([r for r in caplog.records if r.message.startswith("retry")]) == FAST.attempts - 1
    error = info.value
    assert str(error).startswith(f"GET {closed_port_url}/jobs/us_jb_1: cannot connect")
    assert error.method == "GET" and error.url == f"{closed_port_url}/jobs/us_jb_1"
    assert not error.request_sent
    assert TOKEN not in str(error) and TOKEN not in repr(error)


def test_timeout_is_connection_failed(scripted: Any, call: Call) -> None:
    for _ in range(2):
        scripted.reply(body={"data": JOB}, delay=1.0)
    policy = RetryPolicy(attempts=2, initial=0.0, max_wait=0.0, jitter=0.0)
    with pytest.raises(ConnectionFailedError, match=r"no answer within 0.2 s"):
        call(
            scripted.base_url, "get_job", "us_jb_1", client_kwargs={"retry": policy, "timeout": 0.2}
        )
    assert len(scripted.requests) == 2


def test_a_post_that_may_have_run_is_not_resent(scripted: Any, call: Call) -> None:
    # Resending a timed-out create_job or insert_records could duplicate what it made.
    scripted.reply(body={"data": JOB}, delay=1.0)
    with pytest.raises(ConnectionFailedError) as info:
        call(
            scripted.base_url,
            "create_job",
            "sheet",
            "x",
            "us_sh_1",
            client_kwargs={"retry": FAST, "timeout": 0.2},
        )
    assert info.value.request_sent and info.value.maybe_processed
    assert "no answer within 0.2 s" in str(info.value)
    assert "not retried: the server may have processed this POST" in str(info.value)
    assert len(scripted.requests) == 1


def test_a_post_answered_503_without_retry_after_is_not_resent(scripted: Any, call: Call) -> None:
    # Only Retry-After says "not processed, come back": a bare 503 may come after the work.
    scripted.reply(503, {"errors": [{"message": "upstream failed"}]})
    with pytest.raises(ServerError) as info:
        call(scripted.base_url, "split_job", "us_jb_1", 2)
    assert info.value.maybe_processed and info.value.retry_after is None
    assert "not retried: the server may have processed this POST" in str(info.value)
    assert len(scripted.requests) == 1


def test_a_post_answered_503_with_retry_after_is_resent(scripted: Any, call: Call) -> None:
    scripted.reply(503, {"errors": [{"message": "busy"}]}, headers={"Retry-After": "0"})
    scripted.reply(body={"data": JOB})
    assert call(scripted.base_url, "split_job", "us_jb_1", 2).id == "us_jb_1"
    assert len(scripted.requests) == 2


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_get_answered_5xx_is_resent(scripted: Any, call: Call, status: int) -> None:
    scripted.reply(status, {"errors": [{"message": "oops"}]})
    scripted.reply(body={"data": JOB})
    assert call(scripted.base_url, "get_job", "us_jb_1").id == "us_jb_1"
    assert len(scripted.requests) == 2


def test_no_retry_policy(scripted: Any, call: Call) -> None:
    scripted.reply(503, {"errors": [{"message": "down"}]})
    policy = RetryPolicy(attempts=1)
    with pytest.raises(ServerError):
        call(scripted.base_url, "get_job", "us_jb_1", client_kwargs={"retry": policy})
    assert len(scripted.requests) == 1


def test_list_parts_pages_through_the_wire(scripted: Any, call: Call) -> None:
    jobs = [{**JOB, "id": f"us_jb_p{i}", "parentId": "us_jb_1", "part": i} for i in range(3)]
    scripted.reply(body={"data": [jobs[1], jobs[0]]})
    scripted.reply(body={"data": jobs[2:]})
    parts = call(scripted.base_url, "list_parts", "us_jb_1", page_size=2)
    assert [p.id for p in parts] == ["us_jb_p0", "us_jb_p1", "us_jb_p2"]
    queries = [seen.query for seen in scripted.requests]
    assert queries == [
        "parentId=us_jb_1&pageNumber=1&pageSize=2",
        "parentId=us_jb_1&pageNumber=2&pageSize=2",
    ]


def _strings(value: Any) -> list[str]:
    """Every string in a decoded body: keys, values, nested."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


@pytest.mark.parametrize("kind", ["json", "text", "long", "odd"])
def test_an_echoed_token_is_redacted_everywhere(echo_url: str, call: Call, kind: str) -> None:
    # The server puts our Authorization header in its body: in the message, in the
    # decoded body (keys and nested values), and across the 300-character cut.
    with pytest.raises(ApiError) as info:
        call(echo_url, "get_job", kind)
    error = info.value
    shown = [str(error), repr(error), error.message, *map(str, error.args), *_strings(error.body)]
    for text in shown:
        assert TOKEN not in text
        assert TOKEN[:12] not in text  # not even the part before a cut
    assert "***" in str(error.body)
    if kind == "json":
        assert isinstance(error, BadRequestError)
        assert error.key == "auth"
        assert error.body["request"] == {
            "headers": {"authorization": "Bearer ***"},
            "seen": ["Bearer ***", {"again": "Bearer ***"}],
        }
        assert error.body["Bearer ***"] == "as a key"
    if kind == "odd":
        assert "unexpected response body" in str(error)
