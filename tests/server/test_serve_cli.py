"""``splitkit serve``: its help, and its refusals. (A live run with Ctrl-C is in
test_concurrency.py, where a ``splitkit serve`` process shares a database.)"""

from __future__ import annotations

from typer.testing import CliRunner

from splitkit.cli import app


def test_serve_has_help_naming_every_option() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    options = ("--host", "--port", "--db", "--token", "--sample", "--records", "--max-body-mb")
    for option in options:
        assert option in result.output


def test_serve_refuses_both_a_sample_and_records() -> None:
    result = CliRunner().invoke(app, ["serve", "--sample", "contacts", "--records", "5"])
    assert result.exit_code == 2
    assert "not both" in result.output


def test_serve_refuses_negative_records() -> None:
    assert CliRunner().invoke(app, ["serve", "--records", "-1"]).exit_code == 2


def test_serve_refuses_a_body_limit_below_one_byte() -> None:
    result = CliRunner().invoke(app, ["serve", "--max-body-mb", "0"])
    assert result.exit_code == 2
    assert "--max-body-mb" in result.output
