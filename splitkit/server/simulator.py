"""The platform simulator: latency, a rate limit, failures and a records-page cost.

An ASGI middleware in front of the app (``create_app(..., simulator=...)``) that does to
each ``/v1`` request what a :class:`~splitkit.simprofile.SimProfile` says, so a run on the
embedded server on loopback meets roughly what it would meet on the platform:

- **latency**: the request waits ``latency_ms`` + a uniform share of ``jitter_ms`` (or a
  draw from ``latency_percentiles_ms``) before it is answered, whatever the answer;
- **rate limit**: a token bucket per bearer token (keyed by a hash: the token is never
  kept or logged); an empty bucket is answered 429 with ``Retry-After`` (whole seconds
  until a token is back, or the profile's ``retry_after_s``) and ``X-RateLimit-*`` headers;
  every answer carries ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining``;
- **failures**: the first matching :class:`~splitkit.simprofile.FailureRule` decides; a 503
  is answered before the route runs (``Retry-After`` when the rule has one), a 500 after
  it ran (its answer dropped: the caller must reconcile from server state);
- **page cost**: a records page (``GET /v1/sheets/{id}/records``) waits
  ``page_ms_per_record`` per record it returns, after the route built it.

Random draws come from one ``random.Random(profile.seed)``: the same sequence of requests
gets the same latencies and failures. Every decision is taken on the event loop between
two awaits, so the buckets and the draws need no lock.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Final

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from splitkit.simprofile import FailureRule, SimProfile

from .errors import error_response

_RECORD_MARK: Final = b'"id":"us_rc_'  # one per record in a stored record's wire JSON
_MAX_BUCKETS: Final = 10_000  # forget idle tokens past this many (bounded memory)


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one request."""

    latency_s: float
    wait_s: float | None = None  # rate limited: the seconds until a token is back
    failure: FailureRule | None = None
    remaining: int | None = None  # tokens left in the bucket (when rate limited at all)


