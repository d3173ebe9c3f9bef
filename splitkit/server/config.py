"""ServerConfig: what create_app() needs, as an explicit value (no environment variables)."""

from __future__ import annotations

import numbers
import operator
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ServerConfig:
    """Configuration of one server app.

    ``db_path`` is the SQLite file (it is created if missing and persists across restarts).
    ``token`` is the bearer token every ``/v1`` route requires; it never appears in a repr.
    ``max_parts`` bounds a split: a larger ``parts`` is refused with a 400.
    """

    db_path: Path | str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    max_parts: int = 100_000

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
