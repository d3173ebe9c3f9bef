"""Where ``Client`` and ``AsyncClient`` differ below the send loop, one pair of names each.

``async_client.py`` uses the ``async_`` / ``ASYNC_`` names; ``scripts/unasync.py``
turns them into the plain ones for ``client.py`` (``async_http_client`` →
``http_client``, ...). So each pair keeps the same signature, awaitables aside.

- The httpx client a client sends with. ``AsyncClient``'s default transport is
  ``httpx_aiohttp.AiohttpTransport``: stock httpx's async pool collapses under
  concurrency (httpx issue 3215 reports ~800 requests/s at 50 in flight), while
  aiohttp's keeps going; ``bench/bench_async_transport.py`` measures both. Its
  session binds to the event loop of the first request: one ``AsyncClient`` per
  event loop. ``Client`` keeps httpx's default transport.
- Both verify https with the process's one SSL context (``_tls.verified_context``),
  passed as ``verify=``: httpx and aiohttp would each build a fresh one per client.
- The transport errors that mean "no answer", and how each is named (``Failure``).
- A direct sender (``AsyncClient`` only): with the default transport and no proxy, a
  request goes straight to the transport's own aiohttp session, with the URL and headers
  httpx would build but without building an ``httpx.Request`` and ``httpx.Response``
  (URL parsing, header models, byte streams: half the client's CPU per request).
  ``Client`` has none.
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport, HttpxAiohttpClient

from splitkit.api._base import (
    POOL_LIMITS,
    RESET_ERRORS,
    Failure,
    causes,
    httpx_failure,
    is_loopback,
)
from splitkit.api._tls import verified_context
from splitkit.api.config import ClientConfig
from splitkit.api.encoding import dumps
from splitkit.api.operations import Operation

__all__ = [
    "ASYNC_TRANSPORT_ERRORS",
    "TRANSPORT_ERRORS",
    "AsyncDirectSender",
    "DirectAnswer",
    "DirectRequest",
    "async_http_client",
    "async_transport_failure",
    "http_client",
    "transport_failure",
]


def http_client(
    config: ClientConfig, headers: dict[str, str], transport: httpx.BaseTransport | None
) -> tuple[httpx.Client, None]:
    """``Client``'s httpx client (httpx's transport unless given one), and no direct sender."""
    # Proxies from the environment, but never for loopback (the embedded server).
    trust_env = not is_loopback(config.base_url)
    http = httpx.Client(
        base_url=config.base_url,
        headers=headers,
        timeout=config.timeout,
        limits=POOL_LIMITS,
        transport=transport,
        trust_env=trust_env,
        verify=verified_context(trust_env),  # shared: a fresh one per client costs ~50 ms
    )
    return http, None


def async_http_client(
    config: ClientConfig, headers: dict[str, str], transport: httpx.AsyncBaseTransport | None
) -> tuple[httpx.AsyncClient, AsyncDirectSender | None]:
    """``AsyncClient``'s httpx client (the aiohttp transport unless given one), and the
    direct sender over that transport's session when requests go straight to it.

    ``HttpxAiohttpClient`` is httpx's client with aiohttp transports, also for the
    proxies httpx reads from ``HTTP(S)_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY``: so both
    clients honour the environment alike (a bare ``AiohttpTransport`` reads no proxy
    variables at all, and dispatch could not connect behind a proxy).
    """
    # Proxies from the environment, but never for loopback (the embedded server).
    trust_env = not is_loopback(config.base_url)
    if transport is not None:
        http = httpx.AsyncClient(
            base_url=config.base_url,
            headers=headers,
            timeout=config.timeout,
            transport=transport,
            trust_env=trust_env,
        )
        return http, None
    # httpx reads the proxy variables with urllib's getproxies() too. None set: every
    # request goes to the default transport, made here so that the direct sender shares its
    # session (httpx ignores the proxy variables when given a transport: only then).
    proxied = trust_env and bool(urllib.request.getproxies())
    # Shared by every client of the process (and the proxies' transports httpx mounts):
    # a fresh one per client costs ~50 ms.
    verify = verified_context(trust_env)
    default = (
        None
        if proxied
        else AiohttpTransport(verify=verify, trust_env=trust_env, limits=POOL_LIMITS)
    )
    http = HttpxAiohttpClient(
        base_url=config.base_url,
        headers=headers,
        timeout=config.timeout,
        limits=POOL_LIMITS,
        trust_env=trust_env,
        transport=default,
        verify=verify,
    )
    return http, None if default is None else AsyncDirectSender(http, default, config.timeout)


# Unreserved characters (RFC 3986 §2.3): the same in every escaping.
_PLAIN = re.compile(r"[A-Za-z0-9._~-]*\Z")


@dataclass(frozen=True, slots=True)
class DirectRequest:
    method: str
    url: yarl.URL
    headers: dict[str, str]
    body: bytes | None


class DirectAnswer:
    """What ``BaseClient._result`` reads of an answer, as ``httpx.Response`` has it."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(self, status: int, reason: str, headers: Any, content: bytes) -> None:
        self.status_code = status
        self.reason_phrase = reason
        self.headers = headers  # case-insensitive, as httpx's
        self.content = content

    @property
    def text(self) -> str:  # only error bodies are read as text
        return self.content.decode("utf-8", errors="replace")


