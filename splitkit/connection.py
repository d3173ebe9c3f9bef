"""`connect()`: one call to a working client, on the real platform or the embedded server.

With `FLATFILE_API_KEY` (or `FLATFILE_BEARER_TOKEN`) set, the client talks to Flatfile
(`FLATFILE_API_URL`, `FLATFILE_ENVIRONMENT_ID` as Flatfile's SDKs read them). Without a key,
the embedded server starts in a background thread with a sample sheet, so everything runs
offline. This module sits above `splitkit.api` and `splitkit.server`, which never meet.
"""

from __future__ import annotations

import os
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from splitkit._checks import instance_of, non_empty_str, non_negative_int
from splitkit.api import Client, ClientConfig

KEY_VARIABLES = ("FLATFILE_API_KEY", "FLATFILE_BEARER_TOKEN")


def _stop(server: Any) -> None:
    """Stop the embedded server, if any. Holds no reference to the client or Connection."""
    if server is not None:
        server.stop()


@dataclass
class Connection:
    """A client, and the embedded server behind it when there is one.

    The server runs as long as the client is referenced, through the Connection or not:
    `client = connect().client` keeps working.
    `close()` (or leaving a `with` block) closes the client and stops the server,
    removing its temporary database; it is idempotent. A connection that is never
    closed is cleaned up once its client is referenced no more (when it is
    garbage-collected), or at interpreter exit.
    """

    client: Client
    server: Any = field(default=None, repr=False)  # EmbeddedServer, when embedded
    sheet_id: str | None = None

    def __post_init__(self) -> None:
        instance_of("client", self.client, Client, "a splitkit Client")
        # The server's lifetime is the client's: the finalizer hangs on the client (not on
        # this Connection, which `connect().client` drops at once) and holds only the server.
        self._finalizer = weakref.finalize(self.client, _stop, self.server)

    @property
    def embedded(self) -> bool:
        return self.server is not None

    @property
    def config(self) -> ClientConfig:
        return self.client.config

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """Close the client and stop the embedded server; a second call does nothing."""
        try:
            self.client.close()
        finally:
            self._finalizer()

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
    simulate: Any = None,
) -> Connection:
    """A client for the real platform when a key is set in `env` (default: `os.environ`),
    else for a freshly started embedded server holding a sample sheet.

    `sample` names a packaged sample (see `data/samples/README.md`); `records=N` makes a
    sheet of N generated records instead. On the real platform pass `sheet_id=` to name the
    sheet to work on. `simulate` (embedded server only) makes it imitate a platform: a
    profile name such as "flatfile", a profile JSON path or a `SimProfile` (docs/simulator.md).
    """
    env = os.environ if env is None else env
    if not isinstance(env, Mapping):
        raise TypeError(f"env must be a mapping like os.environ or None, got {type(env).__name__}")
    if records is not None:
        records = non_negative_int("records", records)
    if sample is not None:
        non_empty_str("sample", sample, what="a sample name like 'contacts' or None")
    if sheet_id is not None:
        non_empty_str("sheet_id", sheet_id, what="a sheet id string or None")
    decided_by = next((name for name in KEY_VARIABLES if env.get(name)), None)
    if decided_by is not None:
        if simulate is not None:
            raise ValueError(
                f"simulate= is for the embedded server, but {decided_by} is set, so connect() "
                "talks to Flatfile; unset it (or call connect(env={}, simulate=...))"
            )
        client = Client.from_env(env)
        if sheet_id is None:
            # Say what chose the real platform: a stray key in the environment otherwise
            # surfaces later as "sheet_id must be a non-empty string".
            warnings.warn(
                f"connect() talks to Flatfile at {client.config.base_url} because {decided_by} "
                "is set, and no sheet_id was given: conn.sheet_id is None; pass "
                "connect(sheet_id='us_sh_...') to name the sheet to work on, or unset "
                f"{decided_by} (or call connect(env={{}})) to use the embedded server",
                UserWarning,
                stacklevel=2,
            )
        return Connection(client, sheet_id=sheet_id)

    from splitkit.server import EmbeddedServer

    server = EmbeddedServer(
        db_path=db_path,
        sample=None if records is not None else sample,
        records=records,
        simulate=simulate,
    )
    server.start()
    try:
        client = Client(server.url, server.token, environment_id=server.environment_id)
    except BaseException:
        server.stop()
        raise
    return Connection(client, server=server, sheet_id=sheet_id or server.sheet_id)