class Simulator:
    """The simulator's state: the profile, its random source, the buckets and the counts.

    ``active`` is False until :class:`~splitkit.server.EmbeddedServer` has checked that the
    server answers (its own readiness request must not be delayed or failed).
    ``stats`` counts what was done: ``requests``, ``rate_limited``, ``failed_500``,
    ``failed_503``, ``page_records`` (records in pages that paid the page cost).
    """

    def __init__(self, profile: SimProfile, *, active: bool = True) -> None:
        if not isinstance(profile, SimProfile):
            raise TypeError(f"profile must be a SimProfile, got {type(profile).__name__}")
        self.active = active
        self.stats: Counter[str] = Counter()
        self.set_profile(profile)

    @property
    def profile(self) -> SimProfile:
        return self._profile

    def set_profile(self, profile: SimProfile) -> None:
        """Simulate ``profile`` from now on: fresh random source (its seed), full buckets."""
        if not isinstance(profile, SimProfile):
            raise TypeError(f"profile must be a SimProfile, got {type(profile).__name__}")
        self._random = random.Random(profile.seed)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._profile = profile

    def __repr__(self) -> str:
        state = "active" if self.active else "inactive"
        return f"<Simulator {state} profile={self._profile.name!r}>"

    def decide(self, method: str, path: str, key: str, now: float | None = None) -> Decision:
        """The fate of a request to ``path`` (relative to ``/v1``) with token hash ``key``."""
        profile = self._profile
        self.stats["requests"] += 1
        latency_s = profile.latency_at(self._random.random()) / 1000
        wait_s, remaining = None, None
        if profile.rate_per_s is not None:
            wait_s, remaining = self._take(key, time.monotonic() if now is None else now)
            if wait_s is not None:
                self.stats["rate_limited"] += 1
                return Decision(latency_s, wait_s=wait_s, remaining=0)
        failure = profile.failure_for(method, path)
        if failure is not None and self._random.random() < failure.rate:
            self.stats[f"failed_{failure.status}"] += 1
            return Decision(latency_s, failure=failure, remaining=remaining)
        return Decision(latency_s, remaining=remaining)

    def _take(self, key: str, now: float) -> tuple[float | None, int]:
        """Take a token from ``key``'s bucket: (None, tokens left), or (seconds until one
        is back, 0) when it is empty."""
        profile = self._profile
        rate, size = profile.rate_per_s or 1.0, profile.bucket_size
        if key not in self._buckets and len(self._buckets) >= _MAX_BUCKETS:
            self._buckets.clear()
        tokens, at = self._buckets.get(key, (float(size), now))
        tokens = min(float(size), tokens + (now - at) * rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / rate, 0
        self._buckets[key] = (tokens - 1, now)
        return None, int(tokens - 1)

    def retry_after(self, wait_s: float) -> str:
        """The ``Retry-After`` of a 429: the profile's, or the whole seconds to wait (HTTP's
        delta-seconds are integers; rounding up never invites a request too early)."""
        chosen = self._profile.retry_after_s
        seconds = chosen if chosen is not None else max(1, math.ceil(wait_s))
        return f"{seconds:g}"


def token_key(scope: Scope) -> str:
    """A short hash of the request's Authorization header: the bucket's key (never the token)."""
    header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
    return hashlib.blake2b(header, digest_size=8).hexdigest()


class SimulatorMiddleware:
    """Applies a :class:`Simulator` to every ``/v1`` request (see the module docstring)."""

    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        simulator = self.simulator
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not simulator.active
            or not path.startswith("/v1/")
            or not simulator.profile.enabled
        ):
            await self.app(scope, receive, send)
            return
        profile = simulator.profile
        method = scope["method"]
        decision = simulator.decide(method, path[3:], token_key(scope))
        if decision.latency_s > 0:
            await anyio.sleep(decision.latency_s)
        limit_headers = _limit_headers(profile, decision)
        if decision.wait_s is not None:
            after = simulator.retry_after(decision.wait_s)
            message = (
                f"rate limit: {profile.rate_per_s:g} requests/s per token (bursts of "
                f"{profile.bucket_size}); retry after {after} s (simulated)"
            )
            await _answer(429, message, {**limit_headers, "Retry-After": after}, scope, send)
            return
        failure = decision.failure
        if failure is not None and failure.status == 503:
            headers = dict(limit_headers)
            if failure.retry_after_s is not None:
                headers["Retry-After"] = f"{failure.retry_after_s:g}"
            message = "service unavailable (simulated); the request was not carried out"
            await _answer(503, message, headers, scope, send)
            return
        if failure is not None:  # a 500: carried out, then its answer is lost
            await self.app(scope, receive, _discard)
            message = "internal server error (simulated) after the request was carried out"
            await _answer(500, message, limit_headers, scope, send)
            return
        per_record_s = profile.page_ms_per_record / 1000
        if per_record_s and method == "GET" and _is_records_page(path):
            send = _PageCost(send, per_record_s, simulator)
        if limit_headers:
            send = _with_headers(send, limit_headers)
        await self.app(scope, receive, send)


def _is_records_page(path: str) -> bool:
    parts = path.split("/")  # ['', 'v1', 'sheets', id, 'records']
    return len(parts) == 5 and parts[2] == "sheets" and parts[4] == "records"


def _limit_headers(profile: SimProfile, decision: Decision) -> dict[str, str]:
    if profile.rate_per_s is None:
        return {}
    return {
        "X-RateLimit-Limit": str(profile.bucket_size),
        "X-RateLimit-Remaining": str(decision.remaining or 0),
    }


async def _answer(
    status: int,
    message: str,
    headers: dict[str, str],
    scope: Scope,
    send: Send,
) -> None:
    response = error_response(status, [{"message": message}])
    response.headers.update(headers)
    await response(scope, _nothing, send)


async def _nothing() -> Message:  # an error answer never reads the request's body
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Message) -> None:
    return None


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


class _PageCost:
    """Holds a records page until it is whole, then waits per record before sending it."""

    def __init__(self, send: Send, per_record_s: float, simulator: Simulator) -> None:
        self._send, self._per_record_s, self._simulator = send, per_record_s, simulator
        self._held: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self._held.append(message)
        if message["type"] != "http.response.body":
            return
        if message.get("more_body", False):
            return
        # counted over the whole body: a mark may straddle two chunks
        body = b"".join(m.get("body", b"") for m in self._held if m["type"] == message["type"])
        records = body.count(_RECORD_MARK)
        if records:
            self._simulator.stats["page_records"] += records
            await anyio.sleep(records * self._per_record_s)
        for held in self._held:
            await self._send(held)
        self._held.clear()