class AsyncDirectSender:
    """Sends an operation through the default transport's aiohttp session, as that
    transport would send httpx's request (same URL bytes, headers, timeouts; no
    redirects), and reads the whole answer. Its errors are aiohttp's own, which
    ``async_transport_failure`` names as it names them under httpx's wrappers.

    It takes only an ASCII path without a query of its own, parameters that need no
    escaping (a part's: page number and size) and only while the client holds no cookies
    (httpx would add them); the rest goes through httpx.
    """

    def __init__(self, http: httpx.AsyncClient, transport: AiohttpTransport, timeout: float):
        self._http = http
        self._transport = transport
        self._base = str(http.base_url)  # ends with "/"
        self._headers = dict(http.headers.multi_items())
        self._json_headers = {**self._headers, "content-type": "application/json"}
        # As the transport turns httpx.Timeout(timeout) into aiohttp's.
        self._timeout = aiohttp.ClientTimeout(
            sock_connect=timeout, sock_read=timeout, connect=timeout
        )

    def prepare(self, op: Operation[Any]) -> DirectRequest | None:
        """The request to send, or None when it is httpx's to build."""
        path = op.path
        if not path.isascii() or "?" in path or "#" in path or self._http.cookies:
            return None
        url = self._base + path.lstrip("/")
        if op.params:
            # Only values that need no escaping: how httpx escapes the rest is its own.
            if not all(_PLAIN.match(key) and _PLAIN.match(value) for key, value in op.params):
                return None
            url += "?" + "&".join(f"{key}={value}" for key, value in op.params)
        if op.json is None:
            return DirectRequest(op.method, yarl.URL(url, encoded=True), self._headers, None)
        body = dumps(op.json)
        return DirectRequest(op.method, yarl.URL(url, encoded=True), self._json_headers, body)

    async def send(self, request: DirectRequest) -> DirectAnswer:
        transport = self._transport
        session = transport.client
        if not isinstance(session, aiohttp.ClientSession):
            session = transport.client = transport.get_client()
        async with session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body,
            allow_redirects=False,
            timeout=self._timeout,
        ) as response:
            content = await response.read()
            return DirectAnswer(response.status, response.reason or "", response.headers, content)


#: What ``Client`` takes for "no answer came".
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError,)
#: The aiohttp transport maps most of its errors to httpx's, but not every one.
ASYNC_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TransportError,
    aiohttp.ClientError,
    TimeoutError,
)


def transport_failure(exc: BaseException) -> Failure:
    """Name what happened to a ``Client`` request that got no answer."""
    return httpx_failure(exc)


def async_transport_failure(exc: BaseException) -> Failure:
    """Name what happened, judged by the aiohttp error underneath when there is one."""
    # The transport maps aiohttp's errors loosely (a connection the server closed becomes
    # httpx.ConnectTimeout), so its httpx class alone would misname the failure.
    cause = next((e for e in causes(exc) if isinstance(e, aiohttp.ClientError)), None)
    if cause is None:
        return httpx_failure(exc)
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return Failure("connect_timeout", False, cause)
    if isinstance(cause, aiohttp.ClientConnectorError):
        return Failure("refused", False, cause)
    if isinstance(cause, aiohttp.ServerTimeoutError):
        return Failure("timeout", True, cause)
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return Failure("closed", True, cause)
    if any(isinstance(e, RESET_ERRORS) for e in causes(cause)):
        return Failure("reset", True, cause)
    return Failure("lost", True, cause)
