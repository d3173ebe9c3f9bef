"""Shared fixtures: the embedded server over real loopback HTTP and real SQLite.

``server``        session-wide, a file database with a 2,000-record sheet (``server.sheet_id``)
``fresh_server``  per test, empty but for the default environment
``http``          an ``httpx.Client`` on ``server`` (base URL ``.../v1``, bearer header set)
``fresh_http``    the same on ``fresh_server``
``client_for``    makes such a client for any server (for many concurrent clients)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from splitkit.server import EmbeddedServer

# Every dispatch keeps its run in the history (splitkit.runlog): the suite's runs go to a
# folder of their own, not .splitkit/runs in the checkout (kernels and subprocesses inherit it).
os.environ.setdefault("SPLITKIT_HISTORY", tempfile.mkdtemp(prefix="splitkit-history-"))


def api_client(server: EmbeddedServer, **kwargs: object) -> httpx.Client:
    """An httpx client for ``server``: relative paths like ``"/jobs"`` go under ``/v1``."""
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=60.0,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def client_for() -> Callable[..., httpx.Client]:
    return api_client


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    db_path: Path = tmp_path_factory.mktemp("server") / "splitkit.db"
    with EmbeddedServer(db_path=db_path, records=2_000) as running:
        yield running


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(db_path=tmp_path / "fresh.db") as running:
        yield running


@pytest.fixture
def http(server: EmbeddedServer) -> Iterator[httpx.Client]:
    with api_client(server) as client:
        yield client


@pytest.fixture
def fresh_http(fresh_server: EmbeddedServer) -> Iterator[httpx.Client]:
    with api_client(fresh_server) as client:
        yield client


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """tests/test_docs.py: how many code blocks of each page were shown but not run."""
    import sys

    docs = sys.modules.get("tests.test_docs") or sys.modules.get("test_docs")
    counts: dict[str, list[str]] = getattr(docs, "NOT_RUN_COUNTS", {})
    if counts:
        terminalreporter.section("docs: code blocks not run, per page")
        for page, blocks in counts.items():
            terminalreporter.write_line(f"{page}: {len(blocks)} not run")
            for block in blocks:
                terminalreporter.write_line(f"    {block}")
