"""The `Part` handed to a user's handler: one part job, its place in the parent, its records."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import pandas as pd

from splitkit.api import records_frame

ProgressSink = Callable[[str, float, str | None], None]


class RecordsSource(Protocol):
    """Records read where the handler runs (a Dask worker reads its own page)."""

    def read(self) -> bytes: ...


class Part:
    """One part of a split parent job, as a handler sees it.

    `records` is this part's page of the sheet as a DataFrame (columns `_id`, `_valid`,
    then one per field). It is parsed on first use, in the process where the handler runs:
    a handler that never reads it pays nothing, and a process worker parses it there
    rather than receiving a pickled frame. On Dask the records are a source (`RecordsSource`)
    that the worker reads from the API itself: they never pass through the coordinator.

    Call `progress()` to report how far the handler is; it is forwarded to the part job on
    the server (throttled) when the handler runs in this process, and ignored where it
    cannot be (a process or Dask worker).
    """

    def __init__(
        self,
        job_id: str,
        parent_id: str,
        index: int,
        part_data: Mapping[str, Any],
        records: pd.DataFrame | bytes | RecordsSource,
        attempt: int = 1,
        sink: ProgressSink | None = None,
    ) -> None:
        self.job_id = job_id
        self.parent_id = parent_id
        self.index = index
        self.part_data = part_data
        self.attempt = attempt
        self._records = records
        self._sink = sink

    @property
    def records(self) -> pd.DataFrame:
        self.load()
        if isinstance(self._records, bytes):
            self._records = records_frame(self._records)
        assert isinstance(self._records, pd.DataFrame)
        return self._records

    def load(self) -> None:
        """Read the records from their source if they are not here yet (unparsed)."""
        if not isinstance(self._records, bytes | pd.DataFrame):
            self._records = self._records.read()

    def progress(self, fraction: float, info: str | None = None) -> None:
        """Report progress as a fraction in [0, 1], with an optional short message."""
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise TypeError(f"fraction must be a number between 0 and 1, got {fraction!r}")
        if not 0.0 <= float(fraction) <= 1.0:
            raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
        if self._sink is not None:
            self._sink(self.job_id, float(fraction), info)

    def __getstate__(self) -> dict[str, Any]:
        # The sink talks to this process's event loop; a copy in another process drops it.
        state = dict(self.__dict__)
        state["_sink"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (
            f"Part(index={self.index}, job_id={self.job_id!r}, parent_id={self.parent_id!r}, "
            f"attempt={self.attempt})"
        )
