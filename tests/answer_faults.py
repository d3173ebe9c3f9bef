"""httpx transports that forward to the real one, then spoil the answer of chosen requests.

For reconciliation tests: the request reaches the embedded server and is processed, and
the client sees a gateway's 502 (``"502 after"``) or no answer at all (``"lost"``); or
the request never reaches the server and the client sees a 502 (``"502 before"``).

    faults = AnswerFaults(posts_to("/jobs/us_jb_x/complete"), "lost")
    client = Client(url, token, retry=RetryPolicy(attempts=1), transport=faults)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import httpx

Fault = Literal["502 after", "502 before", "lost"]
Match = Callable[[httpx.Request], bool]


def posts_to(path_suffix: str) -> Match:
    """Matches POST requests whose URL path ends with ``path_suffix``."""
    return lambda request: request.method == "POST" and request.url.path.endswith(path_suffix)


def _bad_gateway(request: httpx.Request) -> httpx.Response:
    body = {"errors": [{"message": "Bad Gateway (injected)"}]}
    return httpx.Response(502, json=body, request=request)


class _Faults:
    def __init__(self, match: Match, fault: Fault, times: int) -> None:
        self.match = match
        self.fault = fault
        self.remaining = times
        self.spoiled = 0  # requests whose answer was spoiled
        self.forwarded: list[str] = []  # "METHOD path" of every request that reached the server

    def _pick(self, request: httpx.Request) -> bool:
        if self.remaining and self.match(request):
            self.remaining -= 1
            self.spoiled += 1
            return True
        return False

    def _spoil(self, request: httpx.Request) -> httpx.Response:
        if self.fault == "lost":
            raise httpx.ReadError("the answer was lost (injected)", request=request)
        return _bad_gateway(request)


class AnswerFaults(_Faults, httpx.BaseTransport):
    """Sync: wraps ``httpx.HTTPTransport()``."""

    def __init__(self, match: Match, fault: Fault, *, times: int = 1) -> None:
        super().__init__(match, fault, times)
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        spoil = self._pick(request)
        if spoil and self.fault == "502 before":
            return _bad_gateway(request)
        self.forwarded.append(f"{request.method} {request.url.path}")
        response = self._inner.handle_request(request)
        if not spoil:
            return response
        response.read()  # the server has processed the request and answered
        response.close()
        return self._spoil(request)

    def close(self) -> None:
        self._inner.close()


class AsyncAnswerFaults(_Faults, httpx.AsyncBaseTransport):
    """Async: wraps ``httpx.AsyncHTTPTransport()``."""

    def __init__(self, match: Match, fault: Fault, *, times: int = 1) -> None:
        super().__init__(match, fault, times)
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        spoil = self._pick(request)
        if spoil and self.fault == "502 before":
            return _bad_gateway(request)
        self.forwarded.append(f"{request.method} {request.url.path}")
        response = await self._inner.handle_async_request(request)
        if not spoil:
            return response
        await response.aread()
        await response.aclose()
        return self._spoil(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
