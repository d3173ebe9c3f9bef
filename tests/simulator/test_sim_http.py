"""The simulator seen from the client side: real HTTP on loopback to the real embedded server.

Every bound here is a floor (latency at least the configured one, a wait at least the
Retry-After) or a count; no test asserts that something was fast.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from splitkit.api import Client, RateLimitedError, RetryPolicy, ServerError
from splitkit.server import EmbeddedServer
from splitkit.simprofile import FailureRule, SimProfile


def _http(server: EmbeddedServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.token}"},
        trust_env=False,
        timeout=30.0,
    )


def _within_binomial(hits: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    """Whether ``hits`` of ``n`` is within ``sigmas`` standard deviations of ``n * p``."""
    return abs(hits - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


@pytest.fixture
def latency_server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(records=1_000, simulate=SimProfile(latency_ms=40, jitter_ms=20)) as s:
        yield s


def test_every_request_waits_at_least_the_configured_latency(
    latency_server: EmbeddedServer,
) -> None:
    with Client(latency_server.url, latency_server.token) as client:
        took = []
        for _ in range(8):
            start = time.perf_counter()
            client.list_environments()
            took.append(time.perf_counter() - start)
    assert min(took) >= 0.040, took
    assert latency_server.simulator is not None
    assert latency_server.simulator.stats["requests"] == 8


def test_a_records_page_pays_its_cost_per_record() -> None:
    profile = SimProfile(page_ms_per_record=0.3)  # 1,000 records: at least 300 ms
    with EmbeddedServer(records=1_000, simulate=profile) as server:
        assert server.sheet_id is not None
        with Client(server.url, server.token) as client:
            start = time.perf_counter()
            frame = client.get_records(server.sheet_id, page_size=1_000)
            took = time.perf_counter() - start
            start = time.perf_counter()
            client.get_records(server.sheet_id, page_size=10)
            took_small = time.perf_counter() - start
        assert server.simulator is not None
        assert server.simulator.stats["page_records"] == 1_010
    assert len(frame) == 1_000
    assert took >= 0.300, took
    assert took_small < took


def test_the_rate_limit_lets_through_the_burst_then_the_rate_and_answers_429() -> None:
    profile = SimProfile(rate_per_s=20, burst=5)
    with EmbeddedServer(simulate=profile) as server, _http(server) as http:
        start = time.perf_counter()
        answers = [http.get("/environments") for _ in range(60)]
        elapsed = time.perf_counter() - start
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) == {200, 429}, statuses
    # the bucket starts full (5) and refills at 20/s: no more got through than that allows
    assert 5 <= statuses[200] <= 5 + 20 * elapsed + 1, (statuses, elapsed)
    limited = next(a for a in answers if a.status_code == 429)
    assert limited.headers["Retry-After"] == "1"  # whole seconds, rounded up
    assert limited.headers["X-RateLimit-Limit"] == "5"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert "20 requests/s" in limited.json()["errors"][0]["message"]


def test_the_bucket_is_per_token() -> None:
    # The app refuses an unknown token (401) but the bucket is taken first, per token.
    profile = SimProfile(rate_per_s=0.01, burst=2)
    with EmbeddedServer(simulate=profile) as server, _http(server) as http:
        mine = [http.get("/environments").status_code for _ in range(3)]
        other = [
            http.get("/environments", headers={"Authorization": "Bearer another-token"})
            for _ in range(3)
        ]
    assert mine == [200, 200, 429]
    assert [a.status_code for a in other] == [401, 401, 429]
    for answer in other:  # the token is in no answer, not even the 429
        assert "another-token" not in answer.text
        assert all("another-token" not in value for value in answer.headers.values())


def test_the_client_waits_the_retry_after_of_a_429_before_sending_again() -> None:
    # One request a second: the second call meets a 429 with Retry-After: 1. The client's
    # own backoff (0.1, 0.2, 0.4 s) would give up within 0.7 s; it gets through only by
    # waiting what the server asked.
    profile = SimProfile(rate_per_s=1, burst=1)
    with EmbeddedServer(simulate=profile) as server:
        assert server.simulator is not None
        with Client(server.url, server.token, retry=RetryPolicy(max_wait=5)) as client:
            client.list_environments()
            start = time.perf_counter()
            client.list_environments()
            took = time.perf_counter() - start
        assert server.simulator.stats["rate_limited"] == 1
        assert server.simulator.stats["requests"] == 3
    assert took >= 1.0, took


def test_a_client_that_cannot_wait_long_enough_gets_a_typed_rate_limit_error() -> None:
    profile = SimProfile(rate_per_s=0.01, burst=1, retry_after_s=0.05)
    server = EmbeddedServer(simulate=profile)
    with server, Client(server.url, server.token, retry=RetryPolicy(attempts=3)) as client:
        client.list_environments()
        with pytest.raises(RateLimitedError) as caught:
            client.list_environments()
    assert caught.value.retry_after == pytest.approx(0.05)
    assert server.token not in str(caught.value)


def test_failure_rates_per_route_are_within_binomial_tolerance() -> None:
    failures = (
        FailureRule(503, 0.2, "GET /environments", retry_after_s=1),
        FailureRule(500, 0.1, "GET /sheets/*/counts"),
    )
    server = EmbeddedServer(records=10, simulate=SimProfile(failures=failures, seed=7))
    with server, _http(server) as http:
        env = Counter(http.get("/environments").status_code for _ in range(400))
        counts = Counter(
            http.get(f"/sheets/{server.sheet_id}/counts").status_code for _ in range(400)
        )
        spaces = Counter(http.post("/spaces", json={}).status_code for _ in range(50))
    assert set(env) == {200, 503} and _within_binomial(env[503], 400, 0.2), env
    assert set(counts) == {200, 500} and _within_binomial(counts[500], 400, 0.1), counts
    assert spaces == Counter({200: 50}), spaces  # no rule for this route: never fails


def test_a_503_is_not_carried_out_and_a_500_is() -> None:
    rules = (FailureRule(503, 1.0, "POST /spaces", 2.0), FailureRule(500, 1.0, "POST /jobs"))
    profile = SimProfile(failures=rules)
    with EmbeddedServer(records=1, simulate=profile) as server, _http(server) as http:
        sheet_job = {"type": "sheet", "operation": "x", "source": server.sheet_id}
        unavailable = http.post("/spaces", json={"name": "never"})
        lost = http.post("/jobs", json=sheet_job)
        jobs = http.get("/jobs").json()["data"]
    assert unavailable.status_code == 503
    assert unavailable.headers["Retry-After"] == "2"
    assert lost.status_code == 500 and "Retry-After" not in lost.headers
    assert [job["operation"] for job in jobs] == ["x"]  # the 500's job was created


def test_the_client_resends_a_get_after_a_503_and_reports_a_post_500_as_maybe_processed() -> None:
    rules = (FailureRule(503, 0.5, "GET /environments", 0.0), FailureRule(500, 1.0, "POST *"))
    with EmbeddedServer(simulate=SimProfile(failures=rules, seed=1)) as server:
        policy = RetryPolicy(attempts=10, initial=0, jitter=0)
        with Client(server.url, server.token, retry=policy) as client:
            for _ in range(10):
                client.list_environments()  # every call ends well: 503s are resent
            with pytest.raises(ServerError) as caught:
                client.create_space(name="doubtful")
        assert server.simulator is not None
        assert server.simulator.stats["failed_503"] > 0
    assert caught.value.maybe_processed


def test_a_fixed_seed_repeats_the_same_failures() -> None:
    def statuses(seed: int) -> list[int]:
        profile = SimProfile(failures=(FailureRule(503, 0.3),), seed=seed)
        with EmbeddedServer(simulate=profile) as server, _http(server) as http:
            return [http.get("/environments").status_code for _ in range(60)]

    first, again, other = statuses(3), statuses(3), statuses(4)
    assert first == again
    assert first != other
    assert 503 in first


def test_latency_from_measured_percentiles_never_goes_below_the_lowest() -> None:
    profile = SimProfile(latency_percentiles_ms={0: 30, 50: 35, 100: 60})
    with EmbeddedServer(simulate=profile) as server, _http(server) as http:
        took = []
        for _ in range(6):
            start = time.perf_counter()
            http.get("/environments")
            took.append(time.perf_counter() - start)
    assert min(took) >= 0.030, took


def test_set_profile_switches_a_running_server_and_off_means_untouched() -> None:
    with EmbeddedServer(simulate="local") as server, _http(server) as http:
        assert server.simulator is not None and not server.simulator.profile.enabled
        assert http.get("/environments").status_code == 200
        assert server.simulator.stats["requests"] == 0  # an empty profile does nothing
        server.simulator.set_profile(SimProfile(failures=(FailureRule(503, 1.0),)))
        assert http.get("/environments").status_code == 503
    with EmbeddedServer() as plain:
        assert plain.simulator is None  # off by default
