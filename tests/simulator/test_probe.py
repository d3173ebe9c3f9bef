"""probe(): it measures what the simulator was set to, over real HTTP on loopback, and
writes a profile the simulator loads. Bounds are floors, and ceilings far off any noise
(a probe that mixed up units or fitted the wrong line lands far outside them)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import splitkit
from splitkit.api import ClientConfig
from splitkit.cli import app
from splitkit.server import EmbeddedServer
from splitkit.simprofile import SimProfile


def test_probe_recovers_the_simulated_latency_and_page_cost() -> None:
    simulated = SimProfile(latency_ms=60, page_ms_per_record=0.1)
    with EmbeddedServer(records=2_000, simulate=simulated) as server:
        profile = splitkit.probe(server, page_sizes=(10, 2_000), max_burst_requests=0)
        assert server.simulator is not None
        # 1 warm-up + 10 latency + 1 counts + 2 sizes x 3: the bound it promises
        assert server.simulator.stats["requests"] == 18
    points = dict(profile.latency_percentiles_ms or ())
    assert 60 <= points[0] <= points[50] < 60 + 200, points
    assert 0.08 <= profile.page_ms_per_record < 0.2, profile.page_ms_per_record
    assert profile.rate_per_s is None and "no 429 in 0 requests" in profile.source
    assert "failure rates: not measured" in profile.source


def test_probe_finds_the_rate_limit_and_its_burst() -> None:
    simulated = SimProfile(rate_per_s=10, burst=5)
    with EmbeddedServer(simulate=simulated) as server:
        profile = splitkit.probe(
            ClientConfig(server.url, server.token), max_burst_requests=40, refill_window_s=1.5
        )
        assert server.simulator is not None
        assert server.simulator.stats["rate_limited"] > 0
        assert server.simulator.stats["requests"] <= 1 + 40 + 4 * 11  # the promised bound
    assert profile.burst == 5  # X-RateLimit-Limit
    assert profile.rate_per_s is not None and 6 <= profile.rate_per_s <= 15, profile.source
    assert server.token not in profile.source


def test_a_probed_profile_is_what_the_simulator_loads(tmp_path: Path) -> None:
    with EmbeddedServer(simulate=SimProfile(latency_ms=40)) as server:
        probed = splitkit.probe(server, max_burst_requests=0)
    path = probed.save(tmp_path / "probed.json")
    floor = dict(probed.latency_percentiles_ms or ())[0]
    with EmbeddedServer(simulate=path) as replay:
        assert replay.simulator is not None and replay.simulator.profile == probed
        start = time.perf_counter()
        httpx.get(
            f"{replay.url}/environments",
            headers={"Authorization": f"Bearer {replay.token}"},
            trust_env=False,
        )
        assert (time.perf_counter() - start) * 1000 >= floor >= 40


def test_splitkit_probe_writes_the_profile(tmp_path: Path) -> None:
    with EmbeddedServer(records=100, simulate=SimProfile(latency_ms=20)) as server:
        env = {"FLATFILE_API_KEY": server.token, "FLATFILE_API_URL": server.root_url}
        out = tmp_path / "p.json"
        result = CliRunner().invoke(
            app, ["probe", "--out", str(out), "--sheet", str(server.sheet_id)], env=env
        )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    loaded = SimProfile.load(out)
    assert dict(loaded.latency_percentiles_ms or ())[0] >= 20
    assert server.token not in out.read_text() and server.token not in result.output


def test_splitkit_probe_without_a_key_says_how_to_connect(tmp_path: Path) -> None:
    env = {"FLATFILE_API_KEY": "", "FLATFILE_BEARER_TOKEN": ""}
    result = CliRunner().invoke(app, ["probe", "--out", str(tmp_path / "p.json")], env=env)
    assert result.exit_code == 2
    assert "no API key" in result.output and "FLATFILE_API_KEY" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"samples": 1}, "samples must be an integer >= 2"),
        ({"page_sizes": (10, 10)}, "page_sizes must hold two sizes or more"),
        ({"page_sizes": (0, 10)}, "page_sizes must be an integer between 1 and 10,000"),
        ({"max_burst_requests": -1}, "max_burst_requests must be a non-negative integer"),
    ],
)
def test_probe_refuses_bad_arguments(arguments: dict[str, object], message: str) -> None:
    config = ClientConfig("http://127.0.0.1:9/v1", "t")
    with pytest.raises(ValueError, match=message):
        splitkit.probe(config, sheet_id="us_sh_1", **arguments)  # type: ignore[arg-type]


def test_probe_refuses_what_it_cannot_reach() -> None:
    with pytest.raises(TypeError, match="probe\\(\\) takes a Connection, Client, ClientConfig"):
        splitkit.probe("http://example.com")


def test_probe_without_a_target_or_key_says_what_to_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLATFILE_API_KEY", raising=False)
    monkeypatch.delenv("FLATFILE_BEARER_TOKEN", raising=False)
    with pytest.raises(ValueError, match="pass a Connection, Client or ClientConfig"):
        splitkit.probe()


def test_probe_times_only_answered_requests_waiting_out_a_429() -> None:
    # No burst phase, so the timed requests meet the limit: 2 at once, then 429s.
    with EmbeddedServer(simulate=SimProfile(rate_per_s=5, burst=2)) as server:
        profile = splitkit.probe(server, samples=4, max_burst_requests=0)
        assert server.simulator is not None and server.simulator.stats["rate_limited"] >= 1
    assert "latency of 4 GET /environments" in profile.source
