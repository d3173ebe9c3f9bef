"""Argument checks: the shared validators, and the public entry points that use them (or,
for the server, their own): a wrong argument is refused at once, saying what was expected,
what was given and, where it helps, what to do."""

from __future__ import annotations

import doctest
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import splitkit._checks
from splitkit import Client, retry_failed, split_parent, start_parent_job
from splitkit._checks import (
    boolean,
    callable_handler,
    instance_of,
    non_empty_str,
    non_negative_int,
    positive_int,
    positive_number,
)
from splitkit.notebook import ControlPanel
from splitkit.plan import plan_parts
from splitkit.server import EmbeddedServer, ServerConfig

# -- the shared validators ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(1), 10**20])
def test_positive_int_accepts_python_and_numpy_ints(value: Any) -> None:
    result = positive_int("batch_size", value)
    assert result == value
    assert type(result) is int


@pytest.mark.parametrize(
    "value", [0, -1, True, False, np.True_, 2.0, 2.5, "3", None, np.int64(0), math.nan, [1]]
)
def test_positive_int_refuses_exactly_so(value: Any) -> None:
    with pytest.raises(ValueError) as info:
        positive_int("batch_size", value)
    assert str(info.value) == f"batch_size must be a positive integer, got {value!r}"


def test_non_negative_int() -> None:
    assert non_negative_int("total", 0) == 0
    assert non_negative_int("total", np.int32(5)) == 5
    for bad in (-1, True, 1.0, "1", None):
        with pytest.raises(ValueError) as info:
            non_negative_int("total", bad)
        assert str(info.value) == f"total must be a non-negative integer, got {bad!r}"


def test_positive_number() -> None:
    assert positive_number("timeout", 2) == 2.0
    assert positive_number("timeout", np.float32(0.5)) == 0.5
    assert positive_number("interval", 0, allow_zero=True) == 0.0
    for bad in (0, -1.5, math.inf, math.nan, True, "1", None):
        with pytest.raises(ValueError) as info:
            positive_number("timeout", bad)
        assert str(info.value) == f"timeout must be a positive number, got {bad!r}"
    with pytest.raises(ValueError, match=re.escape("must be a non-negative number, got -1")):
        positive_number("interval", -1, allow_zero=True)


def test_boolean() -> None:
    assert boolean("wait", True) is True
    assert boolean("wait", np.False_) is False
    for bad in (0, 1, "yes", None):
        with pytest.raises(ValueError) as info:
            boolean("wait", bad)
        assert str(info.value) == f"wait must be True or False, got {bad!r}"


def test_non_empty_str() -> None:
    assert non_empty_str("job", "sheet:x") == "sheet:x"
    for bad in ("", "   ", None, 3):
        with pytest.raises(ValueError) as info:
            non_empty_str("job", bad)
        assert str(info.value) == f"job must be a non-empty string, got {bad!r}"
    with pytest.raises(ValueError, match=re.escape("sheet_id must be a sheet id string, got ''")):
        non_empty_str("sheet_id", "", what="a sheet id string")


def test_callable_handler_and_instance_of() -> None:
    assert callable_handler(print) is print
    with pytest.raises(TypeError) as info:
        callable_handler("nope")
    assert str(info.value) == "handler must be callable (a function of one Part), got 'nope'"
    assert instance_of("plan", pd.DataFrame(), pd.DataFrame, "a DataFrame") is not None
    with pytest.raises(TypeError) as info:
        instance_of("client", None, Client, "a splitkit Client")
    assert str(info.value) == "client must be a splitkit Client, got NoneType"


def test_docstring_examples() -> None:
    result = doctest.testmod(splitkit._checks)
    assert result.attempted > 0
    assert result.failed == 0


# -- the pipeline steps need a sync Client -------------------------------------------------------

PLAN = plan_parts(10, batch_size=5)


@pytest.mark.parametrize(
    "call",
    [
        lambda: start_parent_job(None, "us_sh_1"),
        lambda: split_parent(None, "us_jb_1", PLAN),
        lambda: retry_failed(None, "us_jb_1", lambda part: None),
    ],
    ids=["start_parent_job", "split_parent", "retry_failed"],
)
def test_the_pipeline_steps_need_a_client(call: Any) -> None:
    with pytest.raises(TypeError) as info:
        call()
    assert str(info.value) == "client must be a splitkit Client, got NoneType"


