"""Fixtures of the chaos tests: one embedded server (file database) for the module's
dispatch and listener scenarios, with a sheet of ``RECORDS`` records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chaos_scenario import RECORDS

from splitkit import Client
from splitkit.server import EmbeddedServer


@pytest.fixture(scope="module")
def chaos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    db_path = tmp_path_factory.mktemp("chaos") / "chaos.db"
    with EmbeddedServer(db_path=db_path, records=RECORDS) as running:
        yield running


@pytest.fixture
def direct(chaos_server: EmbeddedServer) -> Iterator[Client]:
    """A client on the server's own URL: what the server holds, never through the proxy."""
    with Client(chaos_server.url, chaos_server.token) as client:
        yield client
