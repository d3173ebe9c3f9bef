"""EmbeddedServer: the server on a loopback port, run by uvicorn in a background thread.

    with EmbeddedServer(records=2_000) as server:
        client = Client(server.url, server.token)      # server.sheet_id holds the records

For notebooks and tests. The database is a file: pass ``db_path`` to keep it across
restarts, or leave it None for a temporary one that ``stop()`` removes.

``simulate`` imitates a platform (latency, a rate limit, failures, a records-page cost):
a profile name (``"flatfile"``, ``"slow-network"``, ``"rate-limited"``, ``"local"``), a
profile JSON path, a dict or a ``SimProfile``; off when None. See docs/simulator.md.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx
import uvicorn

from splitkit._checks import file_path, integer, non_empty_str, secret
from splitkit.simprofile import SimProfile, sim_profile

from .app import create_app
from .config import DEFAULT_MAX_BODY_MB, ServerConfig, check_max_body_mb
from .samples import SampleSheet, create_sample_sheet
from .simulator import Simulator
from .store import Store

_START_TIMEOUT_S = 15.0


class EmbeddedServer:
    """A running server: ``.url`` (with ``/v1``), ``.token``, ``.environment_id`` and, when a
    sample or generated records were asked for, ``.space_id``, ``.workbook_id``, ``.sheet_id``.
    ``max_body_mb`` bounds a request body (MiB; a larger one is answered 413).
    ``simulate`` (see the module docstring) makes ``.simulator`` a
    :class:`~splitkit.server.simulator.Simulator` (``.profile``, ``.set_profile()``,
    ``.stats``); None when off.
    """

    def __init__(
        self,
        *,
        db_path: Path | str | None = None,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        sample: str | None = None,
        records: int | None = None,
        seed: int = 0,
        max_body_mb: float = DEFAULT_MAX_BODY_MB,
        simulate: SimProfile | str | Path | Mapping[str, object] | None = None,
    ) -> None:
        if sample is not None and records is not None:
            raise ValueError("pass sample or records, not both")
        if records is not None:
            records = integer(
                "records",
                records,
                low=0,
                what="a non-negative integer (the number of records to generate, or None)",
            )
        if sample is not None:
            what = "the name of a CSV in data/samples (e.g. 'contacts') or None"
            non_empty_str("sample", sample, what=what)
        if db_path is not None:
            what = "a file path (str or Path) or None for a temporary database"
            file_path("db_path", db_path, what=what)
        if token is not None:
            secret("token", token, what="a non-empty string or None (None generates one)")
        non_empty_str("host", host, what="an address to bind like '127.0.0.1'")
        what = "an integer from 0 to 65535 (0 picks a free port)"
        port = integer("port", port, low=0, high=65_535, what=what)
        seed = integer("seed", seed, what="an integer (the generator's seed)")
        self.max_body_mb = check_max_body_mb(max_body_mb)
        self.db_path = None if db_path is None else Path(db_path)
        self.token = token or secrets.token_urlsafe(24)
        self.host, self.port = host, port
        self.sample, self.records, self.seed = sample, records, seed
        self.environment_id: str | None = None
        self._sheet: SampleSheet | None = None
        self._tmpdir: str | None = None
        self._store: Store | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        # resolved now: a bad profile is refused before anything starts
        self.simulator = (
            None if simulate is None else Simulator(sim_profile(simulate), active=False)
        )

    # -- addresses and ids -------------------------------------------------------------

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL, ``.../v1`` (what the Python SDK calls ``base_url``)."""
        return f"{self.root_url}/v1"

    @property
    def space_id(self) -> str | None:
        return None if self._sheet is None else self._sheet.space_id

    @property
    def workbook_id(self) -> str | None:
        return None if self._sheet is None else self._sheet.workbook_id

    @property
    def sheet_id(self) -> str | None:
        return None if self._sheet is None else self._sheet.sheet_id

    @property
    def store(self) -> Store | None:
        """The open database while running (for direct reads in tests and benchmarks)."""
        return self._store

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmbeddedServer {state} url={self.url!r} db_path={str(self.db_path)!r} token=***>"

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> EmbeddedServer:
        """Open the database, make the sample sheet if asked, serve, and wait until it answers."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        if self.db_path is None:
            self._tmpdir = tempfile.mkdtemp(prefix="splitkit-server-")
        path = Path(self._tmpdir) / "splitkit.db" if self._tmpdir else self.db_path
        assert path is not None
        config = ServerConfig(db_path=path, token=self.token, max_body_mb=self.max_body_mb)
        # a temporary database needs no fsync: it does not outlive the server (store.py)
        self._store = Store(path, durable=self.db_path is not None)
        self.environment_id = self._store.environment_id
        if self.sample is not None or self.records is not None:
            self._sheet = create_sample_sheet(
                self._store, sample=self.sample, records_count=self.records, seed=self.seed
            )
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Accepted connections inherit it: without it, uvicorn's separate writes of head
            # and body meet the client's delayed ACK, and every request on a kept-alive
            # connection waits ~40 ms (Nagle's algorithm).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]  # the port picked when 0 was asked for
        uv_config = uvicorn.Config(
            create_app(config, self._store, self.simulator),
            log_config=None,  # leave the host process's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=2048,  # a burst of one connection per part must not be refused
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="splitkit-server", daemon=True
        )
        self._thread.start()
        self._wait_until_answering()
        if self.simulator is not None:  # only now: the readiness check is not simulated
            self.simulator.active = True

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        assert self._server is not None
        while not self._server.started:
            if not self.running or time.monotonic() > deadline:
                raise RuntimeError(f"the embedded server did not start on {self.root_url}")
            time.sleep(0.01)
        # trust_env=False: a loopback probe must not go through an HTTP(S)_PROXY.
        response = httpx.get(
            f"{self.url}/environments",
            headers={"Authorization": f"Bearer {self.token}"},
            trust_env=False,
        )
        if response.status_code != 200:
            raise RuntimeError(f"the embedded server answers {response.status_code} at {self.url}")

    def stop(self) -> None:
        """Stop serving, join the thread, close the database (and remove it if temporary)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT_S)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout=_START_TIMEOUT_S)
        if self._store is not None:
            self._store.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._server = self._thread = self._store = self._tmpdir = None
        if self.simulator is not None:
            self.simulator.active = False

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
