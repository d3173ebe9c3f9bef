"""The live state of a run: one row per part, and running totals kept as parts change.

Totals are kept incrementally (O(1) per change) so observers (progress bar, notebook
panel) never rebuild a DataFrame on the hot path. The outcome frame is built on demand.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from splitkit.outcomes import (
    COST_COLUMNS,
    OPTIONAL_OUTCOME_DTYPES,
    OUTCOME_COLUMNS,
    OUTCOME_DTYPES,
    empty_outcomes,
)
from splitkit.statuses import ENDED_OUTCOMES, OutcomeStatus

# Plain strings (not enum members): they key the tallies observers read and print.
STATUSES = tuple(status.value for status in OutcomeStatus)
ENDED = ENDED_OUTCOMES


@dataclass(slots=True)  # one per part: no per-row __dict__ (100,000 rows)
class PartRow:
    part: int
    job_id: str
    records: int
    status: str = "pending"
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    message: str | None = None
    traceback: str | None = None
    worker: int | None = None
    previous_run: bool = False
    placed: str | None = None  # the Dask worker that ran it: column `dask_worker`
    page_bytes: int | None = None
    handler_s: float | None = None
    peak_alloc_bytes: int | None = None

    def as_dict(self) -> dict[str, Any]:
        placed = {"dask_worker": self.placed} if self.placed is not None else {}
        duration = (
            (self.finished_at - self.started_at).total_seconds()
            if self.started_at is not None and self.finished_at is not None
            else None
        )
        return {
            "part": self.part,
            "job_id": self.job_id,
            "status": self.status,
            "records": self.records,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": duration,
            "error": self.error,
            "message": self.message,
            "traceback": self.traceback,
            "worker": self.worker,
            "previous_run": self.previous_run,
            **placed,
            "page_bytes": self.page_bytes,
            "handler_s": self.handler_s,
            "peak_alloc_bytes": self.peak_alloc_bytes,
        }


@dataclass
class RunState:
    """Every part of the run and the running totals. Mutated only on the engine's loop."""

    parent_id: str
    rows: list[PartRow] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    records_total: int = 0
    records_done: int = 0
    records_done_before: int = 0  # by earlier runs on the same parent: not this run's throughput
    last_error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    workers: int | None = None  # the executor's workers, when it has a count (Dask)
    memory_traced: bool = False  # tracemalloc was on during the run: its handlers ran slower
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, rows: Iterable[PartRow]) -> None:
        with self._lock:
            for row in rows:
                self.rows.append(row)
                self.counts[row.status] += 1
                self.records_total += row.records
                if row.status == "completed":
                    self.records_done += row.records
                    self.records_done_before += row.records

    def move(self, row: PartRow, status: str, **changes: Any) -> None:
        """Change a part's status (and any other fields) and keep the totals right."""
        with self._lock:
            self.counts[row.status] -= 1
            self.counts[status] += 1
            row.status = status
            for name, value in changes.items():
                setattr(row, name, value)
            if status == "completed":
                self.records_done += row.records
            if status == "failed" and row.error:
                self.last_error = f"part {row.part}: {row.error}"

    @property
    def running(self) -> int:
        return self.counts["running"]

    @property
    def ended(self) -> int:
        return sum(self.counts[s] for s in ENDED)

    @property
    def records_per_s(self) -> float:
        """This run's throughput, so far."""
        return (self.records_done - self.records_done_before) / max(self.elapsed_s, 1e-9)

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def tally(self) -> dict[str, int]:
        with self._lock:
            return {s: self.counts[s] for s in STATUSES}

    def frame(self) -> pd.DataFrame:
        """The outcome frame: one row per part, in part order.

        The parent's id is in ``frame.attrs["parent_id"]`` and in a ``parent_id``
        column, so that settle can refuse the frame for another parent whichever
        of the two a user's pandas steps kept (see ``splitkit.outcomes.frame_parent_id``).
        """
        with self._lock:
            data = [row.as_dict() for row in self.rows]
        if not data:
            frame = empty_outcomes()
            frame["parent_id"] = pd.Series(dtype="str")
        else:
            frame = pd.DataFrame.from_records(data)
            for column in ("started_at", "finished_at"):
                frame[column] = pd.to_datetime(frame[column], utc=True)
            frame["duration_s"] = frame["duration_s"].astype("float64")
            frame = frame.sort_values("part", kind="stable").reset_index(drop=True)
            # The schema's dtypes whatever the rows hold (no part started: all-None columns).
            frame = frame.astype(OUTCOME_DTYPES)
            frame = frame.astype({c: OPTIONAL_OUTCOME_DTYPES[c] for c in COST_COLUMNS})
            if "dask_worker" in frame.columns or self.workers is not None:
                # A Dask run has the column even when no part reached a worker.
                placed = frame["dask_worker"] if "dask_worker" in frame.columns else None
                frame["dask_worker"] = pd.Series(placed, index=frame.index, dtype="str")
            frame["parent_id"] = pd.Series([self.parent_id] * len(frame), dtype="str")
            extra = [c for c in frame.columns if c not in OUTCOME_COLUMNS]
            frame = frame[[*OUTCOME_COLUMNS, *extra]]
        frame.attrs["parent_id"] = self.parent_id
        frame.attrs["memory_traced"] = self.memory_traced
        return frame


def utcnow() -> datetime:
    return datetime.now(UTC)
