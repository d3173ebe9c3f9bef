"""probe(): measure a server's latency, records-page cost and rate limit into a SimProfile.

    profile = splitkit.probe(conn)                # a Connection, Client, ClientConfig, ...
    profile.save("profile.json")                  # splitkit serve --simulate profile.json

Against Flatfile (``FLATFILE_API_KEY`` set, ``splitkit probe --out profile.json``) or any
compatible server, with a bounded number of cheap requests, one at a time:

0. one warm-up ``GET /environments`` (the connection, and TLS, set up once);
1. **rate limit**, first, while the bucket is full: ``GET /environments`` as fast as one
   connection goes, until a 429 or ``max_burst_requests`` requests; after a 429 it spreads
   the rest of that bound evenly over ``refill_window_s`` (a rate above that pace reads as
   the pace: a lower bound): on a token bucket the answers that
   still get through arrive at the refill rate, and those before the first 429 are the
   burst (``X-RateLimit-Limit`` when the server sends it). No 429 within the bound: no
   rate limit in the profile (its source says up to what rate it looked). Then it waits
   for the bucket to refill (burst / rate, at most 10 s);
2. **latency**: ``samples`` ``GET /environments``; the profile keeps their percentiles
   (0, 50, 90, 100) as ``latency_percentiles_ms``;
3. **page cost** (when a sheet is named): ``GET /sheets/{id}/counts``, then page 1 of the
   records at each of ``page_sizes`` (capped at the sheet's records), ``page_repeats``
   times each; the slope of a least-squares line through (records, median ms) is
   ``page_ms_per_record`` (transfer included: it is part of what a page costs).

The client itself never resends (each answer is a measurement); a timed request that is
answered 429 or 5xx is sent again, at most 4 times in all, after a 429 once its
``Retry-After`` has passed (the wait is not timed). So the most requests a probe sends is
``1 + max_burst_requests + 4 * (samples + 1 + len(page_sizes) * page_repeats)``, and
``1 + max_burst_requests + samples + 1 + 9`` (71 with the defaults) when nothing fails.

What it does not measure: failure rates (that takes thousands of requests); and the
server's own work is inside every figure (the simulator adds it on top of the embedded
server's own, a few ms on loopback). Sequential requests cannot find a limit above
1 / latency requests per second.
"""

from __future__ import annotations

import functools
import os
import statistics
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np

from splitkit._checks import integer, non_empty_str, positive_number
from splitkit.api import ApiError, Client, ClientConfig, RateLimitedError, RetryPolicy
from splitkit.simprofile import SimProfile

DEFAULT_PAGE_SIZES = (10, 1_000, 5_000)
_TRIES = 4  # sends of one timed request at most (a 429 or 5xx is not a measurement)
_MAX_REFILL_WAIT_S = 10.0  # the longest the probe waits for a bucket to refill


