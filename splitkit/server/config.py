"""ServerConfig: what create_app() needs, as an explicit value (no environment variables)."""

from __future__ import annotations

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
        if not self.token:
            raise ValueError("token must be a non-empty string, got ''")
        if self.max_parts < 1:
            raise ValueError(f"max_parts must be a positive integer, got {self.max_parts}")
