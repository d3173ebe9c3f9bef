"""Every client of a process shares one verified SSL context, and https still verifies.

httpx and its aiohttp transport build a fresh SSL context per client (the CA bundle
loaded: ~50 ms each), so every ``Client``, ``AsyncClient`` and ``dispatch()`` paid it, even
over plain http to the embedded server. ``splitkit.api._tls`` makes it once per process.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from splitkit import dispatch, plan_parts, split_parent, start_parent_job
from splitkit.api import AsyncClient, Client, ConnectionFailedError, RetryPolicy
from splitkit.api._tls import verified_context
from splitkit.server import EmbeddedServer


@pytest.fixture
def contexts_made(monkeypatch: pytest.MonkeyPatch) -> list[type]:
    """Every ``ssl.SSLContext`` made from now on (by anyone: httpx, aiohttp, ...)."""
    made: list[type] = []
    original = ssl.SSLContext.__new__

    def counting(cls: type, *args: Any, **kwargs: Any) -> Any:
        made.append(cls)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "__new__", counting)
    return made


async def _use_async(server: EmbeddedServer) -> None:
    async with AsyncClient(server.url, server.token) as client:
        await client.list_environments()  # the aiohttp session and connector are made too


def test_clients_and_dispatch_runs_make_no_ssl_context_after_the_first(
    server: EmbeddedServer, contexts_made: list[type]
) -> None:
    with Client(server.url, server.token) as first:  # may make the process's one context
        first.list_environments()
    assert len(contexts_made) <= 1
    contexts_made.clear()

    with Client(server.url, server.token, environment_id=server.environment_id) as client:
        for _ in range(3):
            with Client(server.url, server.token) as other:
                other.list_environments()
            asyncio.run(_use_async(server))
        for _ in range(2):  # each run makes its own AsyncClient
            parent = start_parent_job(client, server.sheet_id)
            split_parent(client, parent.id, plan_parts(20, batch_size=10), check_counts=False)
            handle = dispatch(
                client, parent.id, lambda part: None, progress=False, claim=False, history=False
            )
            assert handle.summary()["completed"].iloc[0] == 2
    # Before: one per Client, per AsyncClient and per dispatch (8 here), ~50 ms each.
    assert contexts_made == []


def test_the_shared_context_verifies_certificates_and_host_names() -> None:
    for trust_env in (False, True):
        context = verified_context(trust_env)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True
        assert context.get_ca_certs()  # a CA bundle is loaded
        assert verified_context(trust_env) is context


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no CA signed, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
    names = ["-subj", "/CN=splitkit-self-signed", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [*command.split(), *names, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"data": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client refusing our certificate mid-handshake is the point


@pytest.fixture
def https_url(self_signed: tuple[Path, Path]) -> Iterator[str]:
    """Base URL of an https server on loopback with the self-signed certificate."""
    cert, key = self_signed
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    running = _QuietServer(("127.0.0.1", 0), _Answer)
    running.socket = tls.wrap_socket(running.socket, server_side=True)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{running.server_address[1]}/v1"
    finally:
        running.shutdown()
        running.server_close()


def _verify_failed(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def test_https_with_an_unknown_certificate_is_refused_by_both_clients(https_url: str) -> None:
    once = RetryPolicy(attempts=1)
    with (
        Client(https_url, "tok", timeout=5, retry=once) as client,
        pytest.raises(ConnectionFailedError) as caught,
    ):
        client.list_environments()
    assert _verify_failed(caught.value), caught.value

    async def listed() -> None:
        async with AsyncClient(https_url, "tok", timeout=5, retry=once) as client:
            await client.list_environments()

    with pytest.raises(ConnectionFailedError) as caught:
        asyncio.run(listed())
    assert _verify_failed(caught.value), caught.value


def test_ssl_cert_file_is_read_as_httpx_reads_it(
    self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients that trust the environment (not loopback) take ``SSL_CERT_FILE`` as their CAs,
    as httpx does; loopback clients keep certifi's bundle."""
    cert, _ = self_signed
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))

    def subjects(context: ssl.SSLContext) -> list[Any]:
        return [entry["subject"] for entry in context.get_ca_certs()]

    ours = ((("commonName", "splitkit-self-signed"),),)
    assert subjects(verified_context(True)) == [ours]
    assert ours not in subjects(verified_context(False))
    monkeypatch.delenv("SSL_CERT_FILE")
    assert ours not in subjects(verified_context(True))
