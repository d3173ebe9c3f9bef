"""Bad input gets a clear error: sizes, a job already split, unknown ids, a wrong token,
the server down."""

from __future__ import annotations

import socket

import pandas as pd
import pytest

from splitkit import (
    Client,
    ClientConfig,
    RetryPolicy,
    dispatch,
    plan_parts,
    split_parent,
    start_parent_job,
)
from splitkit.api.errors import (
    AuthError,
    ConnectionFailedError,
    InvalidTransitionError,
    NotFoundError,
)
from splitkit.engine import steps
from splitkit.engine.part_options import PartOptions
from splitkit.engine.steps import most_requests
from splitkit.pipeline import SplitMismatchError


def noop(part: object) -> None:
    return None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"batch_size": -5}, "batch_size must be a positive integer, got -5"),
        ({"batch_size": 2.5}, "batch_size must be a positive integer, got 2.5"),
        ({"parts": 0}, "parts must be a positive integer, got 0"),
    ],
)
def test_non_positive_or_non_integer_sizes(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_parts(1000, **kwargs)  # type: ignore[arg-type]


def test_a_job_already_split_is_refused_naming_the_job(server, client: Client) -> None:
    # Split again with the same plan, split_parent returns the parts (test_split_parent.py);
    # with another plan, it is refused, naming the job.
    parent = start_parent_job(client, server.sheet_id)
    split_parent(client, parent.id, plan_parts(1000, batch_size=500), check_counts=False)
    with pytest.raises(SplitMismatchError) as info:
        split_parent(client, parent.id, plan_parts(1000, batch_size=250), check_counts=False)
    assert parent.id in str(info.value)
    assert "already split" in str(info.value)
    assert isinstance(info.value.__cause__, InvalidTransitionError)  # the server's refusal


def test_an_empty_plan_is_not_split(server, client: Client) -> None:
    parent = start_parent_job(client, server.sheet_id)
    with pytest.raises(ValueError, match="the plan has no parts"):
        split_parent(client, parent.id, plan_parts(0, batch_size=10))


def test_dispatch_on_an_unknown_job(client: Client) -> None:
    handle = dispatch(client, "us_jb_doesnotexist", noop, progress=False, wait=False)
    with pytest.raises(NotFoundError) as info:
        handle.wait(30)
    assert "us_jb_doesnotexist" in str(info.value)
    assert "404" in str(info.value)


def test_dispatch_on_a_job_never_split(server, client: Client) -> None:
    parent = start_parent_job(client, server.sheet_id)
    with pytest.raises(ValueError, match="has no parts: split it first"):
        dispatch(client, parent.id, noop, progress=False, wait=True)


def test_a_wrong_token_says_so_without_showing_it(server) -> None:
    secret = "not-the-token-" + "x" * 16
    with Client(server.url, secret) as client, pytest.raises(AuthError) as info:
        client.get_counts(server.sheet_id)
    assert "401" in str(info.value)
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert secret not in repr(client) and secret not in repr(client.config)


def test_the_server_down(server) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again at once: nothing listens there
    config = ClientConfig(f"http://127.0.0.1:{port}/v1", server.token)
    with Client.from_config(config) as client, pytest.raises(ConnectionFailedError) as info:
        client.get_job("us_jb_x")
    assert f"127.0.0.1:{port}" in str(info.value)
    assert server.token not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"concurrency": 0}, ValueError, "concurrency must be a positive integer, got 0"),
        ({"timeout": -1}, ValueError, "timeout must be a positive number"),
        ({"retries": -1}, ValueError, "retries must be a non-negative integer"),
        ({"plan": [1, 2]}, TypeError, "plan must be a DataFrame"),
        ({"delivery_window": 0}, ValueError, "delivery_window must be a positive number, got 0"),
        ({"delivery_window": "60"}, ValueError, "delivery_window must be a positive number"),
        ({"retry_on": TimeoutError}, TypeError, "retry_on must be a tuple of exception classes"),
    ],
)
def test_dispatch_arguments(
    client: Client, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        dispatch(client, "us_jb_x", noop, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delivery_window_s": float("inf")}, "delivery_window must be a positive number"),
        ({"retries": 1.5}, "retries must be a non-negative integer"),
        ({"timeout_s": 0}, "timeout must be a positive number"),
    ],
)
def test_part_options_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PartOptions(**kwargs)  # type: ignore[arg-type]


def test_the_documented_request_bound_is_the_computed_one() -> None:
    # splitkit/engine/steps.py says: defaults give R = 16 and, with A = 4, 136 requests.
    assert PartOptions().delivery_rounds() == 16
    assert most_requests(PartOptions(), RetryPolicy().attempts) == 136
    doc = steps.__doc__ or ""
    assert "R = 16" in doc and "at most 136 requests" in doc


def test_dispatch_needs_a_callable_and_a_client() -> None:
    with pytest.raises(TypeError, match="client must be a splitkit Client"):
        dispatch("http://x", "us_jb_x", noop)  # type: ignore[arg-type]
    config = ClientConfig("http://127.0.0.1:9/v1", "t")
    with pytest.raises(TypeError, match="handler must be callable"):
        dispatch(config, "us_jb_x", 42)  # type: ignore[arg-type]


def test_split_needs_a_plan(client: Client) -> None:
    with pytest.raises(ValueError, match="plan is missing columns"):
        split_parent(client, "us_jb_x", pd.DataFrame({"part": [0]}))
