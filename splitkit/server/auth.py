"""Bearer-token authentication for every ``/v1`` route.

The token is compared in constant time and never echoed: not in a message, not in a log.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import HttpProblem

_bearer = HTTPBearer(auto_error=False, description="the server's token")


def token_checker(token: str) -> Callable[..., Awaitable[None]]:
    """A dependency that lets a request through only with ``Authorization: Bearer <token>``."""
    expected = token.encode()

    async def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if credentials is None:
            raise HttpProblem(
                401, "missing bearer token: send the header 'Authorization: Bearer <token>'"
            )
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise HttpProblem(401, "invalid bearer token")

    return require_token
