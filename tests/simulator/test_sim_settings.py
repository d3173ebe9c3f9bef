"""Setting the simulator: profile names and files, EmbeddedServer arguments, `splitkit serve`
flags; and the clear refusal of each bad setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from splitkit.cli import _simulated, app
from splitkit.server import EmbeddedServer
from splitkit.simprofile import PROFILES, FailureRule, SimProfile, sim_profile


def test_the_built_in_profiles_and_off_by_default() -> None:
    assert set(PROFILES) == {"local", "flatfile", "slow-network", "rate-limited"}
    assert not PROFILES["local"].enabled
    for name in ("flatfile", "slow-network", "rate-limited"):
        assert PROFILES[name].enabled and PROFILES[name].source, name
    assert "assumed" in PROFILES["flatfile"].source  # honest about its figures
    assert sim_profile("rate-limited", seed=5) == SimProfile(
        **{**PROFILES["rate-limited"].__dict__, "seed": 5}
    )


def test_a_profile_round_trips_through_a_json_file(tmp_path: Path) -> None:
    profile = SimProfile(
        name="measured",
        latency_percentiles_ms={50: 80, 90: 120, 99: 300},
        rate_per_s=10,
        burst=20,
        failures=(FailureRule(503, 0.01, "GET /sheets/*/records", 1.0),),
        page_ms_per_record=0.02,
        seed=9,
        source="probe",
    )
    path = profile.save(tmp_path / "p.json")
    assert json.loads(path.read_text())["latency_percentiles_ms"] == {
        "50": 80,
        "90": 120,
        "99": 300,
    }
    assert SimProfile.load(path) == profile
    assert sim_profile(path) == profile and sim_profile(str(path)) == profile


def test_a_server_loads_a_profile_file(tmp_path: Path) -> None:
    path = SimProfile(latency_ms=30).save(tmp_path / "slow.json")
    with EmbeddedServer(simulate=path) as server:
        assert server.simulator is not None and server.simulator.profile.latency_ms == 30
        start = time.perf_counter()
        httpx.get(
            f"{server.url}/environments",
            headers={"Authorization": f"Bearer {server.token}"},
            trust_env=False,
        )
        assert time.perf_counter() - start >= 0.030


def test_a_server_takes_a_profile_name_or_a_dict() -> None:
    assert EmbeddedServer(simulate="flatfile").simulator is not None
    server = EmbeddedServer(simulate={"rate_per_s": 3})
    assert server.simulator is not None and server.simulator.profile.bucket_size == 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"latency_ms": -1}, "latency_ms must be a number of ms >= 0, got -1"),
        ({"jitter_ms": "5"}, "jitter_ms must be a number of ms >= 0"),
        ({"rate_per_s": 0}, "rate_per_s must be requests/s > 0 or None, got 0"),
        ({"burst": 0}, "burst must be a positive integer"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"latency_percentiles_ms": {50: 90, 90: 40}}, "must not decrease"),
        ({"latency_percentiles_ms": {150: 9}}, "percentiles from 0 to 100"),
        ({"failures": [{"status": 404, "rate": 0.1}]}, "status must be 500 or 503, got 404"),
        ({"failures": [{"status": 500, "rate": 1.5}]}, "rate must be a share from 0 to 1"),
        ({"failures": [{"route": "jobs"}]}, "route must be 'METHOD /path'"),
        ({"failures": "500"}, "failures must be a list"),
    ],
)
def test_bad_profile_values_are_refused_naming_the_field(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        SimProfile(**arguments)  # type: ignore[arg-type]


def test_bad_profile_specs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"one of 'local', 'flatfile'.*got 'flatfle'"):
        EmbeddedServer(simulate="flatfle")
    with pytest.raises(ValueError, match="no profile file"):
        sim_profile(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not JSON"):
        sim_profile(tmp_path / "bad.json")
    (tmp_path / "odd.json").write_text('{"latency": 5}')
    with pytest.raises(ValueError, match=r"unknown profile fields \['latency'\]"):
        sim_profile(tmp_path / "odd.json")
    with pytest.raises(ValueError, match=r"unknown profile fields \['latncy_ms'\]"):
        sim_profile("local", latncy_ms=5)
    with pytest.raises(ValueError, match="STATUS:RATE"):
        FailureRule.parse("503")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--simulate", "nope"], "a simulator profile must be one of"),
        (["--fail", "404:0.1"], "status must be 500 or 503"),
        (["--fail", "often"], "STATUS:RATE"),
        (["--latency-ms", "-5"], "--latency-ms"),
        (["--rate-limit", "0"], "--rate-limit"),
    ],
)
def test_serve_refuses_bad_simulator_flags(flags: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--port", "0", *flags])
    assert result.exit_code == 2, result.output
    assert message in result.output


@contextmanager
def _serve(*flags: str) -> Iterator[tuple[str, str, str]]:
    """``splitkit serve`` in a subprocess: (url, token, the 'simulating' line)."""
    command = [sys.executable, "-m", "splitkit.cli", "serve", "--port", "0", *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert process.stdout is not None
    try:
        lines: dict[str, str] = {}
        for line in process.stdout:
            key, _, value = line.partition("  ")
            lines[key.strip()] = value.strip()
            if line.startswith("Ctrl-C"):
                break
        else:
            raise AssertionError(f"splitkit serve exited with {process.wait()}")
        yield lines["splitkit server at"], lines["token"], lines.get("simulating", "")
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_flags_set_the_simulator_on_a_named_profile() -> None:
    flags = ("--simulate", "rate-limited", "--latency-ms", "50", "--burst", "2", "--sim-seed", "4")
    took, statuses = [], []
    with _serve(*flags) as (url, token, simulating), httpx.Client(trust_env=False) as http:
        for _ in range(4):
            start = time.perf_counter()
            answer = http.get(f"{url}/environments", headers={"Authorization": f"Bearer {token}"})
            statuses.append(answer.status_code)
            took.append(time.perf_counter() - start)
    assert simulating.startswith("rate-limited: latency 50 ms + up to 10 ms; 5 requests/s")
    assert "(bursts of 2)" in simulating and "(seed 4)" in simulating
    assert min(took) >= 0.050, took
    assert statuses[:2] == [200, 200] and 429 in statuses, statuses


def test_serve_without_simulator_flags_simulates_nothing() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    for flag in ("--simulate", "--latency-ms", "--rate-limit", "--fail", "--page-ms-per-record"):
        assert flag in result.output
    assert _simulated(None, latency_ms=None, failures=None) is None  # no flag: no simulator
    assert _simulated(None, latency_ms=5).name == "custom"
