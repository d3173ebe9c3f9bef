"""ClientConfig and RetryPolicy: explicit values, validation, from_env with a dict."""

from __future__ import annotations

import pickle

import pytest

from splitkit.api import AsyncClient, Client, ClientConfig, ConnectionFailedError, RetryPolicy
from splitkit.api.config import PRODUCTION_URL

SECRET = "sk_live_do_not_print_me"


def test_defaults_and_normalised_url() -> None:
    config = ClientConfig("http://127.0.0.1:8000/v1/", SECRET)
    assert config.base_url == "http://127.0.0.1:8000/v1"
    assert config.environment_id is None
    assert config.timeout == 30.0
    assert config.retry == RetryPolicy(attempts=4, initial=0.1, max_wait=5.0, jitter=0.1)


def test_frozen() -> None:
    config = ClientConfig("http://h/v1", SECRET)
    with pytest.raises(AttributeError):
        config.token = "other"  # type: ignore[misc]


def test_token_never_in_repr_or_str() -> None:
    config = ClientConfig("http://h/v1", SECRET, environment_id="us_env_1")
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    with Client.from_config(config) as client:
        assert SECRET not in repr(client)
        assert "us_env_1" in repr(client)
    assert SECRET not in repr(AsyncClient.from_config(config))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": ""}, "base_url must be an http(s) URL, got ''"),
        ({"base_url": "ftp://h/v1"}, "base_url must be an http(s) URL, got 'ftp://h/v1'"),
        ({"base_url": "h/v1"}, "base_url must be an http(s) URL"),
        ({"token": ""}, "token must be a non-empty string"),
        ({"token": None}, "token must be a non-empty string"),
        ({"environment_id": ""}, "environment_id must be a non-empty string or None, got ''"),
        ({"timeout": -1}, "timeout must be a positive number, got -1"),
        ({"timeout": 0}, "timeout must be a positive number, got 0"),
        ({"timeout": True}, "timeout must be a positive number, got True"),
        ({"timeout": float("nan")}, "timeout must be a positive number, got nan"),
        ({"timeout": "5"}, "timeout must be a positive number, got '5'"),
        ({"retry": 3}, "retry must be a RetryPolicy, got 3"),
    ],
)
def test_bad_config(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"base_url": "http://h/v1", "token": SECRET, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ClientConfig(**args)  # type: ignore[arg-type]


def test_bad_token_message_does_not_echo_it() -> None:
    with pytest.raises(ValueError) as info:
        ClientConfig("http://h/v1", "   ")
    assert "   '" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempts": 0}, "attempts must be a positive integer, got 0"),
        ({"attempts": 2.5}, "attempts must be a positive integer, got 2.5"),
        ({"initial": -0.1}, "initial must be a non-negative number, got -0.1"),
        ({"max_wait": -1}, "max_wait must be a non-negative number, got -1"),
        ({"jitter": "x"}, "jitter must be a non-negative number, got 'x'"),
    ],
)
def test_bad_retry_policy(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(attempts=10, initial=0.1, max_wait=0.5, jitter=0.1)
    assert policy.backoff(1, 0.0) == pytest.approx(0.1)
    assert policy.backoff(2, 0.0) == pytest.approx(0.2)
    assert policy.backoff(2, 1.0) == pytest.approx(0.3)
    assert policy.backoff(9, 1.0) == 0.5


def test_from_env_reads_the_sdk_variables() -> None:
    config = ClientConfig.from_env(
        {
            "FLATFILE_API_KEY": SECRET,
            "FLATFILE_API_URL": "http://127.0.0.1:9000",
            "FLATFILE_ENVIRONMENT_ID": "us_env_abc",
        }
    )
    assert config.token == SECRET
    assert config.base_url == "http://127.0.0.1:9000/v1"
    assert config.environment_id == "us_env_abc"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:1", "http://h:1/v1"),
        ("http://h:1/", "http://h:1/v1"),
        ("http://h:1/v1", "http://h:1/v1"),
        ("http://h:1/v1/", "http://h:1/v1"),
        ("https://platform.flatfile.com/api", "https://platform.flatfile.com/api/v1"),
    ],
)
def test_from_env_appends_v1_when_missing(url: str, expected: str) -> None:
    env = {"FLATFILE_API_KEY": SECRET, "FLATFILE_API_URL": url}
    assert ClientConfig.from_env(env).base_url == expected


