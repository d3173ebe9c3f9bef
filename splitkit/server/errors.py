"""API errors and their one wire shape: ``{"errors": [{"key"?: ..., "message": ...}]}``.

Domain code raises :class:`HttpProblem` (or a helper below); :func:`install` maps it,
FastAPI's validation errors (400, never 422), Starlette's HTTP errors and the few foreign
errors user input can still provoke (unstorable values, a busy database) to that shape.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

log = logging.getLogger("splitkit.server")

_MAX_ECHO = 80  # ids from the URL are echoed in messages, cut so a huge one stays readable


class HttpProblem(Exception):
    """An error answered with ``status`` and ``{"errors": [{"key", "message"}]}``.

    Named apart from the client's ``splitkit.api.errors.ApiError`` (which it becomes on the
    other side of the wire), and outside ``SplitkitError``: it never leaves the server.
    The server encodes its answers with ``orjson.dumps`` directly, not the client's
    ``splitkit.api.encoding.dumps``: it only encodes what it stored or built (plain JSON
    types), and the server never imports the client.
    """

    def __init__(self, status: int, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.key = key


def echo(value: object) -> str:
    """A user-supplied value, quoted and shortened, for use inside a message."""
    text = repr(value)
    return text if len(text) <= _MAX_ECHO else text[: _MAX_ECHO - 3] + "..."


def not_found(kind: str, ident: str) -> HttpProblem:
    return HttpProblem(404, f"{kind} {echo(ident)} not found", key="id")


def bad_request(key: str, message: str) -> HttpProblem:
    return HttpProblem(400, message, key=key)


def refused(job_id: str, status: str, transition: str, why: str = "") -> HttpProblem:
    """A refused job state change: names the job, its status and the transition."""
    reason = f": {why}" if why else ""
    return HttpProblem(
        400, f"cannot {transition} job {job_id} (status {status!r}){reason}", "transition"
    )


def error_response(status: int, errors: Sequence[dict[str, str]]) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(
        orjson.dumps({"errors": list(errors)}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _entry(message: str, key: str | None = None) -> dict[str, str]:
    return {"message": message} if key is None else {"key": key, "message": message}


def _validation_entries(errors: Sequence[Any]) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    for error in errors:
        if error.get("type") == "json_invalid":  # its loc is ("body", <character offset>)
            detail = (error.get("ctx") or {}).get("error", "JSON decode error")
            position = error["loc"][-1] if error.get("loc") else "?"
            entries.append(_entry(f"body: not valid JSON ({detail} at {position})", "body"))
            continue
        loc = [str(part) for part in error.get("loc", ())]
        # the first element says where ("body", "query", "path"); the rest names the field
        key = ".".join(loc[1:]) or (loc[0] if loc else "body")
        entry = _entry(f"{key}: {error.get('msg', 'invalid value')}", key)
        if entry not in entries:
            entries.append(entry)
    return entries or [_entry("invalid request", "body")]


async def _on_http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpProblem)
    return error_response(exc.status, [_entry(exc.message, exc.key)])


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, _validation_entries(exc.errors()))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"{request.method} {request.url.path} is not a route of this server"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, [_entry(message)])


async def _on_unstorable(request: Request, exc: Exception) -> Response:
    # lone surrogates or integers beyond 64 bits reach here from free-form JSON fields
    return error_response(
        400, [_entry(f"the request holds a value that cannot be stored: {exc}", "body")]
    )


async def _on_database_error(request: Request, exc: Exception) -> Response:
    if "locked" not in str(exc) and "busy" not in str(exc):
        return await _on_unexpected(request, exc)
    log.warning("database busy on %s %s", request.method, request.url.path)
    return Response(
        orjson.dumps({"errors": [_entry("the database is busy; retry the request")]}),
        status_code=503,
        media_type="application/json",
        headers={"Retry-After": "1"},
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # Logged with the method and path only: headers (and so the token) never reach a log.
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, [_entry(f"internal error: {type(exc).__name__}")])


def install(app: FastAPI) -> None:
    """Register every error handler on ``app``."""
    app.add_exception_handler(HttpProblem, _on_http_problem)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(orjson.JSONEncodeError, _on_unstorable)
    app.add_exception_handler(UnicodeEncodeError, _on_unstorable)
    app.add_exception_handler(OverflowError, _on_unstorable)
    app.add_exception_handler(sqlite3.OperationalError, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
