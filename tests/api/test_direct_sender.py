"""``AsyncClient``'s direct sender puts on the wire exactly what httpx would.

The direct sender skips ``httpx.Request`` / ``httpx.Response`` and sends through the
default transport's aiohttp session (issue 10: half the client's CPU per request). These
tests send every kind of operation both ways to a real server that records what it got,
and compare the two byte for byte (method, path, query, headers, body), and check the
answers and errors read through it are the same ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import pytest
from test_request_builder import OPERATIONS

from splitkit.api import AsyncClient, NotFoundError, RateLimitedError, RetryPolicy
from splitkit.api import operations as ops
from splitkit.api._transports import AsyncDirectSender
from splitkit.api.operations import Operation

# The rest are left to httpx: a list filter or a time to escape, a path not ASCII or with
# a query of its own.
TAKEN = [op for op in OPERATIONS if op.path != "/events" and not op.path.startswith("/jobs?")]
TAKEN = [op for op in TAKEN if op.path.isascii() and dict(op.params).get("status") is None]
JOB = {
    "id": "us_jb_1",
    "type": "workbook",
    "operation": "split",
    "status": "executing",
    "createdAt": "2025-01-02T03:04:05.678Z",
    "updatedAt": "2025-01-02T03:04:06Z",
}
LEFT = [op for op in OPERATIONS if op not in TAKEN]


def _send_both(scripted: Any, op: Operation[Any]) -> tuple[Any, Any]:
    """What the server saw of ``op`` sent directly, then through httpx."""
    op = dataclasses.replace(op, parse=bytes)  # the scripted answer is not a job

    async def send() -> tuple[Any, Any]:
        async with AsyncClient(scripted.base_url, "secret-token", timeout=5) as client:
            assert isinstance(client._direct, AsyncDirectSender)
            assert client._direct.prepare(op) is not None
            await client._send_once(op)
            client._direct = None  # the same client, through httpx this time
            await client._send_once(op)
        return scripted.requests[-2], scripted.requests[-1]

    return asyncio.run(send())


@pytest.mark.parametrize("op", TAKEN, ids=lambda op: f"{op.method} {op.path}")
def test_the_wire_request_is_the_one_httpx_sends(scripted: Any, op: Operation[Any]) -> None:
    direct, through_httpx = _send_both(scripted, op)
    assert direct.method == through_httpx.method
    assert direct.path == through_httpx.path
    assert direct.query == through_httpx.query
    assert direct.body == through_httpx.body
    assert direct.headers == through_httpx.headers


def test_a_part_s_requests_are_taken() -> None:
    names = {(op.method, op.path) for op in TAKEN}
    assert {("POST", "/jobs/us_jb_1/ack"), ("GET", "/sheets/us_sh_1/records")} <= names
    assert ("POST", "/jobs/us_jb_1/complete") in names


@pytest.mark.parametrize("op", LEFT, ids=lambda op: f"{op.method} {op.path}")
def test_what_httpx_must_build_is_left_to_it(op: Operation[Any]) -> None:
    async def prepared() -> Any:
        async with AsyncClient("http://127.0.0.1:1/v1", "t") as client:
            assert client._direct is not None
            return client._direct.prepare(op)

    assert asyncio.run(prepared()) is None


def test_with_cookies_httpx_sends_it(scripted: Any) -> None:
    async def prepared() -> Any:
        async with AsyncClient(scripted.base_url, "t") as client:
            client._http.cookies.set("session", "abc", domain="127.0.0.1")
            assert client._direct is not None
            return client._direct.prepare(ops.get_job("us_jb_1"))

    assert asyncio.run(prepared()) is None


def test_behind_a_proxy_there_is_no_direct_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    async def senders() -> tuple[Any, Any]:
        async with (
            AsyncClient("https://api.example/v1", "t") as remote,
            AsyncClient("http://127.0.0.1:1/v1", "t") as loopback,
            AsyncClient("http://127.0.0.1:1/v1", "t", transport=httpx.MockTransport(print)) as mock,
        ):
            assert mock._direct is None  # a transport of the caller's: always httpx
            return remote._direct, loopback._direct

    remote, loopback = asyncio.run(senders())
    assert remote is not None and loopback is not None
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    remote, loopback = asyncio.run(senders())
    assert remote is None  # httpx routes it through the proxy
    assert loopback is not None  # loopback never goes through a proxy


def test_answers_and_errors_read_through_it_are_the_same(scripted: Any) -> None:
    async def read() -> list[Any]:
        seen: list[Any] = []
        once = RetryPolicy(attempts=1)  # the 429 raised as it came, not waited out
        async with AsyncClient(scripted.base_url, "secret-token", retry=once) as client:
            for direct in (True, False):
                if not direct:
                    client._direct = None
                scripted.reply(200, {"data": JOB})
                seen.append(await client.get_job("us_jb_1"))
                scripted.reply(404, {"errors": [{"message": "no job us_jb_2", "key": "id"}]})
                scripted.reply(429, {"errors": [{"message": "slow"}]}, headers={"Retry-After": "7"})
                for call in (client.get_job("us_jb_2"), client.execute_job("us_jb_3")):
                    with pytest.raises((NotFoundError, RateLimitedError)) as caught:
                        await call
                    error = caught.value
                    seen.append((type(error), str(error), error.key, error.retry_after))
        return seen

    seen = asyncio.run(read())
    half = len(seen) // 2
    assert seen[:half] == seen[half:]
    assert seen[1][0] is NotFoundError and seen[2][0] is RateLimitedError
    assert seen[2][3] == 7.0
