"""The embedded Flatfile-compatible server: FastAPI over SQLite.

    create_app(ServerConfig(db_path=..., token=...))   # the ASGI app
    EmbeddedServer(records=2_000)                       # the app on a loopback port, in a thread

It never imports ``splitkit.api``: client and server meet only on the wire.
"""

from __future__ import annotations

from .app import create_app
from .config import ServerConfig
from .embedded import EmbeddedServer

__all__ = ["EmbeddedServer", "ServerConfig", "create_app"]
