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
- The transport errors that mean "no answer", and how each is named (``Failure``).
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import HttpxAiohttpClient

from splitkit.api._base import (
    POOL_LIMITS,
    RESET_ERRORS,
    Failure,
    causes,
    httpx_failure,
    is_loopback,
)
from splitkit.api.config import ClientConfig

__all__ = [
    "ASYNC_TRANSPORT_ERRORS",
    "TRANSPORT_ERRORS",
    "async_http_client",
    "async_transport_failure",
    "http_client",
    "transport_failure",
]


def http_client(
    config: ClientConfig, headers: dict[str, str], transport: httpx.BaseTransport | None
) -> httpx.Client:
    """``Client``'s httpx client: httpx's transport unless given one."""
    return httpx.Client(
        base_url=config.base_url,
        headers=headers,
        timeout=config.timeout,
        limits=POOL_LIMITS,
        transport=transport,
        # Proxies from the environment, but never for loopback (the embedded server).
        trust_env=not is_loopback(config.base_url),
    )


def async_http_client(
    config: ClientConfig, headers: dict[str, str], transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    """``AsyncClient``'s httpx client: the aiohttp transport unless given one.

    ``HttpxAiohttpClient`` is httpx's client with aiohttp transports, also for the
    proxies httpx reads from ``HTTP(S)_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY``: so both
    clients honour the environment alike (a bare ``AiohttpTransport`` reads no proxy
    variables at all, and dispatch could not connect behind a proxy).
    """
    # Proxies from the environment, but never for loopback (the embedded server).
    trust_env = not is_loopback(config.base_url)
    if transport is not None:
        return httpx.AsyncClient(
            base_url=config.base_url,
            headers=headers,
            timeout=config.timeout,
            transport=transport,
            trust_env=trust_env,
        )
    return HttpxAiohttpClient(
        base_url=config.base_url,
        headers=headers,
        timeout=config.timeout,
        limits=POOL_LIMITS,
        trust_env=trust_env,
    )


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
