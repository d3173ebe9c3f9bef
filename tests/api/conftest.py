"""Fixtures for the client tests that need a server which misbehaves on purpose.

``scripted`` is a real HTTP server (Starlette + uvicorn on loopback, in a thread)
that answers with the replies a test queues, and records what it was sent.
The Flatfile-compatible server itself comes from ``tests/conftest.py``
(``server`` / ``fresh_server``).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port; yields its root URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Scripted:
    """Replies are served in order; once they run out every request gets ``{"data": {}}``."""

    url: str = ""
    replies: deque[tuple[int, dict[str, str], bytes, float]] = field(default_factory=deque)
    requests: list[Seen] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def reply(
        self,
        status: int = 200,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        delay: float = 0.0,
    ) -> None:
        content = raw if raw is not None else orjson.dumps({"data": {}} if body is None else body)
        self.replies.append((status, headers or {}, content, delay))

    def reset(self) -> None:
        self.replies.clear()
        self.requests.clear()

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(
            Seen(
                request.method,
                request.url.path,
                request.url.query,
                dict(request.headers),
                await request.body(),
            )
        )
        status, headers, content, delay = (
            self.replies.popleft() if self.replies else (200, {}, b'{"data": {}}', 0.0)
        )
        if delay:
            await asyncio.sleep(delay)
        return Response(content, status, headers, media_type="application/json")


@pytest.fixture(scope="session")
def _scripted_server() -> Iterator[Scripted]:
    scripted = Scripted()
    app = Starlette(routes=[Route("/{path:path}", scripted.endpoint, methods=METHODS)])
    with serve(app) as url:
        scripted.url = url
        yield scripted


@pytest.fixture
def scripted(_scripted_server: Scripted) -> Iterator[Scripted]:
    _scripted_server.reset()
    yield _scripted_server
    _scripted_server.reset()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on: connections are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def _echo_authorization(request: Request) -> Response:
    """Answers ``GET /v1/jobs/<kind>`` with the request's Authorization header inside the
    body, the way a careless proxy or debug server might."""
    auth = request.headers.get("authorization", "")
    kind = request.path_params["kind"]
    if kind == "json":  # a 400 with the header in the message, keys and nested values
        body: Any = {
            "errors": [{"message": f"refused: {auth}", "key": "auth"}],
            "request": {"headers": {"authorization": auth}, "seen": [auth, {"again": auth}]},
            auth: "as a key",
        }
        return Response(orjson.dumps(body), 400, media_type="application/json")
    if kind == "text":  # a 400 in plain text
        return Response(f"refused: {auth}", 400, media_type="text/plain")
    if kind == "long":  # the token across the 300-character cut (15 characters before it)
        return Response(f"{'x' * 277} {auth} tail", 400, media_type="text/plain")
    # a 200 whose body is not JSON: the "unexpected response body" snippet, same cut
    return Response(f"<html>{'x' * 271} {auth}</html>", 200, media_type="text/html")


@pytest.fixture(scope="session")
def echo_url() -> Iterator[str]:
    """Base URL (``.../v1``) of a server that echoes the Authorization header in its bodies:
    ``GET /jobs/json``, ``/jobs/text``, ``/jobs/long`` (400s) and ``/jobs/odd`` (200)."""
    app = Starlette(routes=[Route("/v1/jobs/{kind}", _echo_authorization, methods=["GET"])])
    with serve(app) as url:
        yield url + "/v1"
