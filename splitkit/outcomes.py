"""The outcome frame: one row per part, what dispatch writes and the later stages read.

:data:`OUTCOME_COLUMNS` and :data:`OUTCOME_DTYPES` are its schema,
:func:`empty_outcomes` builds an empty one, and :func:`frame_parent_id` tells
which parent job a frame (an outcome frame or a summary) describes, so that a
frame cannot settle another parent. The status spellings an outcome or a job
may carry are named here too.

The next stages: :mod:`splitkit.summary` (``summarize``, ``counts_match``) and
:mod:`splitkit.settlement` (``settle``, ``asettle``, ``settle_decision``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from splitkit.statuses import JOB_TERMINAL, OutcomeStatus, spellings

__all__ = [
    "COMPLETED",
    "COST_COLUMNS",
    "OPTIONAL_OUTCOME_DTYPES",
    "OUTCOME_COLUMNS",
    "OUTCOME_DTYPES",
    "OUTCOME_STATUSES",
    "TERMINAL_JOB_STATUSES",
    "empty_outcomes",
    "frame_parent_id",
]

OUTCOME_COLUMNS = [
    "part",
    "job_id",
    "status",
    "records",
    "attempts",
    "started_at",
    "finished_at",
    "duration_s",
    "error",
    "message",
]
#: The statuses of an outcome row. ``pending`` and ``running`` have not ended.
OUTCOME_STATUSES = tuple(status.value for status in OutcomeStatus)
#: Outcome columns and their dtypes. Strings use pandas' ``str`` dtype (what
#: pandas infers from Python strings), so a missing error or message is NaN.
OUTCOME_DTYPES: dict[str, Any] = {
    "part": "int64",
    "job_id": "str",
    "status": "str",
    "records": "int64",
    "attempts": "int64",
    "started_at": "datetime64[us, UTC]",
    "finished_at": "datetime64[us, UTC]",
    "duration_s": "float64",
    "error": "str",
    "message": "str",
}
#: Columns dispatch may add. ``parent_id`` (the parent job of every row, also kept in
#: ``frame.attrs["parent_id"]``) is read by :func:`summarize` and :func:`settle`.
#: The :data:`COST_COLUMNS` say what a part cost (``splitkit.engine.memory``):
#: ``page_bytes``, its records page as received (NA: never fetched); ``handler_s``, the
#: handler's last call (NaN: not called); ``peak_alloc_bytes``, that call's peak Python
#: allocation, with ``dispatch(measure_memory=True)``, on a sample of parts (part 0 and
#: every 8th up to part 120, in-process executors, one at a time), NA elsewhere.
OPTIONAL_OUTCOME_DTYPES: dict[str, Any] = {
    "worker": "Int64",
    "traceback": "str",
    "parent_id": "str",
    "dask_worker": "str",  # the Dask worker's address (DaskExecutor runs only)
    "page_bytes": "Int64",
    "handler_s": "float64",
    "peak_alloc_bytes": "Int64",
}
#: What a part cost: dispatch writes them for every part (NA where not measured).
COST_COLUMNS = ("page_bytes", "handler_s", "peak_alloc_bytes")

#: Job statuses after which nothing changes (Flatfile spells them this way).
TERMINAL_JOB_STATUSES = JOB_TERMINAL
#: Spellings of "completed" in outcomes and payloads (the wire says ``complete``).
COMPLETED = spellings(OutcomeStatus.COMPLETED)


def empty_outcomes(*, include_optional: bool = False) -> pd.DataFrame:
    """An outcome frame with no rows and the right dtypes.

    ``include_optional`` adds the columns that dispatch may write: ``worker``,
    ``traceback``, ``parent_id``, ``dask_worker`` and the :data:`COST_COLUMNS`.

    Example::

        >>> empty_outcomes().dtypes["started_at"]
        datetime64[us, UTC]
    """
    dtypes = dict(OUTCOME_DTYPES)
    if include_optional:
        dtypes.update(OPTIONAL_OUTCOME_DTYPES)
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})


# --- the parent a frame belongs to ---------------------------------------------------------


def frame_parent_id(frame: pd.DataFrame) -> str | None:
    """The id of the parent job an outcome or summary frame describes, or None if unknown.

    dispatch writes it twice, so that it survives the usual pandas steps:

    - ``frame.attrs["parent_id"]``: kept by filtering, sorting, column selection,
      ``copy``, ``astype``, ``pd.concat`` of frames of one parent and pickling;
      dropped by ``merge`` and by ``pd.concat`` with a frame of other attrs;
    - a ``parent_id`` column: kept by ``merge``, ``concat`` and CSV round trips;
      dropped when the columns are selected without it.

    Either one is enough. A frame built by hand, or a summary of a bare
    ``job:parts-completed`` payload, has neither: it is None, and settle then
    relies on comparing the counts with the server's.

    Raises ``ValueError`` when the frame names more than one parent (rows of two
    runs concatenated): its counts would describe no single parent.

    Example::

        >>> frame = empty_outcomes()
        >>> frame.attrs["parent_id"] = "us_jb_1"
        >>> frame_parent_id(frame), frame_parent_id(empty_outcomes())
        ('us_jb_1', None)
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected an outcome or summary DataFrame, got {type(frame).__name__}")
    ids: set[str] = set()
    attr = frame.attrs.get("parent_id")
    if attr is not None:
        if not isinstance(attr, str) or not attr:
            raise ValueError(f"frame.attrs['parent_id'] must be a job id string, got {attr!r}")
        ids.add(attr)
    if "parent_id" in frame.columns:
        ids.update(str(value) for value in frame["parent_id"].dropna().unique())
    if len(ids) > 1:
        raise ValueError(
            f"the frame mixes parts of {len(ids)} parents ({', '.join(sorted(ids))}); "
            "use the rows of one parent, e.g. frame[frame['parent_id'] == parent_id]"
        )
    return next(iter(ids), None)
