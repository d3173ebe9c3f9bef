"""ServerConfig: what create_app() needs, as an explicit value (no environment variables)."""

from __future__ import annotations

import math
import numbers
import operator
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

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
        if not isinstance(self.db_path, str | os.PathLike) or not str(self.db_path).strip():
            raise ValueError(
                f"db_path must be a file path (str or Path), got {self.db_path!r}; "
                "the SQLite file is created if missing"
            )
        if not isinstance(self.token, str) or not self.token.strip():
            # Never echo the value: it may be a real secret.
            shown = "''" if self.token == "" else type(self.token).__name__
            raise ValueError(
                f"token must be a non-empty string, got {shown}; leave it out to generate one"
            )
        if (
            isinstance(self.max_parts, bool)
            or not isinstance(self.max_parts, numbers.Integral)
            or self.max_parts < 1
        ):
            raise ValueError(f"max_parts must be a positive integer, got {self.max_parts!r}")
        object.__setattr__(self, "max_parts", operator.index(self.max_parts))
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
