"""What ``Client`` and ``AsyncClient`` share; nothing here does I/O.

Headers, request bodies, mapping an ``httpx.Response`` to a result or to a
typed error, naming what went wrong when no answer came, and the retry policy
(tenacity).

What is resent: 429, a 503 carrying ``Retry-After`` (the server says it did
not process the request), and a connection that could not be made (the
request never left), for every request; any other 5xx, and a connection
reset, closed or timed out after the request was sent, only for an
idempotent ``Operation`` (GET, PUT, PATCH, DELETE, and the acks). A POST that
fails in such a doubtful way raises at once with ``maybe_processed=True``: the
server may have carried it out, and sending it again could create twice what
it creates. When the answer carries ``Retry-After`` the wait is that, capped
at ``RetryPolicy.max_wait``.

The most requests one client call makes: ``RetryPolicy.attempts`` (default
4), the first try included; a call that pages (``list_parts``) makes at most
that many per page. Nothing else in splitkit resends a request. One addition
below splitkit: under ``AsyncClient`` aiohttp itself resends an idempotent
request (GET, PUT, DELETE; never a POST) once when the connection drops
before an answer (RFC 9112 §9.3.1), so such a call can make up to
2 × ``attempts`` requests when connections keep dropping.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson
from tenacity import RetryCallState, retry_if_exception, stop_after_attempt

from splitkit.api.config import ClientConfig
from splitkit.api.encoding import dumps
from splitkit.api.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    ConnectionFailedError,
    InvalidTransitionError,
    NotFoundError,
    RateLimitedError,
    ServerError,
)
from splitkit.api.operations import Operation

T = TypeVar("T")

log = logging.getLogger("splitkit.api")

# Generous: the dispatch engine runs many parts at once over one client.
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)
_SNIPPET = 300
_SUBSTRING_MIN = 8  # a shorter token is redacted only where it stands alone (see _redact)


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (``localhost``, ``127.x.x.x``, ``::1``).

    Such URLs are sent directly, never through a proxy from ``HTTP(S)_PROXY``: a
    proxy elsewhere cannot reach this machine's loopback (the embedded server).
    """
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Answer(Protocol):
    """What is read of a response: ``httpx.Response``, or the direct sender's answer."""

    @property
    def status_code(self) -> int: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def headers(self) -> Any: ...  # case-insensitive .get()
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_details(response: Answer) -> tuple[Any, str, str | None]:
    """(body, message, key) from any error body: Flatfile's, FastAPI's, or plain text."""
    text = response.text
    try:
        body: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = text
    message, key = "", None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            items = [e for e in errors if isinstance(e, dict)]
            message = "; ".join(str(e.get("message", "")) for e in items if e.get("message"))
            key = next((str(e["key"]) for e in items if e.get("key")), None)
        if not message:
            detail = body.get("message") or body.get("detail") or body.get("error")
            message = detail if isinstance(detail, str) else dumps(body).decode()
    elif text.strip():
        message = " ".join(text.split())
    return body, message or response.reason_phrase or f"HTTP {response.status_code}", key


def _clip(message: str) -> str:
    return message[:_SNIPPET] + "…" if len(message) > _SNIPPET else message