def test_from_env_defaults_to_production() -> None:
    config = ClientConfig.from_env({"FLATFILE_BEARER_TOKEN": SECRET})
    assert config.base_url == PRODUCTION_URL == "https://api.x.flatfile.com/v1"
    assert config.environment_id is None


def test_bearer_token_is_an_alias_only_when_the_key_is_unset() -> None:
    both = {"FLATFILE_API_KEY": "primary", "FLATFILE_BEARER_TOKEN": "alias"}
    assert ClientConfig.from_env(both).token == "primary"
    assert ClientConfig.from_env({"FLATFILE_BEARER_TOKEN": "alias"}).token == "alias"
    empty_primary = {"FLATFILE_API_KEY": "", "FLATFILE_BEARER_TOKEN": "alias"}
    assert ClientConfig.from_env(empty_primary).token == "alias"


def test_from_env_without_a_token() -> None:
    with pytest.raises(ValueError, match="FLATFILE_API_KEY \\(or FLATFILE_BEARER_TOKEN\\)"):
        ClientConfig.from_env({"FLATFILE_API_URL": "http://h"})


def test_from_env_on_the_clients() -> None:
    env = {"FLATFILE_API_KEY": SECRET, "FLATFILE_ENVIRONMENT_ID": "us_env_x"}
    with Client.from_env(env) as client:
        assert client.config == ClientConfig.from_env(env)
    assert AsyncClient.from_env(env).config.environment_id == "us_env_x"


def test_from_config_rejects_other_things() -> None:
    with pytest.raises(ValueError, match="config must be a ClientConfig, got dict"):
        Client.from_config({"base_url": "http://h"})  # type: ignore[arg-type]


def test_config_pickles_for_process_executors() -> None:
    config = ClientConfig("http://h/v1", SECRET, retry=RetryPolicy(attempts=2))
    assert pickle.loads(pickle.dumps(config)) == config


@pytest.mark.parametrize("typed", ["not-a-url", "ftp://h", "http://"])
def test_from_env_reports_the_url_as_typed(typed: str) -> None:
    with pytest.raises(ValueError) as info:
        ClientConfig.from_env({"FLATFILE_API_KEY": SECRET, "FLATFILE_API_URL": typed})
    message = str(info.value)
    assert message.startswith("FLATFILE_API_URL must be an http(s) URL")
    assert message.endswith(f"got {typed!r}")  # not 'not-a-url/v1'
    assert SECRET not in message


@pytest.mark.parametrize("token", ["t", "connect", "o"])
def test_a_short_token_does_not_mangle_messages(token: str) -> None:
    # Port 9 (discard) on loopback: refused. The message is built by the client and
    # never held the token, so nothing in it is replaced.
    config = ClientConfig("http://127.0.0.1:9/v1", token, retry=RetryPolicy(attempts=1))
    with Client.from_config(config) as client, pytest.raises(ConnectionFailedError) as info:
        client.get_job("us_jb_1")
    assert "cannot connect" in str(info.value)
    assert "***" not in str(info.value)


def test_a_short_token_echoed_by_the_server_is_still_hidden_where_it_stands_alone() -> None:
    with Client("http://127.0.0.1:9/v1", "t") as client:
        redacted = client._redact('{"auth": "Bearer t", "note": "cannot connect to t."}')
    assert redacted == '{"auth": "Bearer ***", "note": "cannot connect to ***."}'
