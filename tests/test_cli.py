"""The ``splitkit`` command's answer to a user's mistake: one line naming the problem and
the way out, exit status 2; the traceback only with ``--debug``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from splitkit.cli import app

REPO = Path(__file__).resolve().parents[1]
KEYS = ("FLATFILE_API_KEY", "FLATFILE_BEARER_TOKEN")


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _one_line(args: list[str], *, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = _lines(result.output)
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_on_a_port_in_use(busy_port: int) -> None:
    line = _one_line(["serve", "--port", str(busy_port)])
    assert f"port {busy_port} is in use" in line
    assert "--port 0" in line


def test_serve_an_unknown_sample() -> None:
    line = _one_line(["serve", "--sample", "nope"])
    assert "'nope'" in line
    assert "'contacts'" in line  # what there is
    assert "--records" in line  # the other way


def test_demo_with_a_batch_size_above_the_page_limit() -> None:
    line = _one_line(["demo", "--batch-size", "20000"])
    assert "--batch-size" in line
    assert "10000" in line.replace(",", "")


def test_listen_without_a_key(tmp_path: Path) -> None:
    env = {key: "" for key in KEYS}
    line = _one_line(["listen", "splitkit.demo:demo_handler"], env=env)
    assert "FLATFILE_API_KEY" in line
    assert "splitkit serve" in line  # the way to a server to point it at


def test_listen_with_a_handler_that_cannot_be_loaded() -> None:
    line = _one_line(["listen", "no_such_module_xyz:handle"])
    assert "no_such_module_xyz:handle" in line


def test_an_unknown_command_is_one_line() -> None:
    line = _one_line(["serv"])
    assert "serv" in line


@pytest.mark.parametrize("command", ["demo", "listen"])
def test_help_states_the_batch_size_limit(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "10,000" in result.output


def test_debug_shows_the_traceback(busy_port: int) -> None:
    result = CliRunner().invoke(app, ["--debug", "serve", "--port", str(busy_port)])
    assert result.exit_code == 2, result.output
    assert "Traceback (most recent call last)" in result.output
    assert "OSError" in result.output  # the bind's own error, in the chain
    assert f"port {busy_port} is in use" in _lines(result.output)[-1]


def test_the_installed_command_answers_in_one_line_on_stderr() -> None:
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "splitkit.cli", "demo", "--batch-size", "20000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(_lines(done.stderr)) == 1, done.stderr
    assert _lines(done.stderr)[0].startswith("splitkit demo: ")