class _Watch(httpx.BaseTransport):
    """The client's transport, keeping the headers of the last answer (rate-limit headers).

    A transport of our own replaces httpx's proxy mounts: the proxy of the environment
    (``HTTPS_PROXY``...) is looked up here instead, loopback never proxied, as the client does.
    """

    def __init__(self, base_url: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        host = parts.hostname or ""
        proxy = urllib.request.getproxies().get(parts.scheme)
        if host in ("localhost", "127.0.0.1", "::1") or urllib.request.proxy_bypass(host):
            proxy = None
        self._inner = httpx.HTTPTransport(proxy=proxy)
        self.headers: httpx.Headers = httpx.Headers()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        response = self._inner.handle_request(request)
        self.headers = response.headers
        return response

    def close(self) -> None:
        self._inner.close()


def _config_of(target: object) -> tuple[ClientConfig, str | None]:
    """The client settings and sheet of what ``probe`` was given."""
    if target is None:
        if not any(os.environ.get(n) for n in ("FLATFILE_API_KEY", "FLATFILE_BEARER_TOKEN")):
            raise ValueError(
                "probe() needs a server: pass a Connection, Client or ClientConfig, or set "
                "FLATFILE_API_KEY (and FLATFILE_API_URL for a server other than Flatfile)"
            )
        return ClientConfig.from_env(), None
    if isinstance(target, ClientConfig):
        return target, None
    if isinstance(target, Client):
        return target.config, None
    client = getattr(target, "client", None)  # a Connection
    if isinstance(client, Client):
        return client.config, getattr(target, "sheet_id", None)
    url, token = getattr(target, "url", None), getattr(target, "token", None)
    if isinstance(url, str) and isinstance(token, str):  # an EmbeddedServer
        return ClientConfig(url, token), getattr(target, "sheet_id", None)
    raise TypeError(
        "probe() takes a Connection, Client, ClientConfig, EmbeddedServer or None (the "
        f"environment's FLATFILE_API_KEY), got {type(target).__name__}"
    )


def probe(
    target: object = None,
    *,
    sheet_id: str | None = None,
    samples: int = 10,
    page_sizes: Sequence[int] = DEFAULT_PAGE_SIZES,
    page_repeats: int = 3,
    max_burst_requests: int = 50,
    refill_window_s: float = 2.0,
    name: str = "probed",
) -> SimProfile:
    """Measure ``target`` (see the module docstring) and return the profile it suggests.

    ``target``: a ``Connection`` (its sheet is used), ``Client``, ``ClientConfig``,
    ``EmbeddedServer``, or None for the environment (``FLATFILE_API_KEY``...). ``sheet_id``
    names the sheet for the page cost; without one the page cost is not measured (0).
    """
    config, default_sheet = _config_of(target)
    sheet_id = sheet_id if sheet_id is not None else default_sheet
    if sheet_id is not None:
        non_empty_str("sheet_id", sheet_id, what="a sheet id string or None")
    samples = integer("samples", samples, low=2, what="an integer >= 2 (timed requests)")
    sizes = [integer("page_sizes", s, low=1, high=10_000) for s in page_sizes]
    if sheet_id is not None and len(set(sizes)) < 2:
        raise ValueError(f"page_sizes must hold two sizes or more, got {list(page_sizes)!r}")
    page_repeats = integer("page_repeats", page_repeats, low=1)
    max_burst_requests = integer("max_burst_requests", max_burst_requests, low=0)
    refill_window_s = positive_number("refill_window_s", refill_window_s, allow_zero=True)
    non_empty_str("name", name)

    watch = _Watch(config.base_url)
    retry = RetryPolicy(attempts=1)  # every answer is a measurement: nothing resent
    with Client(
        config.base_url,
        config.token,
        environment_id=config.environment_id,
        timeout=config.timeout,
        retry=retry,
        transport=watch,
    ) as client:
        client.list_environments()  # warm-up: the connection (and TLS) set up once
        # the burst first, while the bucket is full; then time the rest once it refilled
        rate, burst, seen = _rate_limit(client, watch, max_burst_requests, refill_window_s)
        if rate is not None and burst is not None:
            time.sleep(min(burst / rate, _MAX_REFILL_WAIT_S))
        latencies = _latencies(client, samples)
        slope, points = (
            (0.0, []) if sheet_id is None else _page_cost(client, sheet_id, sizes, page_repeats)
        )
    latencies.sort()
    percentiles = {p: float(np.percentile(latencies, p, method="linear")) for p in (0, 50, 90, 100)}
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    said = [
        f"measured by splitkit.probe at {config.base_url} on {when} ({watch.requests} requests)",
        f"latency of {len(latencies)} GET /environments: p50 {percentiles[50]:.1f} ms",
        (
            f"page cost: slope through {len(points)} page sizes"
            if points
            else "page cost: not measured (no sheet)"
        ),
        seen,
        "failure rates: not measured",
    ]
    return SimProfile(
        name=name,
        latency_percentiles_ms=tuple((float(p), ms) for p, ms in percentiles.items()),
        rate_per_s=rate,
        burst=burst,
        page_ms_per_record=max(0.0, slope),
        source="; ".join(said),
    )


def _timed(call: Callable[[], Any]) -> float | None:
    """The ms of ``call``'s answered try: sent at most :data:`_TRIES` times, after a 429
    waiting its Retry-After (the wait is not timed); None when every try failed."""
    for _ in range(_TRIES):
        start = time.perf_counter()
        try:
            call()
        except RateLimitedError as exc:
            time.sleep(min(exc.retry_after or 1.0, _MAX_REFILL_WAIT_S))
            continue
        except ApiError:
            continue
        return (time.perf_counter() - start) * 1000
    return None


def _latencies(client: Client, samples: int) -> list[float]:
    """The times of ``samples`` answered GET /environments."""
    took = [ms for _ in range(samples) if (ms := _timed(client.list_environments)) is not None]
    if len(took) < 2:
        raise RuntimeError(
            f"probe: only {len(took)} of {samples} GET /environments were answered 200 "
            f"within {_TRIES} tries each: the server fails everything, nothing to measure"
        )
    return took


def _page_cost(
    client: Client, sheet_id: str, sizes: list[int], repeats: int
) -> tuple[float, list[tuple[int, float]]]:
    """ms per record: the slope through (records returned, median ms of a page)."""
    counted: list[int] = []
    _timed(lambda: counted.append(client.get_counts(sheet_id).total))
    total = counted[0] if counted else 0
    returned = sorted({min(size, total) for size in sizes if min(size, total) > 0})
    points = []
    for size in returned:
        fetch = functools.partial(client.get_records_raw, sheet_id, page_size=size)
        times = [ms for _ in range(repeats) if (ms := _timed(fetch)) is not None]
        if times:
            points.append((size, statistics.median(times)))
    if len(points) < 2:
        return 0.0, points  # too few records (or answers) for two different pages
    slope, _ = np.polyfit([p[0] for p in points], [p[1] for p in points], 1)
    return float(slope), points


def _rate_limit(
    client: Client, watch: _Watch, budget: int, window_s: float
) -> tuple[float | None, int | None, str]:
    """(rate per s, burst, what was seen) from a bounded burst of requests. The 429's
    Retry-After is reported, not kept: the simulator computes its own from the bucket."""
    start, ok_before, first_429 = time.perf_counter(), 0, None
    ok_after, retry_after, sent = 0, None, 0
    header_limit = None
    while sent < budget:
        if first_429 is not None:
            # Spread what is left of the budget over the window: a fast server would
            # otherwise spend it all in a few ms, before the bucket put back one token.
            left_s = window_s - (time.perf_counter() - first_429)
            time.sleep(max(0.0, left_s / (budget - sent + 1)))
        sent += 1
        try:
            client.list_environments()
        except RateLimitedError as exc:
            if first_429 is None:
                first_429, retry_after = time.perf_counter(), exc.retry_after
            if time.perf_counter() - first_429 >= window_s:
                break
            continue
        except ApiError:
            continue
        limit = watch.headers.get("X-RateLimit-Limit") or watch.headers.get("RateLimit-Limit")
        if limit is not None and limit.isdigit():
            header_limit = int(limit)
        if first_429 is None:
            ok_before += 1
        else:
            ok_after += 1
            if time.perf_counter() - first_429 >= window_s:
                break
    elapsed = time.perf_counter() - start
    if first_429 is None:
        pace = sent / elapsed if elapsed > 0 else 0.0
        return (
            None,
            None,
            (f"rate limit: no 429 in {sent} requests at {pace:.0f} requests/s (so none put in)"),
        )
    window = time.perf_counter() - first_429
    rate = ok_after / window if ok_after and window > 0 else None
    burst = header_limit or max(1, round(ok_before - (rate or 0) * (first_429 - start)))
    if rate is None:  # nothing got through after the first 429 within the bound
        rate = 1.0 / retry_after if retry_after else 1.0
    seen = (
        f"rate limit: first 429 after {ok_before} requests, then {ok_after} got through in "
        f"{window:.2f} s ({sent} requests in all); Retry-After {retry_after}"
    )
    return rate, burst, seen