def test_the_pipeline_steps_check_the_rest_before_sending() -> None:
    client = Client("http://127.0.0.1:9/v1", "t")  # nothing listens: any request would fail
    with pytest.raises(ValueError, match="sheet_id must be a sheet id string, got None"):
        start_parent_job(client, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="operation must be a non-empty string, got ''"):
        start_parent_job(client, "us_sh_1", operation="")
    with pytest.raises(ValueError, match="parent_job_id must be a job id string, got ''"):
        split_parent(client, "", PLAN)
    with pytest.raises(ValueError, match="run_in_parallel must be True or False, got 'no'"):
        split_parent(client, "us_jb_1", PLAN, run_in_parallel="no")  # type: ignore[arg-type]


# -- the embedded server (its own checks: splitkit.server imports nothing above it) -------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"records": "10"},
            "records must be a non-negative integer (the number of records to generate, "
            "or None), got '10'",
        ),
        ({"records": 2.5}, "records must be a non-negative integer"),
        ({"records": -1}, "records must be a non-negative integer"),
        ({"records": True}, "records must be a non-negative integer"),
        ({"port": 70_000}, "port must be an integer from 0 to 65535 (0 picks a free port)"),
        ({"port": "8000"}, "port must be an integer from 0 to 65535"),
        ({"seed": 1.5}, "seed must be an integer (the generator's seed), got 1.5"),
        ({"host": ""}, "host must be an address to bind like '127.0.0.1', got ''"),
        ({"sample": 3}, "sample must be the name of a CSV in data/samples"),
        ({"db_path": 3}, "db_path must be a file path (str or Path) or None"),
        ({"token": 123}, "token must be a non-empty string or None (None generates one), got int"),
        ({"token": ""}, "token must be a non-empty string or None (None generates one), got ''"),
    ],
)
def test_embedded_server_checks_its_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        EmbeddedServer(**kwargs)  # type: ignore[arg-type]


def test_embedded_server_accepts_numpy_counts() -> None:
    server = EmbeddedServer(records=np.int64(10))
    assert server.records == 10 and type(server.records) is int


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_parts": "5"}, "max_parts must be a positive integer, got '5'"),
        ({"max_parts": 0}, "max_parts must be a positive integer, got 0"),
        ({"max_parts": True}, "max_parts must be a positive integer, got True"),
        ({"token": 123}, "token must be a non-empty string, got int; leave it out to generate one"),
        ({"token": ""}, "token must be a non-empty string, got ''"),
        ({"db_path": None}, "db_path must be a file path (str or Path), got None"),
    ],
)
def test_server_config_checks_its_fields(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {"db_path": tmp_path / "x.db"} | kwargs
    with pytest.raises(ValueError, match=re.escape(message)):
        ServerConfig(**fields)  # type: ignore[arg-type]


def test_server_config_never_echoes_a_token() -> None:
    with pytest.raises(ValueError) as info:
        ServerConfig(db_path="x.db", token=b"secret-bytes")  # type: ignore[arg-type]
    assert "secret" not in str(info.value)


# -- the control panel ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"redraw_interval_s": -1}, "redraw_interval_s must be a non-negative number, got -1"),
        ({"redraw_interval_s": "0.1"}, "redraw_interval_s must be a non-negative number"),
        ({"redraw_interval_s": math.nan}, "redraw_interval_s must be a non-negative number"),
        ({"max_concurrency": 0}, "max_concurrency must be a positive integer, got 0"),
        ({"max_concurrency": 8.0}, "max_concurrency must be a positive integer, got 8.0"),
    ],
)
def test_control_panel_checks_its_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ControlPanel(**kwargs)  # type: ignore[arg-type]


def test_control_panel_redraw_interval_zero_is_allowed() -> None:
    panel = ControlPanel(redraw_interval_s=0, max_concurrency=np.int64(4))
    assert panel.concurrency.max == 4
