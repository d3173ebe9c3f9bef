"""BodyGuard: the checks every request body passes before any route sees it.

- Size: a body above ``ServerConfig.max_body_mb`` is answered 413. A Content-Length above
  the limit is refused before a byte of the body is read; a chunked body is counted while
  it streams in and refused as soon as it passes the limit, so memory stays bounded.
- JSON (a body the routes would read as JSON): nested deeper than :data:`MAX_JSON_DEPTH`,
  or holding ``NaN`` / ``Infinity`` / a number beyond a double (``1e400``), is a 400 naming
  where. Python's ``json`` (what FastAPI parses with) accepts all of these; they used to
  end as a 500 (pydantic's or orjson's recursion limits) or be stored as ``null``.

Anything else (invalid JSON, wrong shapes) passes through to the routes and their errors.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

import anyio
import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

MAX_JSON_DEPTH: Final = 128
"""Levels of nesting a JSON body may have (the body itself is level 1). Every stored
document stays far inside orjson's 255 levels once wrapped for the wire."""

MIB: Final = 1024 * 1024
_THREAD_PARSE_BYTES: Final = 256 * 1024  # parse larger bodies off the event loop
_ORJSON_DEPTH_ERROR: Final = "depth limit exceeded"
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}:,]')


class BodyProblem(Exception):
    """A body refused by :class:`BodyGuard`: its key (where) and message."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"


def too_large_message(size: int | None, limit: int) -> str:
    shown = f"more than {limit / MIB:g} MiB" if size is None else _mib(size)
    return f"request body is {shown}; the limit is {limit / MIB:g} MiB (--max-body-mb)"


# -- where in a document: "config.a[3].b" ---------------------------------------------------


def _join(path: list[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "body"


def _shown_path(path: list[str | int]) -> str:
    """The path, its middle elided when a deep nesting makes it long."""
    if len(path) <= 8:
        return _join(path)
    return f"{_join(path[:4])}...{_join(path[-2:])}"


def _field(path: list[str | int]) -> str:
    """The key of an error: the top-level field (``config``) or record (``[0]``)."""
    return _join(path[:1])


def _too_deep(path: list[str | int]) -> BodyProblem:
    return BodyProblem(
        _field(path),
        f"{_field(path)}: JSON nested deeper than {MAX_JSON_DEPTH} levels (at "
        f"{_shown_path(path)}); the limit is {MAX_JSON_DEPTH} levels",
    )


def _depth(value: Any, limit: int) -> int:
    """The nesting depth of ``value`` (a container is one level), counted up to ``limit + 1``.
    Level by level, keeping only containers: a records body is mostly strings."""
    level, depth = [value], 0
    while level and depth <= limit:
        depth += 1
        deeper: list[Any] = []
        for node in level:
            children = node.values() if type(node) is dict else node
            deeper += [c for c in children if type(c) is dict or type(c) is list]
        level = deeper
    return depth


def _depth_path(value: Any) -> list[str | int]:
    """The path to a container nested deeper than the limit (``value`` has one): the same
    walk, each container remembering its parent and key (only on this refusing path)."""
    Entry = tuple[Any, Any, str | int]  # (container, parent entry, key in the parent)
    level: list[Entry] = [(value, None, 0)]
    for _ in range(MAX_JSON_DEPTH):
        deeper: list[Entry] = []
        for entry in level:
            node = entry[0]
            items = node.items() if type(node) is dict else enumerate(node)
            deeper += [(c, entry, k) for k, c in items if type(c) is dict or type(c) is list]
        level = deeper
    entry, path = level[0], []
    while entry[1] is not None:
        path.append(entry[2])
        entry = entry[1]
    return path[::-1]


def _path_at_limit(body: bytes) -> list[str | int]:
    """The path to the first container of ``body`` nested deeper than the limit, read from
    the text (for bodies too deep for the parsers). Scans tokens until that container."""
    path: list[str | int] = []
    kinds: list[bytes] = []
    pending_key: str | int = 0
    for match in _TOKEN.finditer(body):
        token = match.group()
        if token in (b"{", b"["):
            if kinds:
                path.append(pending_key)
            kinds.append(token)
            if len(kinds) > MAX_JSON_DEPTH:
                return path
            pending_key = 0
        elif token in (b"}", b"]"):
            kinds.pop()
            pending_key = path.pop() if path else 0
        elif token == b",":
            if kinds and kinds[-1] == b"[":
                pending_key = pending_key + 1 if isinstance(pending_key, int) else 0
        elif token != b":" and kinds and kinds[-1] == b"{":
            pending_key = str(json.loads(token))  # a key (or a value, overwritten by the next key)
    return path


# -- non-finite numbers ---------------------------------------------------------------------


class _NonFinite:
    def __init__(self, text: str) -> None:
        self.text = text


def _non_finite_float(text: str) -> float | _NonFinite:
    number = float(text)
    return number if math.isfinite(number) else _NonFinite(text)


def _find_non_finite(value: Any, path: list[str | int]) -> tuple[list[str | int], str] | None:
    stack: list[tuple[Any, list[str | int]]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, _NonFinite):
            return where, node.text
        if type(node) is dict or type(node) is list:
            items = node.items() if type(node) is dict else enumerate(node)
            stack.extend((child, [*where, key]) for key, child in reversed(list(items)))
    return None


def _non_finite_problem(body: bytes) -> BodyProblem | None:
    """Where Python's json (which accepts them) finds NaN, Infinity or 1e400, if anywhere."""
    try:
        value = json.loads(body, parse_constant=_NonFinite, parse_float=_non_finite_float)
    except (ValueError, RecursionError):
        return None  # not JSON at all: the route's own parse reports it
    found = _find_non_finite(value, [])
    if found is None:
        return None
    path, text = found
    where = _join(path)
    return BodyProblem(
        where,
        f"{where}: {text} is not a finite number; JSON numbers must be finite "
        "(send null or a string instead)",
    )


