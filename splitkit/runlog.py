"""The run history: every dispatch's parameters, summary and outcomes, kept on disk.

`dispatch()` records each run when it ends (`RunRecorder`, a run observer) as two Parquet
files in a project folder, so runs can be compared across kernel restarts and days:

- ``<run_id>.run.parquet``: one row, the run (:data:`HISTORY_COLUMNS`);
- ``<run_id>.outcomes.parquet``: its outcome frame (:func:`run_outcomes` reads it back).

The folder is, in this order: ``dispatch(history=<folder>)``; the ``SPLITKIT_HISTORY``
environment variable (a folder, or ``off`` to keep nothing by default);
``.splitkit/runs`` under the current directory. ``dispatch(history=False)`` keeps nothing.
Each file is written whole under a temporary name and then renamed, so a reader in
another process never sees half a run. Run ids sort by start time.

:func:`history` returns one row per run, oldest first. A run that could not be recorded
(a read-only folder, a full disk) is logged, never an error of the run.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

from splitkit.summary import summarize

__all__ = [
    "DISPATCH",
    "HISTORY_COLUMNS",
    "HISTORY_ENV",
    "TUNE_PROBE",
    "RunRecorder",
    "history",
    "history_folder",
]

log = logging.getLogger("splitkit.history")

#: The environment variable naming the history folder (``off``: none by default).
HISTORY_ENV = "SPLITKIT_HISTORY"
DEFAULT_FOLDER = Path(".splitkit") / "runs"
DISPATCH = "dispatch"
TUNE_PROBE = "tune-probe"
PURPOSES = (DISPATCH, TUNE_PROBE)
_OFF = {"off", "0", "false", "no", "none", ""}
RUN_SUFFIX = ".run.parquet"
OUTCOMES_SUFFIX = ".outcomes.parquet"

#: One row per run. ``wall_s`` is the whole run (listing the parts, claim, every part) as
#: the dispatching process saw it; ``parts_wall_s`` the parts' own span (first start to
#: last end, ``summarize``'s ``wall_s``). ``batch_size`` is the plan's, else the largest
#: part. The memory columns are the largest over the run's parts (NA: none measured).
#: ``purpose`` says what the run was for: :data:`DISPATCH` (a job's run) or
#: :data:`TUNE_PROBE` (a `tune()` probe on a sample of the sheet).
HISTORY_COLUMNS = [
    "run_id",
    "purpose",
    "started_at",
    "finished_at",
    "server",
    "parent_id",
    "batch_size",
    "concurrency",
    "executor",
    "timeout_s",
    "parts",
    "records",
    "completed",
    "failed",
    "canceled",
    "pending",
    "wall_s",
    "parts_wall_s",
    "records_per_s",
    "duration_p50_s",
    "duration_p95_s",
    "page_bytes_max",
    "peak_alloc_bytes_max",
    "host",
    "pid",
]


def history_folder(folder: bool | str | os.PathLike[str] | None = True) -> Path | None:
    """Where runs are kept: `folder` if a path, else ``$SPLITKIT_HISTORY``, else
    ``.splitkit/runs`` under the current directory; None when nothing is kept
    (``folder=False``, or ``SPLITKIT_HISTORY=off`` for the default)."""
    if folder is False:
        return None
    if folder is True or folder is None:
        env = os.environ.get(HISTORY_ENV, "").strip()
        if env:  # set but empty: as if unset, not "the current directory"
            return None if env.strip().lower() in _OFF else Path(env).expanduser().absolute()
        return (Path.cwd() / DEFAULT_FOLDER).absolute()
    if isinstance(folder, str | os.PathLike):
        return Path(folder).expanduser().absolute()
    raise TypeError(f"history must be True, False or a folder path, got {folder!r}")


def _safe_url(url: str) -> str:
    """The server's URL without user or password (never written to disk)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class RunRecorder:
    """A run observer that writes the run to the history folder when it ends."""

    def __init__(
        self,
        folder: Path,
        *,
        server: str,
        concurrency: int,
        executor: str,
        timeout_s: float | None,
        batch_size: int | None,
        purpose: str = DISPATCH,
    ) -> None:
        self.folder = folder
        self.purpose = _purpose(purpose)
        self.server = _safe_url(server)
        self.concurrency = concurrency
        self.executor = executor
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.started_at = datetime.now(UTC)
        self.run_id: str | None = None

    def run_started(self, state: Any) -> None:
        self.started_at = datetime.now(UTC)

    def part_changed(self, state: Any) -> None:
        """Nothing: the run is written once, at its end."""

    def run_finished(self, state: Any) -> None:
        try:
            self.run_id = self._write(state)
        except Exception as exc:  # the run itself went fine; its record is a convenience
            log.warning("could not record the run in %s: %s", self.folder, exc)

    def _write(self, state: Any) -> str:
        outcomes: pd.DataFrame = state.frame()
        summary = summarize(outcomes).iloc[0]
        stamp = self.started_at.strftime("%Y%m%dT%H%M%S%f")
        run_id = f"{stamp}-{os.getpid()}-{secrets.token_hex(3)}"
        records = outcomes["records"]
        batch = self.batch_size or (int(records.max()) if len(records) else 0)
        row = {
            "run_id": run_id,
            "purpose": self.purpose,
            "started_at": pd.Timestamp(self.started_at),
            "finished_at": pd.Timestamp(datetime.now(UTC)),
            "server": self.server,
            "parent_id": state.parent_id,
            "batch_size": batch,
            "concurrency": self.concurrency,
            "executor": self.executor,
            "timeout_s": np.nan if self.timeout_s is None else float(self.timeout_s),
            "parts": len(outcomes),
            "records": int(records.sum()),
            "completed": int(summary["completed"]),
            "failed": int(summary["failed"]),
            "canceled": int(summary["canceled"]),
            "pending": int(summary["pending"]),
            "wall_s": float(state.elapsed_s),
            "parts_wall_s": float(summary["wall_s"]),
            "records_per_s": float(summary["records_per_s"]),
            "duration_p50_s": float(summary["duration_p50_s"]),
            "duration_p95_s": float(summary["duration_p95_s"]),
            "page_bytes_max": _largest(outcomes, "page_bytes"),
            "peak_alloc_bytes_max": _largest(outcomes, "peak_alloc_bytes"),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_parquet(outcomes, self.folder / f"{run_id}{OUTCOMES_SUFFIX}")
        # The run row last: a reader lists runs by it, so its outcomes are already there.
        _write_parquet(_typed(pd.DataFrame([row])), self.folder / f"{run_id}{RUN_SUFFIX}")
        return run_id


def _largest(outcomes: pd.DataFrame, column: str) -> Any:
    if column not in outcomes.columns or outcomes[column].isna().all():
        return pd.NA
    return int(outcomes[column].max())


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The history's dtypes, whatever a row (or no row) holds."""
    frame = frame.reindex(columns=HISTORY_COLUMNS)
    ints = ["batch_size", "concurrency", "parts", "records", "completed", "failed"]
    ints += ["canceled", "pending", "pid"]
    for column in ints:
        frame[column] = frame[column].astype("int64")
    for column in ("page_bytes_max", "peak_alloc_bytes_max"):
        frame[column] = frame[column].astype("Int64")
    for column in ("started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    # Runs recorded before purposes were kept were all dispatches (tune kept none).
    frame["purpose"] = frame["purpose"].astype(object).fillna(DISPATCH)
    for column in ("run_id", "purpose", "server", "parent_id", "executor", "host"):
        frame[column] = frame[column].astype("str")
    return frame


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        frame.to_parquet(temporary, index=False)
        os.replace(temporary, path)  # atomic: readers see the whole file or none
    finally:
        temporary.unlink(missing_ok=True)


def history(
    folder: str | os.PathLike[str] | None = None, *, purpose: str | None = None
) -> pd.DataFrame:
    """Past runs, one row per run, oldest first (:data:`HISTORY_COLUMNS`).

    ``purpose``: only the runs of that purpose (``"dispatch"``: the jobs' runs,
    ``"tune-probe"``: `tune()`'s probes); None (default) for all.

    ``folder`` defaults to where `dispatch()` keeps runs (``$SPLITKIT_HISTORY``, else
    ``.splitkit/runs`` under the current directory). A folder that does not exist (yet)
    has no runs: the frame is empty, with the same columns. Each run's outcome frame is
    read back with ``splitkit.runlog.run_outcomes(run_id)``.

    Example::

        >>> import splitkit as sk
        >>> sk.history("no-such-folder").columns[:3].tolist()
        ['run_id', 'started_at', 'finished_at']
    """
    wanted = None if purpose is None else _purpose(purpose)
    where = _read_folder(folder)
    files = sorted(where.glob(f"*{RUN_SUFFIX}")) if where is not None and where.is_dir() else []
    if not files:
        return _typed(pd.DataFrame(columns=HISTORY_COLUMNS))
    frame = pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)
    frame = _typed(frame).sort_values(["started_at", "run_id"], kind="stable")
    if wanted is not None:
        frame = frame[frame["purpose"] == wanted]
    return frame.reset_index(drop=True)


def run_outcomes(run_id: str, folder: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The outcome frame of run `run_id` (a ``run_id`` of :func:`history`)."""
    if not isinstance(run_id, str) or not run_id or "/" in run_id or "\\" in run_id:
        raise ValueError(f"run_id must be a run id from history(), got {run_id!r}")
    where = _read_folder(folder)
    path = (where or Path(".")) / f"{run_id}{OUTCOMES_SUFFIX}"
    if not path.is_file():
        raise FileNotFoundError(f"no run {run_id!r} in {where}: see history()['run_id']")
    return pd.read_parquet(path)


def _purpose(purpose: object) -> str:
    if purpose not in PURPOSES:
        raise ValueError(
            f"purpose must be one of {', '.join(map(repr, PURPOSES))}, got {purpose!r}"
        )
    return str(purpose)


def _read_folder(folder: str | os.PathLike[str] | None) -> Path | None:
    if folder is not None and not isinstance(folder, str | os.PathLike):
        raise TypeError(f"folder must be a path or None, got {folder!r}")
    return history_folder(True if folder is None else folder)
