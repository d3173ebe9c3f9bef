"""connect(): the embedded server when no key is set, Flatfile when one is; cleanup and proxies."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import subprocess
import sys
import warnings
import weakref
from pathlib import Path

import pytest

import splitkit
from splitkit import AsyncClient, Client, Connection, connect
from splitkit.api._base import is_loopback

KEYS = ("FLATFILE_API_KEY", "FLATFILE_BEARER_TOKEN")


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """connect() reads os.environ: make sure it picks the embedded server."""
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)


def test_embedded_connection_works_and_closes_once(no_key: None) -> None:
    with connect(records=10) as conn:
        assert conn.embedded
        assert conn.sheet_id is not None
        assert conn.client.get_counts(conn.sheet_id).total == 10
        server = conn.server
    assert conn.closed
    assert not server.running
    conn.close()  # idempotent: nothing left to close, no error
    assert conn.closed


def test_an_unclosed_connection_stops_its_server_when_collected(no_key: None) -> None:
    conn = connect(records=10)
    server = conn.server
    database = Path(server.store.path)
    assert server.running and database.exists()
    ref = weakref.ref(conn)
    del conn
    gc.collect()
    # The cleanup held no reference to the Connection: it was collected, and its server
    # stopped (thread joined, temporary database removed).
    assert ref() is None
    assert not server.running
    assert not database.exists()


def test_the_real_platform_without_sheet_id_warns() -> None:
    env = {"FLATFILE_API_KEY": "sk_test", "FLATFILE_API_URL": "http://127.0.0.1:9"}
    with pytest.warns(
        UserWarning, match=re.escape("conn.sheet_id is None; pass connect(sheet_id=")
    ):
        conn = connect(env)
    with conn:
        assert not conn.embedded and conn.sheet_id is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with connect(env, sheet_id="us_sh_1") as named:
            assert named.sheet_id == "us_sh_1"


@pytest.mark.parametrize("variable", ["FLATFILE_API_KEY", "FLATFILE_BEARER_TOKEN"])
def test_the_warning_names_the_variable_that_chose_the_platform(variable: str) -> None:
    # A stray (or garbage) key in the environment must not silently pick the real platform.
    env = {variable: "garbage", "FLATFILE_API_URL": "http://127.0.0.1:9"}
    with pytest.warns(UserWarning) as caught:
        conn = connect(env)
    conn.close()
    message = str(caught[0].message)
    assert f"because {variable} is set" in message
    assert "http://127.0.0.1:9/v1" in message
    assert f"unset {variable} (or call connect(env={{}})) to use the embedded server" in message
    assert "garbage" not in message  # the key itself is never shown


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"records": "10"}, ValueError, "records must be a non-negative integer, got '10'"),
        ({"records": -1}, ValueError, "records must be a non-negative integer, got -1"),
        ({"records": True}, ValueError, "records must be a non-negative integer, got True"),
        ({"sample": ""}, ValueError, "sample must be a sample name like 'contacts' or None"),
        ({"sheet_id": 3}, ValueError, "sheet_id must be a sheet id string or None, got 3"),
        ({"env": ["FLATFILE_API_KEY"]}, TypeError, "env must be a mapping like os.environ"),
    ],
)
def test_connect_checks_its_arguments(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        connect(**kwargs)  # type: ignore[arg-type]


def test_a_connection_needs_a_client() -> None:
    with pytest.raises(TypeError, match="client must be a splitkit Client, got NoneType"):
        Connection(None)  # type: ignore[arg-type]


# -- proxies -----------------------------------------------------------------------------------


@pytest.fixture
def dead_proxy(monkeypatch: pytest.MonkeyPatch, no_key: None) -> None:
    """Every proxy variable points at a port where nothing answers."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_the_embedded_server_is_reached_directly_despite_a_proxy(dead_proxy: None) -> None:
    with splitkit.connect(records=10) as conn:  # the server's start-up probe, then the client
        assert conn.sheet_id is not None
        assert conn.client.get_counts(conn.sheet_id).total == 10
        with Client(conn.config.base_url, conn.config.token) as other:
            assert len(other.list_environments()) == 1

        async def listed() -> int:
            async with AsyncClient(conn.config.base_url, conn.config.token) as client:
                return len(await client.list_environments())

        assert asyncio.run(listed()) == 1


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://127.1.2.3/v1", True),
        ("http://localhost:8000/v1", True),
        ("http://LOCALHOST/v1", True),
        ("http://[::1]:8000/v1", True),
        ("https://api.x.flatfile.com/v1", False),
        ("http://10.0.0.5/v1", False),
        ("http://localhost.example.com/v1", False),
    ],
)
def test_only_loopback_urls_skip_the_proxy(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


# -- lifetime: what connect() returns keeps its server ----------------------------------------


def test_a_client_taken_from_a_dropped_connection_keeps_working(no_key: None) -> None:
    client = connect(records=10).client  # the Connection itself is referenced nowhere
    gc.collect()
    environments = client.list_environments()
    assert len(environments) == 1
    space = client.create_space(name="kept alive")
    assert client.create_workbook("w", [], space_id=space["id"])["spaceId"] == space["id"]


def test_closing_the_connection_stops_its_server(no_key: None) -> None:
    conn = connect(records=10)
    client, server = conn.client, conn.server
    conn.close()
    assert not server.running
    with pytest.raises(RuntimeError):
        client.list_environments()


def test_a_dropped_client_and_connection_stop_the_server_when_collected(no_key: None) -> None:
    client = connect(records=10).client
    gc.collect()
    assert client.list_environments()
    servers = [o for o in gc.get_objects() if type(o).__name__ == "EmbeddedServer" and o.running]
    server = next(s for s in servers if s.url == client.config.base_url)
    dropped = weakref.ref(client)
    del client
    gc.collect()
    assert dropped() is None
    assert not server.running


def test_an_unclosed_connection_is_closed_at_interpreter_exit(tmp_path: Path) -> None:
    script = (
        "import splitkit\n"
        "conn = splitkit.connect(records=10)\n"
        "print(conn.server.store.path, flush=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    database = Path(done.stdout.strip())
    assert database.parent.name.startswith("splitkit-server-")
    assert not database.parent.exists()  # the server stopped and removed its temporary database
