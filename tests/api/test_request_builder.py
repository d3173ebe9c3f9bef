"""The client's own request builder makes exactly the request httpx's ``build_request`` makes.

``RequestBuilder`` joins the escaped path and query itself to parse the URL once (httpx
parses it three times); these tests hold it to httpx's result for every kind of operation:
URL, method, headers (order and case), body and timeout.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from splitkit.api import AsyncClient, Client
from splitkit.api import operations as ops
from splitkit.api._base import RequestBuilder, _request_kwargs
from splitkit.api.operations import Operation

OPERATIONS: list[Operation[Any]] = [
    ops.ack_job("us_jb_1", info="part 3 started (10 parts)", progress=0),
    ops.complete_job("us_jb_1", outcome={"message": "ünïcode ✓", "n": 1.5}),
    ops.fail_job("us_jb_1", message="boom", outcome={"acknowledge": True}),
    ops.get_job("us_jb_ab/../c d?x=1#y"),  # escaped into one segment by `segment`
    ops.get_records("us_sh_1", page_number=7, page_size=1_000),
    ops.get_records_raw("us_sh_1", page_number=1, page_size=1),
    ops.list_jobs(parent_id="us_jb_1", page_number=2, page_size=10, status=["a&b", "c d"]),
    ops.list_events(
        since=datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC),
        topic="job:ready",
        environment_id="us_env_é",
        after_sequence=41,
    ),
    ops.insert_records("us_sh_1", [{"name": "Zoë", "n": None}]),
    ops.get_counts("us_sh_1"),
    # Paths the builder leaves to httpx: not ASCII, or with a query of their own.
    Operation("GET", "/jobs/é", bytes),
    Operation("GET", "/jobs?pageSize=1", bytes, (("pageNumber", "2"),)),
]

BASE_URLS = ["http://127.0.0.1:8123/v1", "http://127.0.0.1:8123/v1/", "https://api.example/"]


def _same(built: httpx.Request, reference: httpx.Request) -> None:
    assert built.method == reference.method
    assert str(built.url) == str(reference.url)
    assert built.url.raw_path == reference.url.raw_path
    assert built.headers.multi_items() == reference.headers.multi_items()
    assert built.read() == reference.read()
    assert built.extensions == reference.extensions


@pytest.mark.parametrize("base_url", BASE_URLS)
@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_the_request_is_the_one_httpx_builds(base_url: str, op: Operation[Any]) -> None:
    with Client(base_url, "secret-token", timeout=7.5) as client:
        http = client._http
        _same(
            RequestBuilder(http).build(op),
            http.build_request(op.method, op.path, **_request_kwargs(op)),
        )


def test_the_async_client_builds_the_same_requests() -> None:
    async def check() -> None:
        async with AsyncClient(BASE_URLS[0], "secret-token", timeout=3) as client:
            http = client._http
            builder = RequestBuilder(http)
            for op in OPERATIONS:
                reference = http.build_request(op.method, op.path, **_request_kwargs(op))
                _same(builder.build(op), reference)

    asyncio.run(check())


def test_cookies_the_server_set_are_sent_as_httpx_sends_them() -> None:
    with Client(BASE_URLS[0], "secret-token") as client:
        client._http.cookies.set("session", "abc", domain="127.0.0.1")
        op = ops.get_job("us_jb_1")
        built = RequestBuilder(client._http).build(op)
        assert built.headers["Cookie"] == "session=abc"
        _same(built, client._http.build_request(op.method, op.path, **_request_kwargs(op)))