class BaseClient:
    """Settings and everything around a request except sending it."""

    def __init__(self, config: ClientConfig) -> None:
        if not isinstance(config, ClientConfig):
            raise ValueError(f"config must be a ClientConfig, got {type(config).__name__}")
        self._config = config

    @property
    def config(self) -> ClientConfig:
        """The settings this client was made with (the token stays out of its repr)."""
        return self._config

    def __repr__(self) -> str:
        env = self._config.environment_id
        return f"<{type(self).__name__} base_url={self._config.base_url!r} environment_id={env!r}>"

    def _environment(self, environment_id: str | None) -> str | None:
        return self._config.environment_id if environment_id is None else environment_id

    # -- building ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        # Both official SDKs send X-Disable-Hooks; the platform docs list it as required.
        return {
            "Authorization": f"Bearer {self._config.token}",
            "X-Disable-Hooks": "true",
            "Accept": "application/json",
            "User-Agent": "splitkit",
        }

    # -- reading ----------------------------------------------------------------------------

    def _result(self, op: Operation[T], response: Answer) -> T:
        if response.status_code >= 400:
            raise self._error(op, response)
        try:
            return op.parse(response.content)
        except (ValueError, KeyError, TypeError) as exc:
            # Redacted whole, then cut: a cut could leave part of the token behind.
            snippet = self._redact(response.text)[:_SNIPPET]
            raise ApiError(
                op.method,
                op.path,
                response.status_code,
                self._redact(f"unexpected response body ({exc})"),
                snippet,
            ) from exc

    def _error(self, op: Operation[Any], response: Answer) -> ApiError:
        status = response.status_code
        body, message, key = _error_details(response)
        message = _clip(self._redact(message))  # redacted before the cut: no token half left
        body = self._redact_body(body)
        args = (op.method, op.path, status, message, body)
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if status in (401, 403):
            return AuthError(*args, key=key)
        if status == 404:
            return NotFoundError(*args, key=key)
        if status == 400 and _has_key(body, "transition"):
            return InvalidTransitionError(*args, key="transition")
        if status in (400, 422):
            return BadRequestError(*args, key=key)
        if status == 429:
            return RateLimitedError(*args, key=key, retry_after=retry_after)
        if status >= 500:
            # Only a 503 with Retry-After says "not processed, come back"; after any other
            # 5xx (a gateway's 502 may follow a forwarded request) the work may be done.
            unprocessed = status == 503 and retry_after is not None
            doubtful = not op.idempotent and not unprocessed
            return ServerError(*args, key=key, retry_after=retry_after, maybe_processed=doubtful)
        return ApiError(*args, key=key)

    def _connection_failed(self, op: Operation[Any], failure: Failure) -> ConnectionFailedError:
        name = type(failure.cause).__name__
        detail = f"{name}: {str(failure.cause) or name}"
        timeout = self._config.timeout
        reason = {
            "refused": f"cannot connect ({detail})",
            "connect_timeout": f"cannot connect within {timeout:g} s ({name})",
            "pool_timeout": f"no free connection within {timeout:g} s ({name})",
            "timeout": f"no answer within {timeout:g} s ({name})",
            "reset": f"connection reset by the server before an answer ({detail})",
            "closed": f"connection closed by the server before an answer ({detail})",
            "lost": f"connection lost ({detail})",
        }[failure.kind]
        url = self._config.base_url + op.path
        return ConnectionFailedError(
            op.method,
            url,
            reason,  # built here from the transport's error: it never holds the token
            request_sent=failure.sent,
            maybe_processed=failure.sent and not op.idempotent,
        )

    def _redact(self, text: str) -> str:
        """Hide the token in text the *server* sent (it might echo the Authorization
        header). Messages the client builds never hold the token in the first place.

        A short token (under `_SUBSTRING_MIN` characters, a test's `t`) is replaced only
        where it stands alone: as a substring it would mangle every word ("canno*")."""
        token = self._config.token
        if len(token) >= _SUBSTRING_MIN:
            return text.replace(token, "***")
        return re.sub(rf"(?<![\w-]){re.escape(token)}(?![\w-])", "***", text)

    def _redact_body(self, body: Any) -> Any:
        """An error body with the token replaced in every string, keys and nested values too."""
        if isinstance(body, str):
            return self._redact(body)
        if isinstance(body, dict):
            return {self._redact_body(k): self._redact_body(v) for k, v in body.items()}
        if isinstance(body, list | tuple):
            return type(body)(self._redact_body(item) for item in body)
        return body

    # -- retrying ---------------------------------------------------------------------------

    def _retry_options(self) -> dict[str, Any]:
        """Keyword arguments for tenacity's ``Retrying`` / ``AsyncRetrying``.

        At most ``RetryPolicy.attempts`` sends of one request: the most requests
        one client call makes (per page for a paging call).
        """
        return {
            "retry": retry_if_exception(_retryable),
            "stop": stop_after_attempt(self._config.retry.attempts),
            "wait": self._wait,
            "before_sleep": _log_retry,
            "reraise": True,
        }

    def _resend_worthy(self, exc: BaseException) -> bool:
        """Whether a failed first try goes on to the retry loop (which replays it first)."""
        return _retryable(exc)

    def _wait(self, state: RetryCallState) -> float:
        policy = self._config.retry
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, ApiError) and exc.retry_after is not None:
            return min(exc.retry_after, policy.max_wait)
        return policy.backoff(state.attempt_number, random.random())


