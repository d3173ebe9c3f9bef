"""A fault-injecting HTTP/1.1 reverse proxy on loopback, for tests.

It sits between a client and a real server (the embedded one) and, per request,
either forwards it untouched or injects one fault::

    from faultproxy import FaultProxy              # tests/ is on sys.path (tests/conftest.py)

    with FaultProxy(server.url) as proxy:          # server.url ends in /v1; so does proxy.url
        client = Client(proxy.url, server.token)
        proxy.script(method="POST", path_glob="/v1/sheets/*/records",
                     faults=["502_after_forward"])  # the next matching request only
        ...
        proxy.forwarded_count("POST", "/v1/sheets/*/records")   # reached the server

Fault kinds (``KINDS``):

``latency``             wait (``latency_s``, a range drawn from), then forward normally
``429``                 answer 429 with ``Retry-After``; not forwarded
``500``                 answer 500; not forwarded (the client cannot tell: for it a 500
                        may or may not have been processed)
``503``                 answer 503 with ``Retry-After``; not forwarded
``502_after_forward``   forward, drop the server's answer, answer 502 (a gateway that
                        lost its upstream after the request went through)
``lost_after_forward``  forward, then close the connection without answering
``reset``               read the request, do not forward, reset the connection (RST)

Scripted faults: ``script(method=..., path_glob=..., faults=[...])`` queues faults
for the requests matching ``method`` (None: any) and ``path_glob`` (``fnmatch`` on the
path without query; ``*`` spans ``/``), consumed one per matching request in order;
``None`` or ``"ok"`` in the list lets that request through. Scripts are checked in
the order they were added; a script whose faults are used up no longer matches.

Random faults: ``randomize(rates={"500": 0.1, "reset": 0.1}, seed=7)`` injects, for
each request no script took, kind *k* with probability ``rates[k]`` (rates sum to at
most 1), optionally only for ``methods`` / ``path_glob``. The seed fixes the sequence
of draws; with concurrent clients, which request gets which draw follows arrival order.
``randomize(None)`` turns it off.

Counters (thread-safe, read any time): ``received`` and ``forwarded`` are
``Counter[(method, path)]``; ``injected`` is ``Counter[kind]``.
``forwarded_count(method, path_glob)`` / ``received_count(...)`` sum over matching
paths. ``reset_counters()`` zeroes them; ``clear()`` also drops scripts and random mode.

Injected latency is drawn from its own generator, seeded by ``randomize(seed=...)``.
The proxy runs its own event loop in a thread, so sync and async clients can both use
it; ``start()``/``stop()`` or ``with``. Upstream it uses httpx; the client side is
parsed with h11 (which httpx's stack already uses).
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

import h11
import httpx
import orjson

__all__ = ["KINDS", "FaultProxy"]

KINDS = (
    "latency",
    "429",
    "500",
    "503",
    "502_after_forward",
    "lost_after_forward",
    "reset",
)
_PASS = ("ok", None)
# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones httpx/h11 set themselves.
_DROP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)


@dataclass
class _Script:
    method: str | None
    path_glob: str
    faults: list[str | None]

    def matches(self, method: str, path: str) -> bool:
        wanted = self.method is None or self.method == method
        return wanted and bool(self.faults) and fnmatch.fnmatchcase(path, self.path_glob)


@dataclass
class _Random:
    rates: dict[str, float]
    rng: random.Random
    methods: frozenset[str] | None
    path_glob: str

    def draw(self, method: str, path: str) -> str | None:
        if self.methods is not None and method not in self.methods:
            return None
        if not fnmatch.fnmatchcase(path, self.path_glob):
            return None
        u = self.rng.random()
        for kind, rate in self.rates.items():
            if u < rate:
                return kind
            u -= rate
        return None


@dataclass
class _Reply:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


class FaultProxy:
    """A reverse proxy to ``upstream_url`` that injects faults; see the module docstring.

    ``upstream_url`` may carry a path (``.../v1``); ``url`` carries the same path, so
    it replaces the upstream URL as a client's base URL. ``retry_after`` is the
    ``Retry-After`` header of injected 429s and 503s (seconds, as text); ``latency_s``
    the range an injected latency is drawn from.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        retry_after: str = "0",
        latency_s: tuple[float, float] = (0.05, 0.2),
    ) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"upstream_url must be an http(s) URL, got {upstream_url!r}")
        low, high = latency_s
        if not 0 <= low <= high:
            raise ValueError(
                f"latency_s must be (low, high) with 0 <= low <= high, got {latency_s}"
            )
        self.upstream_root = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path.rstrip("/")
        self.retry_after = retry_after
        self.latency_s = latency_s
        self.received: Counter[tuple[str, str]] = Counter()
        self.forwarded: Counter[tuple[str, str]] = Counter()
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._scripts: list[_Script] = []
        self._random: _Random | None = None
        self._latency_rng = random.Random(0)
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # -- addresses and lifecycle ------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy's URL, with the upstream URL's path (a client's base URL)."""
        if self._port is None:
            raise RuntimeError("the proxy is not running: call start() or use it in a with block")
        return f"http://127.0.0.1:{self._port}{self._prefix}"

    def start(self) -> FaultProxy:
        if self._thread is not None:
            raise RuntimeError("the proxy is already running")
        started = threading.Event()
        errors: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(started, errors), name="faultproxy", daemon=True
        )
        self._thread.start()
        started.wait(10)
        if errors or self._port is None:
            self.stop()
            raise RuntimeError("the fault proxy did not start") from (errors[0] if errors else None)
        return self

    def stop(self) -> None:
        loop, stopped, thread = self._loop, self._stopped, self._thread
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        if thread is not None:
            thread.join(10)
        self._thread = self._loop = self._stopped = None
        self._port = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what to inject ---------------------------------------------------------------------

    def script(
        self, *, method: str | None = None, path_glob: str = "*", faults: Iterable[str | None]
    ) -> None:
        """Queue ``faults`` for the next requests matching ``method`` and ``path_glob``."""
        queued = list(faults)
        for kind in queued:
            if kind not in KINDS and kind not in _PASS:
                raise ValueError(f"fault must be one of {KINDS} or 'ok'/None, got {kind!r}")
        with self._lock:
            self._scripts.append(_Script(method and method.upper(), path_glob, queued))

    def randomize(
        self,
        rates: Mapping[str, float] | None,
        *,
        seed: int = 0,
        methods: Iterable[str] | None = None,
        path_glob: str = "*",
    ) -> None:
        """Inject kind *k* with probability ``rates[k]`` per request; None turns it off."""
        if rates is None:
            with self._lock:
                self._random = None
            return
        unknown = [kind for kind in rates if kind not in KINDS]
        if unknown:
            raise ValueError(f"rates keys must be among {KINDS}, got {unknown}")
        if any(not 0 <= r <= 1 for r in rates.values()) or sum(rates.values()) > 1:
            raise ValueError(f"rates must each be in [0, 1] and sum to at most 1, got {rates}")
        chosen = None if methods is None else frozenset(m.upper() for m in methods)
        with self._lock:
            self._random = _Random(dict(rates), random.Random(seed), chosen, path_glob)
            self._latency_rng = random.Random(seed + 1)

    def clear(self) -> None:
        """Drop scripts and random mode, and zero the counters."""
        with self._lock:
            self._scripts.clear()
            self._random = None
        self.reset_counters()

    def reset_counters(self) -> None:
        with self._lock:
            self.received.clear()
            self.forwarded.clear()
            self.injected.clear()

    def forwarded_count(self, method: str | None = None, path_glob: str = "*") -> int:
        """Requests that reached the upstream server, over the matching paths."""
        return self._count(self.forwarded, method, path_glob)

    def received_count(self, method: str | None = None, path_glob: str = "*") -> int:
        """Requests the proxy read from clients, over the matching paths."""
        return self._count(self.received, method, path_glob)

    def _count(self, counter: Counter[tuple[str, str]], method: str | None, glob: str) -> int:
        with self._lock:
            return sum(
                n
                for (m, path), n in counter.items()
                if (method is None or m == method.upper()) and fnmatch.fnmatchcase(path, glob)
            )

    def _choose(self, method: str, path: str) -> str | None:
        with self._lock:
            self.received[(method, path)] += 1
            for scripted in self._scripts:
                if scripted.matches(method, path):
                    kind = scripted.faults.pop(0)
                    break
            else:
                kind = self._random.draw(method, path) if self._random else None
            if kind not in _PASS:
                self.injected[str(kind)] += 1
            return None if kind in _PASS else kind

    # -- the event loop ---------------------------------------------------------------------

    def _run(self, started: threading.Event, errors: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(started))
        except BaseException as exc:  # reported by start()
            errors.append(exc)
        finally:
            started.set()
            loop.close()

    async def _serve(self, started: threading.Event) -> None:
        self._stopped = asyncio.Event()
        async with httpx.AsyncClient(
            base_url=self.upstream_root, timeout=60.0, trust_env=False
        ) as upstream:
            server = await asyncio.start_server(
                lambda r, w: self._accept(r, w, upstream), "127.0.0.1", 0
            )
            self._port = server.sockets[0].getsockname()[1]
            started.set()
            async with server:
                await self._stopped.wait()
                server.close()
                for task in list(self._connections):
                    task.cancel()
                await asyncio.gather(*self._connections, return_exceptions=True)

    async def _accept(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: httpx.AsyncClient,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._connection(reader, writer, upstream)
        except (h11.ProtocolError, ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away or spoke nonsense: drop the connection
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio logs a connection task that ends cancelled)
        finally:
            self._connections.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _connection(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: httpx.AsyncClient,
    ) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            request: h11.Request | None = None
            body = bytearray()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:  # ConnectionClosed, PAUSED: nothing more on this connection
                    return
            assert request is not None
            method = request.method.decode()
            path = request.target.decode().split("?", 1)[0]
            kind = self._choose(method, path)

            if kind == "reset":
                _reset(writer)
                return
            if kind in ("429", "500", "503"):
                reply = self._injected(int(kind))
            else:
                if kind == "latency":
                    with self._lock:
                        delay = self._latency_rng.uniform(*self.latency_s)
                    await asyncio.sleep(delay)
                reply = await self._forward(upstream, request, bytes(body))
                with self._lock:
                    self.forwarded[(method, path)] += 1
                if kind == "lost_after_forward":
                    writer.close()  # a clean close (FIN): the request was read in full
                    await writer.wait_closed()
                    return
                if kind == "502_after_forward":
                    reply = self._injected(502)

            headers = [*reply.headers, (b"content-length", str(len(reply.body)).encode())]
            for message in (
                h11.Response(status_code=reply.status, headers=headers),
                h11.Data(data=reply.body),
                h11.EndOfMessage(),
            ):
                writer.write(conn.send(message) or b"")
            await writer.drain()
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return  # h11 says this connection cannot carry another request
            conn.start_next_cycle()

    def _injected(self, status: int) -> _Reply:
        body = orjson.dumps(
            {"errors": [{"message": f"HTTP {status} injected by FaultProxy", "key": "fault"}]}
        )
        headers = [(b"content-type", b"application/json")]
        if status in (429, 503):
            headers.append((b"retry-after", self.retry_after.encode()))
        return _Reply(status, headers, body)

    async def _forward(
        self, upstream: httpx.AsyncClient, request: h11.Request, body: bytes
    ) -> _Reply:
        headers = [(k, v) for k, v in request.headers if k.lower() not in _DROP]
        async with upstream.stream(
            request.method.decode(),
            request.target.decode(),
            headers=headers,
            content=body if body else None,
        ) as response:
            content = b"".join([chunk async for chunk in response.aiter_raw()])
        kept = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in _DROP]
        return _Reply(response.status_code, kept, content)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort the connection with a TCP reset (RST), not a clean close."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER on with a zero timeout: close() sends RST and drops unsent data.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