def check_json(body: bytes) -> None:
    """Raise :class:`BodyProblem` for a body nested too deep or holding a non-finite number.

    orjson parses strictly (no NaN/Infinity, no overflow to infinity); only when it refuses
    is the body parsed again to say where."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if _ORJSON_DEPTH_ERROR in str(exc):
            raise _too_deep(_path_at_limit(body)) from None
        problem = _non_finite_problem(body)
        if problem is not None:
            raise problem from None
        return  # invalid JSON, or JSON orjson refuses (lone surrogates): the route decides
    # every bracket might open a level: fewer than the limit cannot be too deep
    if (
        body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH
        and _depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH
    ):
        raise _too_deep(_depth_path(value))


def _reads_json(headers: Headers) -> bool:
    """Whether the routes read this body as JSON (the app reads a body without a type so)."""
    content_type = headers.get("content-type")
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class BodyGuard:
    """ASGI middleware: reads the body (within ``max_body_bytes``), checks it, replays it."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        if declared is not None and declared > self.max_body_bytes:
            # refused before reading a byte: the server keeps nothing of it
            refusal = too_large_message(declared, self.max_body_bytes)
            await self._refuse(scope, receive, send, 413, None, refusal)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                refusal = too_large_message(None, self.max_body_bytes)
                await self._refuse(scope, receive, send, 413, None, refusal)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks
        if body and _reads_json(headers):
            try:
                if len(body) > _THREAD_PARSE_BYTES:
                    await anyio.to_thread.run_sync(check_json, body)
                else:
                    check_json(body)
            except BodyProblem as problem:
                await self._refuse(scope, receive, send, 400, problem.key, problem.message)
                return
        await self.app(scope, replay(body, receive), send)

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, status: int, key: str | None, message: str
    ) -> None:
        entry = {"message": message} if key is None else {"key": key, "message": message}
        # No "Connection: close" on a 413: uvicorn then reads the rest of the body and drops
        # it (nothing is kept), so a client still sending gets the answer, not a reset.
        await error_response(status, [entry])(scope, receive, send)


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def replay(body: bytes, receive: Receive, *, more: bool = False) -> Callable[[], Any]:
    """A receive that hands over what was read once (``more``: the rest is still to come),
    then the client's later messages."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replayed