class RequestBuilder:
    """The ``httpx.Request`` of an operation, as ``client.build_request`` makes it, for less.

    httpx parses the URL three times per request (the path, the path joined to the base
    URL, then again to add the query; ~0.15 ms each, a fifth of the client's CPU per part
    in dispatch). This joins the already escaped path and query as text and parses once;
    the client's headers, cookies and timeout are merged as ``build_request`` merges them
    (``tests/api/test_request_builder.py`` compares the two). A path that is not plain
    ASCII, or holds a query or fragment of its own, goes through ``build_request``.
    """

    def __init__(self, http: httpx.Client | httpx.AsyncClient) -> None:
        self._http = http
        self._base = http.base_url
        self._base_path = http.base_url.raw_path  # httpx ends it with "/"
        self._extensions = {"timeout": http.timeout.as_dict()}

    def build(self, op: Operation[Any]) -> httpx.Request:
        path = op.path
        if not path.isascii() or "?" in path or "#" in path:
            return self._http.build_request(op.method, path, **_request_kwargs(op))
        raw_path = self._base_path + path.lstrip("/").encode("ascii")
        if op.params:
            raw_path += b"?" + str(httpx.QueryParams(op.params)).encode("ascii")
        headers = self._http.headers
        content = None
        if op.json is not None:
            headers = httpx.Headers(headers)
            headers["Content-Type"] = "application/json"
            content = dumps(op.json)
        return httpx.Request(
            op.method,
            self._base.copy_with(raw_path=raw_path),
            headers=headers,
            content=content,
            cookies=self._http.cookies or None,
            extensions=self._extensions,
        )


def _request_kwargs(op: Operation[Any]) -> dict[str, Any]:
    if op.json is None:
        return {"params": op.params}
    return {
        "params": op.params,
        "content": dumps(op.json),
        "headers": {"Content-Type": "application/json"},
    }


def _retryable(exc: BaseException) -> bool:
    # Whether a failure leaves a non-idempotent request in doubt is decided once, where
    # the error is made (``maybe_processed``); such a request is never resent.
    if isinstance(exc, ConnectionFailedError | RateLimitedError | ServerError):
        return not exc.maybe_processed
    return False


# -- naming a failure without an answer -------------------------------------------------------

FailureKind = Literal[
    "refused", "connect_timeout", "pool_timeout", "timeout", "reset", "closed", "lost"
]
# OS errors that mean the peer tore the connection down.
RESET_ERRORS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


@dataclass(frozen=True, slots=True)
class Failure:
    """What happened to a request that got no answer.

    ``sent`` is False only when the request certainly never left (no connection
    was made); ``cause`` is the error to name in the message.
    """

    kind: FailureKind
    sent: bool
    cause: BaseException


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from, outermost first (transports re-wrap errors)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def httpx_failure(exc: BaseException) -> Failure:
    """Name an httpx transport error (or a bare ``TimeoutError``)."""
    # httpx wraps httpcore's error of the same name: show that, it carries the OS detail.
    cause = exc.__cause__ or exc
    if isinstance(exc, httpx.ConnectTimeout):
        return Failure("connect_timeout", False, cause)
    if isinstance(exc, httpx.PoolTimeout):
        return Failure("pool_timeout", False, cause)
    if isinstance(exc, httpx.ConnectError):
        return Failure("refused", False, cause)
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return Failure("timeout", True, cause)
    if any(isinstance(e, RESET_ERRORS) for e in causes(exc)):
        return Failure("reset", True, cause)
    if isinstance(exc, httpx.RemoteProtocolError) and "disconnected" in str(exc).lower():
        # httpcore: "Server disconnected without sending a response."
        return Failure("closed", True, cause)
    return Failure("lost", True, cause)


def _has_key(body: Any, key: str) -> bool:
    errors = body.get("errors") if isinstance(body, dict) else None
    return isinstance(errors, list) and any(
        isinstance(e, dict) and e.get("key") == key for e in errors
    )


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.info("retry %d in %.2f s after %s", state.attempt_number, wait, exc)
