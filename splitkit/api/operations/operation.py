"""The unit of the operations core: an ``Operation`` is one request and the reader of its
answer; a ``Flow`` is work of several requests, a generator of operations; a ``Page`` is
one page of a list with the server's ``pagination``."""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["IDEMPOTENT_METHODS", "Flow", "Operation", "Page", "Params"]

T = TypeVar("T")
R = TypeVar("R")

Params = tuple[tuple[str, str], ...]


# Methods HTTP defines as safe to send twice (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Operation(Generic[T]):
    """One request and the reader of its answer. ``json=None`` sends no body.

    ``idempotent`` says whether sending the request twice has the effect of
    sending it once, so the client may resend it after a doubtful failure (a
    500/502/504, or an answer lost after sending). Left as None it follows the
    method (``IDEMPOTENT_METHODS``: a POST is not); after construction it is
    always a bool.
    """

    method: str
    path: str
    parse: Callable[[bytes], T]
    params: Params = ()
    json: Any = None
    idempotent: bool | None = None

    def __post_init__(self) -> None:
        if self.idempotent is None:
            object.__setattr__(self, "idempotent", self.method in IDEMPOTENT_METHODS)
        elif not isinstance(self.idempotent, bool):
            raise ValueError(f"idempotent must be True, False or None, got {self.idempotent!r}")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """A page of a list, with the ``pagination`` object when the server sent one."""

    items: list[T]
    pagination: Mapping[str, Any] | None = None


# A multi-request flow: yields operations, is sent their results, returns R.
Flow = Generator[Operation[Any], Any, R]
