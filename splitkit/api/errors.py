"""The exceptions the client raises (the whole tree, with the engine's, settle's and
split's errors, is drawn in ``splitkit.errors``; its root is re-exported here).

    SplitkitError                (splitkit.errors)
    ├── ApiError                 the server answered with a 4xx/5xx
    │   ├── AuthError            401, 403: missing, wrong or insufficient token
    │   ├── NotFoundError        404: unknown id
    │   ├── BadRequestError      400, 422: the server refused the input
    │   │   └── InvalidTransitionError   400 with error key "transition"
    │   ├── RateLimitedError     429 (``retry_after`` in seconds, or None)
    │   └── ServerError          5xx (a busy server's 503 carries ``retry_after`` too)
    └── ConnectionFailedError    no answer: cannot connect, timed out, connection
                                 reset or closed by the server before an answer

Argument checks raise ``ValueError`` before anything is sent.

``maybe_processed`` (on ``ApiError`` and ``ConnectionFailedError``): True when
a non-idempotent request (a POST such as ``create_job`` or ``insert_records``)
failed in a way that leaves open whether the server carried it out (a 500,
502 or 504, a 503 without ``Retry-After``, or no answer after the request was
sent). Such a request is not resent, since that could create twice what it
creates; its message ends with "not retried: the server may have processed
this POST", and the caller finds out from the server's state (read the job,
count the records) what happened. False everywhere else: the request was
resent as often as ``RetryPolicy.attempts`` allows, or the failure says the
server did not carry it out (429, a 503 with ``Retry-After``, a 4xx, a
connection that could not be made).

Messages read as ``POST /jobs/us_jb_x/complete → 400: Job us_jb_x is complete;
cannot complete``. The token is never part of a message or a repr.
"""

from __future__ import annotations

from typing import Any, TypeVar

from splitkit.errors import SplitkitError

__all__ = [
    "ApiError",
    "AuthError",
    "BadRequestError",
    "ConnectionFailedError",
    "InvalidTransitionError",
    "NotFoundError",
    "RateLimitedError",
    "ServerError",
    "SplitkitError",
]


E = TypeVar("E", bound=Exception)


class ApiError(SplitkitError):
    """The server answered with an error status.

    ``path`` is relative to the base URL (``/jobs/us_jb_x``); ``body`` is the
    decoded JSON body, or its text when it was not JSON; ``key`` is the first
    error's ``key`` when the server gave one; ``retry_after`` is the server's
    ``Retry-After`` in seconds (429 and 503 send it), else None;
    ``maybe_processed`` is explained in the module docstring.
    """

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        message: str,
        body: Any = None,
        *,
        key: str | None = None,
        retry_after: float | None = None,
        maybe_processed: bool = False,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        self.body = body
        self.key = key
        self.retry_after = retry_after
        self.maybe_processed = maybe_processed
        suffix = _not_retried(method, maybe_processed)
        super().__init__(f"{method} {path} → {status}: {message}{suffix}")

    def __repr__(self) -> str:
        # The default repr would repeat args; keep it short and body-free.
        return f"{type(self).__name__}({self})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable (process and Dask executors) despite the keyword-only arguments.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))


def _not_retried(method: str, maybe_processed: bool) -> str:
    return f"; not retried: the server may have processed this {method}" if maybe_processed else ""


def _rebuild(cls: type[E], args: tuple[Any, ...], state: dict[str, Any]) -> E:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class AuthError(ApiError):
    """401 or 403: the token is missing, wrong, or not allowed to do this."""


class NotFoundError(ApiError):
    """404: no such resource."""


class BadRequestError(ApiError):
    """400 or 422: the server refused the request's body or query."""


class InvalidTransitionError(BadRequestError):
    """400 with error key ``transition``: the job's status does not allow this step."""

    @property
    def job_id(self) -> str | None:
        """The job the refused step was aimed at, read from the path."""
        parts = self.path.strip("/").split("/")
        return parts[1] if len(parts) >= 2 and parts[0] == "jobs" else None


class RateLimitedError(ApiError):
    """429: slow down; ``retry_after`` is the server's hint in seconds, if any."""


class ServerError(ApiError):
    """5xx: the server failed; retried by the client before it reaches you.

    Not retried when ``maybe_processed`` (a POST answered 500/502/504, or 503
    without ``Retry-After``): the server may have carried it out.
    """


class ConnectionFailedError(SplitkitError):
    """No HTTP answer: the connection was refused, reset or closed, or timed out.

    ``request_sent`` is False when the request certainly never left (the
    connection could not be made), True when the server may have seen it.
    ``maybe_processed`` is True when it was sent, is not idempotent, and so
    was not resent (see the module docstring).
    """

    def __init__(
        self,
        method: str,
        url: str,
        reason: str,
        *,
        request_sent: bool = True,
        maybe_processed: bool = False,
    ) -> None:
        self.method = method
        self.url = url
        self.reason = reason
        self.request_sent = request_sent
        self.maybe_processed = maybe_processed
        super().__init__(f"{method} {url}: {reason}{_not_retried(method, maybe_processed)}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))
