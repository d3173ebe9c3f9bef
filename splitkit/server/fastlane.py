"""FastLane: the per-part routes served on the event loop, ahead of FastAPI.

A dispatched part costs three requests (ack, its records page, complete), and through
FastAPI each of them paid for dependency injection, a pydantic pass over the query, the
body guard and a hop to the thread pool (and back) for the sync route: several times the
SQLite work itself (see BENCHMARKS.md, "Throughput"). This ASGI middleware answers the
common case of those routes itself, with the same domain code (``jobs``, ``pages``) and
byte-for-byte the same answers:

- ``POST /v1/jobs/{id}/ack``, ``.../complete``, ``.../fail`` with no body or a small JSON
  object (validated by the routes' own pydantic models),
- ``GET /v1/jobs/{id}``,
- ``GET /v1/sheets/{id}/records`` with only ``pageNumber``, ``pageSize`` and ``for``.

Everything else, and every case it is not sure of, goes to FastAPI unchanged (the body it
read is replayed): a missing or wrong token (FastAPI words the 401), a query or body the
models refuse (FastAPI words the 400), a body that is large or not JSON (the body guard
decides), and a database that would make it wait (:class:`~.store.Busy`: another
thread or process holds the write lock; the thread pool waits for it instead of the
loop). A refused transition or an unknown id is answered here, in the error shape of
``errors.py``. Nothing was written when a request is handed on.

SQLite runs on the loop thread here: a part's statements take ~0.1-0.5 ms, less than the
hop to a worker thread cost, and they never wait (``Store.no_wait``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from . import jobs, pages, records
from .errors import HttpProblem, error_response
from .limits import BodyProblem, check_json, replay
from .routes.common import MAX_PAGE_NUMBER
from .routes.jobs import AckDetails, CompleteDetails
from .store import Busy, Store

JSON_HEADERS: Final = [(b"content-type", b"application/json")]
# bodies above this go the long way (the body guard, off the loop for large ones)
MAX_FAST_BODY: Final = 64 * 1024
_PAGE_PARAMS: Final = frozenset({b"pageNumber", b"pageSize", b"for"})

JobAction = Callable[[Store, str, Mapping[str, Any]], dict[str, Any]]
_ACTIONS: Final[dict[str, tuple[JobAction, type[BaseModel]]]] = {
    "ack": (jobs.ack, AckDetails),
    "complete": (jobs.complete, CompleteDetails),
    "fail": (jobs.fail, CompleteDetails),
}


class _HandOn(Exception):
    """Not a case for the fast lane: FastAPI answers it."""


class FastLane:
    """ASGI middleware in front of the app: see the module docstring."""

    def __init__(self, app: ASGIApp, store: Store, token: str, max_body_bytes: int) -> None:
        self.app = app
        self.store = store
        self.authorization = b"Bearer " + token.encode()
        self.max_body = min(max_body_bytes, MAX_FAST_BODY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = _route(scope["method"], scope["path"])
        if route is None or not self._authorized(scope):
            await self.app(scope, receive, send)
            return
        body = b""
        if scope["method"] == "POST":
            read = await _read_body(receive, self.max_body)
            if read is None:  # the client went away
                return
            body, complete = read
            if not complete:
                await self.app(scope, replay(body, receive, more=True), send)
                return
        try:
            content = self._answer(route, scope, body)
        except HttpProblem as problem:
            entry = {"message": problem.message}
            if problem.key is not None:
                entry = {"key": problem.key, "message": problem.message}
            await error_response(problem.status, [entry])(scope, receive, send)
            return
        except (_HandOn, Busy):
            await self.app(scope, replay(body, receive), send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(content)).encode()), *JSON_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": content})

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":  # the first one, as Starlette's Headers.get reads
                return hmac.compare_digest(value, self.authorization)
        return False

    def _answer(self, route: tuple[str, str, str], scope: Scope, body: bytes) -> bytes:
        kind, ident, action = route
        with self.store.no_wait():
            if kind == "records":
                number, size = _page_params(scope["query_string"])
                return pages.page(self.store, ident, number, size)
            if action == "":
                return orjson.dumps({"data": jobs.get(self.store, ident)})
            apply, model = _ACTIONS[action]
            details = _details(scope, body, model)
            return orjson.dumps({"data": apply(self.store, ident, details)})


def _route(method: str, path: str) -> tuple[str, str, str] | None:
    """(kind, id, action) of a fast-lane route, or None."""
    segments = path.split("/")
    # "", "v1", "jobs", id[, action]  |  "", "v1", "sheets", id, "records"
    if len(segments) < 4 or segments[0] != "" or segments[1] != "v1" or not segments[3]:
        return None
    if segments[2] == "jobs":
        if method == "GET" and len(segments) == 4:
            return "job", segments[3], ""
        if method == "POST" and len(segments) == 5 and segments[4] in _ACTIONS:
            return "job", segments[3], segments[4]
    elif segments[2] == "sheets" and method == "GET" and segments[4:] == ["records"]:
        return "records", segments[3], ""
    return None


def _page_params(query: bytes) -> tuple[int, int]:
    """pageNumber and pageSize when the query holds nothing else the route would check."""
    values: dict[bytes, bytes] = {}
    for pair in query.split(b"&") if query else ():
        name, _, value = pair.partition(b"=")
        if name not in _PAGE_PARAMS or name in values:
            raise _HandOn(name)  # a selection, an unknown or a repeated parameter
        values[name] = value
    number = _bounded(values.get(b"pageNumber"), 1, MAX_PAGE_NUMBER)
    size = _bounded(values.get(b"pageSize"), records.MAX_PAGE_SIZE, records.MAX_PAGE_SIZE)
    return number, size


def _bounded(text: bytes | None, default: int, high: int) -> int:
    if text is None:
        return default
    # plain decimal only: a sign, a leading zero or a long number is the model's to judge
    if not text.isdigit() or text[:1] == b"0" or len(text) > 10:
        raise _HandOn(text)
    value = int(text)
    if not 1 <= value <= high:
        raise _HandOn(text)
    return value


def _details(scope: Scope, body: bytes, model: type[BaseModel]) -> dict[str, Any]:
    """The body's fields as the route's model gives them (FastAPI words any refusal)."""
    if not body:
        return {}
    for name, value in scope["headers"]:
        if name == b"content-type" and value.split(b";", 1)[0].strip().lower() != (
            b"application/json"
        ):
            raise _HandOn(value)
    try:
        check_json(body)
        parsed = orjson.loads(body)
        if type(parsed) is not dict:
            raise _HandOn(type(parsed).__name__)
        fields: dict[str, Any] = model.model_validate(parsed).model_dump(
            mode="json", exclude_none=True
        )
    except (ValueError, BodyProblem) as exc:  # pydantic's ValidationError is a ValueError
        raise _HandOn(str(exc)) from None
    return fields


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool] | None:
    """(the body, or its first chunks past ``limit``; whether it is all), None on disconnect."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
        if not more:
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False
