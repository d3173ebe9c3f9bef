"""Both clients honour HTTP(S)_PROXY / NO_PROXY alike (issue 9.4).

Behind a proxy, splitting (sync client) worked while dispatch (async client, aiohttp
transport) could not connect: the bare aiohttp transport read no proxy variables. A real
forward proxy on loopback counts what reaches it. The API's host is a name that exists only
for the proxy (``splitkit-api.test``): a request that skipped the proxy cannot arrive.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from splitkit.api import AsyncClient, Client, ConnectionFailedError
from splitkit.server import EmbeddedServer

API_HOST = "splitkit-api.test"  # .test is reserved (RFC 6761): it resolves nowhere


class ForwardProxy(ThreadingHTTPServer):
    """A plain HTTP forward proxy sending every request for API_HOST to ``upstream``."""

    def __init__(self, upstream_root: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream_root = upstream_root
        self.seen: Counter[tuple[str, str]] = Counter()
        self.http = httpx.Client(trust_env=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    server: ForwardProxy
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        target = urlsplit(self.path)  # a proxy request carries the absolute URL
        self.server.seen[(self.command, target.path)] += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        query = f"?{target.query}" if target.query else ""
        answer = self.server.http.request(
            self.command,
            self.server.upstream_root + target.path + query,
            content=body,
            headers=headers,
        )
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer.content)
        self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def proxy(server: EmbeddedServer) -> Iterator[ForwardProxy]:
    running = ForwardProxy(server.root_url)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.shutdown()
        running.http.close()


@pytest.fixture
def behind_proxy(monkeypatch: pytest.MonkeyPatch, proxy: ForwardProxy) -> ForwardProxy:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    return proxy


def _list_async(url: str, token: str) -> int:
    async def listed() -> int:
        async with AsyncClient(url, token, timeout=5) as client:
            return len(await client.list_environments())

    return asyncio.run(listed())


def test_both_clients_go_through_the_proxy_from_the_environment(
    server: EmbeddedServer, behind_proxy: ForwardProxy
) -> None:
    url = f"http://{API_HOST}/v1"
    with Client(url, server.token, timeout=5) as client:
        assert len(client.list_environments()) == 1
    assert behind_proxy.seen[("GET", "/v1/environments")] == 1
    assert _list_async(url, server.token) == 1  # the async client too
    assert behind_proxy.seen[("GET", "/v1/environments")] == 2


def test_no_proxy_is_honoured_by_both_clients(
    server: EmbeddedServer, behind_proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", API_HOST)
    url = f"http://{API_HOST}/v1"
    with Client(url, server.token, timeout=5) as client, pytest.raises(ConnectionFailedError):
        client.list_environments()  # straight to a host that does not exist
    with pytest.raises(ConnectionFailedError):
        _list_async(url, server.token)
    assert behind_proxy.seen == Counter()  # neither went through the proxy
