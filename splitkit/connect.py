"""`connect()`: one call to a working client, on the real platform or the embedded server.

With `FLATFILE_API_KEY` (or `FLATFILE_BEARER_TOKEN`) set, the client talks to Flatfile
(`FLATFILE_API_URL`, `FLATFILE_ENVIRONMENT_ID` as Flatfile's SDKs read them). Without a key,
the embedded server starts in a background thread with a sample sheet, so everything runs
offline. This module sits above `splitkit.api` and `splitkit.server`, which never meet.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from splitkit.api import Client, ClientConfig

KEY_VARIABLES = ("FLATFILE_API_KEY", "FLATFILE_BEARER_TOKEN")


@dataclass
class Connection:
    """A client, and the embedded server behind it when there is one."""

    client: Client
    server: Any = field(default=None, repr=False)  # EmbeddedServer, when embedded
    sheet_id: str | None = None

    @property
    def embedded(self) -> bool:
        return self.server is not None

    @property
    def config(self) -> ClientConfig:
        return self.client.config

    def close(self) -> None:
        self.client.close()
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "embedded server" if self.embedded else "Flatfile"
        return f"<Connection to {where} at {self.config.base_url} sheet={self.sheet_id}>"


def connect(
    env: Mapping[str, str] | None = None,
    *,
    sample: str | None = "contacts",
    records: int | None = None,
    db_path: str | None = None,
    sheet_id: str | None = None,
) -> Connection:
    """A client for the real platform when a key is set in `env` (default: `os.environ`),
    else for a freshly started embedded server holding a sample sheet.

    `sample` names a CSV in `data/samples/`; `records=N` makes a sheet of N generated
    records instead. On the real platform pass `sheet_id=` to name the sheet to work on.
    """
    env = os.environ if env is None else env
    if records is not None and (
        isinstance(records, bool) or not isinstance(records, int) or records < 0
    ):
        raise ValueError(f"records must be a non-negative integer or None, got {records!r}")
    if any(env.get(name) for name in KEY_VARIABLES):
        return Connection(Client.from_env(env), sheet_id=sheet_id)

    from splitkit.server import EmbeddedServer

    server = EmbeddedServer(
        db_path=db_path,
        sample=None if records is not None else sample,
        records=records,
    )
    server.start()
    try:
        client = Client(server.url, server.token, environment_id=server.environment_id)
    except BaseException:
        server.stop()
        raise
    return Connection(client, server=server, sheet_id=sheet_id or server.sheet_id)
