"""ServerConfig: what create_app() needs, as an explicit value (no environment variables)."""

from __future__ import annotations

import math
import numbers
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from splitkit._checks import file_path, positive_int, secret

DEFAULT_MAX_BODY_MB = 32


@dataclass(frozen=True)
class ServerConfig:
    """Configuration of one server app.

    ``db_path`` is the SQLite file (it is created if missing and persists across restarts).
    ``token`` is the bearer token every ``/v1`` route requires; it never appears in a repr.
    ``max_parts`` bounds a split: a larger ``parts`` is refused with a 400.
    ``max_body_mb`` bounds a request body in MiB (``splitkit serve --max-body-mb``): a larger
    one is refused with a 413 before it is read (or, streamed, as soon as it passes).
    """

    db_path: Path | str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    max_parts: int = 100_000
    max_body_mb: float = DEFAULT_MAX_BODY_MB

    def __post_init__(self) -> None:
        file_path("db_path", self.db_path, hint="; the SQLite file is created if missing")
        secret("token", self.token, hint="; leave it out to generate one")
        object.__setattr__(self, "max_parts", positive_int("max_parts", self.max_parts))
        object.__setattr__(self, "max_body_mb", check_max_body_mb(self.max_body_mb))

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


def check_max_body_mb(value: object) -> float:
    """``value`` as a positive number of MiB (fractions allowed, e.g. 0.5)."""
    number = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else 0
    if not math.isfinite(number) or number * 1024 * 1024 < 1:
        raise ValueError(
            f"max_body_mb must be a positive number of MiB (e.g. {DEFAULT_MAX_BODY_MB}), "
            f"got {value!r}"
        )
    return number
