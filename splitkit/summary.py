"""The summary: an outcome frame, or a ``job:parts-completed`` payload, as one row.

:func:`summarize` reduces outcomes, or a ``job:parts-completed`` payload, to one
row of counts, durations and throughput (:data:`SUMMARY_COLUMNS`; the counts are
the payload's: total, completed, failed, canceled). :func:`counts_match` compares
the counts of a summary with a payload's. A summary carries the id of its parent
job, as an outcome frame does (:func:`~splitkit.outcomes.frame_parent_id`).

Example::

    >>> counts = {"total": 3, "completed": 2, "failed": 1, "canceled": 0}
    >>> summarize(parts_completed={"parts": counts})[["total", "completed", "failed"]]
         total  completed  failed
    run
    0        3          2       1
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from splitkit._checks import non_empty_str, non_negative_int
from splitkit.outcomes import OUTCOME_STATUSES, frame_parent_id
from splitkit.statuses import SUMMARY_COUNTS, summary_bucket

__all__ = ["SUMMARY_COLUMNS", "counts_match", "summarize"]

SUMMARY_COLUMNS = [
    "parent_id",
    "total",
    "completed",
    "failed",
    "canceled",
    "pending",
    "records_processed",
    "duration_p50_s",
    "duration_p95_s",
    "duration_max_s",
    "wall_s",
    "parts_per_s",
    "records_per_s",
]


def _event_parent_id(parts_completed: object) -> str | None:
    """The parent id in a whole ``job:parts-completed`` event (``context.jobId``), if given one."""
    context: object = getattr(parts_completed, "context", None)
    if context is None and isinstance(parts_completed, Mapping):
        context = parts_completed.get("context")
    job_id = context.get("jobId") if isinstance(context, Mapping) else None
    return job_id if isinstance(job_id, str) and job_id else None


def _buckets(counts: Mapping[Any, int], where: str) -> dict[str, int]:
    """Add up status counts into completed / failed / canceled / pending."""
    totals = {bucket.value: 0 for bucket in SUMMARY_COUNTS}
    unknown = []
    for status, count in counts.items():
        bucket = summary_bucket(status)
        if bucket is None:
            unknown.append(status)
        else:
            totals[bucket] += int(count)
    if unknown:
        raise ValueError(
            f"{where} has unknown status value(s) {sorted(map(repr, unknown))}; "
            f"expected one of {list(OUTCOME_STATUSES)} (or Flatfile's job statuses)"
        )
    return totals


def _utc(column: pd.Series) -> pd.Series:
    # Outcomes typed by hand may hold strings or naive datetimes; compare as UTC.
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column
    return pd.to_datetime(column, utc=True)


def _from_outcomes(outcomes: pd.DataFrame) -> dict[str, Any]:
    missing = [c for c in ("status", "records") if c not in outcomes.columns]
    if missing:
        raise ValueError(
            f"outcomes is missing column(s) {missing}; see splitkit.outcomes.OUTCOME_COLUMNS"
        )
    status = outcomes["status"]
    # Count each distinct spelling once, then bucket: O(distinct) Python work, not O(rows).
    row = _buckets(status.value_counts(dropna=False).to_dict(), "outcomes['status']")
    row["total"] = len(outcomes)

    bucket = status.map({s: summary_bucket(s) for s in status.unique()})
    completed = (bucket == "completed").to_numpy()
    ended = (bucket != "pending").to_numpy()
    records = pd.to_numeric(outcomes["records"], errors="coerce").to_numpy(dtype=float)
    row["records_processed"] = int(np.nansum(records[completed]))

    # Timing is this run's: parts ended by an earlier run (previous_run) count above,
    # but their durations and times belong to that run.
    this_run = _this_run(outcomes)
    row["ended_this_run"] = int((ended & this_run).sum())
    row["records_this_run"] = int(np.nansum(records[completed & this_run]))

    durations = np.array([], dtype=float)
    if "duration_s" in outcomes.columns:
        values = pd.to_numeric(outcomes["duration_s"], errors="coerce").to_numpy(dtype=float)
        durations = values[ended & this_run & np.isfinite(values)]
    if durations.size:
        p50, p95 = np.percentile(durations, [50, 95])
        row |= {"duration_p50_s": p50, "duration_p95_s": p95, "duration_max_s": durations.max()}

    if {"started_at", "finished_at"} <= set(outcomes.columns) and this_run.any():
        started = _utc(outcomes["started_at"])[this_run]
        finished = _utc(outcomes["finished_at"])[this_run]
        first, last = started.min(), finished.max()
        if pd.notna(first) and pd.notna(last):
            row["wall_s"] = (last - first).total_seconds()
    return row


def _this_run(outcomes: pd.DataFrame) -> np.ndarray:
    """Which rows this run ended or still has to: all but ``previous_run`` ones."""
    if "previous_run" not in outcomes.columns:
        return np.ones(len(outcomes), dtype=bool)
    try:
        previous = outcomes["previous_run"].astype("boolean").fillna(False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "outcomes['previous_run'] must hold True, False or missing values, "
            f"got {outcomes['previous_run'].dtype} values"
        ) from exc
    return ~previous.to_numpy(dtype=bool)


def _payload(parts_completed: object) -> Mapping[str, Any]:
    """The payload of a ``job:parts-completed`` event, whatever form it was handed in."""
    payload: object = parts_completed
    if not isinstance(payload, Mapping) and hasattr(payload, "payload"):
        payload = payload.payload  # an Event model
    if isinstance(payload, Mapping) and "parts" not in payload and "payload" in payload:
        payload = payload["payload"]  # a whole event dict
    if not isinstance(payload, Mapping):
        raise TypeError(
            "parts_completed must be a job:parts-completed event or its payload (a dict), "
            f"got {type(parts_completed).__name__}"
        )
    if "parts" not in payload:
        raise ValueError(
            "parts_completed payload has no 'parts': expected "
            '{"parts": {"total", "completed", "failed", "canceled"}} or '
            '{"parts": [{"partId", "status", "completedAt"}, ...]}'
        )
    return payload


def _from_payload(parts_completed: object) -> dict[str, Any]:
    parts = _payload(parts_completed)["parts"]
    if isinstance(parts, Mapping):
        # The multi-part guide's shape. failed/canceled are read as 0 when absent
        # because the documented examples are not consistent about listing zeros.
        canceled = parts.get("canceled", parts.get("cancelled", 0))
        row = {
            "completed": non_negative_int("parts['completed']", parts.get("completed", 0)),
            "failed": non_negative_int("parts['failed']", parts.get("failed", 0)),
            "canceled": non_negative_int("parts['canceled']", canceled),
        }
        ended = row["completed"] + row["failed"] + row["canceled"]
        total = non_negative_int("parts['total']", parts.get("total", ended))
        if ended > total:
            raise ValueError(
                f"parts_completed counts are inconsistent: completed + failed + canceled "
                f"= {ended} is more than total = {total}"
            )
        return row | {"total": total, "pending": total - ended}
    if isinstance(parts, Sequence) and not isinstance(parts, str | bytes):
        # The events reference's shape: one entry per part.
        statuses: Counter[Any] = Counter()
        for index, entry in enumerate(parts):
            if not isinstance(entry, Mapping) or "status" not in entry:
                raise ValueError(
                    f"parts_completed parts[{index}] must be a dict with a 'status', got {entry!r}"
                )
            statuses[entry["status"]] += 1
        return _buckets(statuses, "parts_completed parts") | {"total": len(parts)}
    raise ValueError(
        f"parts_completed 'parts' must be a dict of counts or a list of parts, got {parts!r}"
    )


def summarize(
    outcomes: pd.DataFrame | None = None,
    *,
    parts_completed: object | None = None,
    parent_id: str | None = None,
) -> pd.DataFrame:
    """One row: counts by status, records processed, durations and throughput.

    Give one of:

    ``outcomes``
        An outcome frame (needs ``status`` and ``records``; ``duration_s``,
        ``started_at`` and ``finished_at`` feed the timing columns and are
        NaN-filled when absent).
    ``parts_completed``
        A ``job:parts-completed`` event: its payload dict, the whole event dict,
        or an event object with a ``.payload``, in either documented shape,
        ``{"parts": {"total", "completed", "failed", "canceled"}}`` or
        ``{"parts": [{"partId", "status", "completedAt"}, ...]}``. The payload
        has no records nor start times, so ``records_processed`` is NA and the
        timing columns are NaN.

    ``parent_id`` names the parent job the counts belong to. It is read from
    the outcome frame (see :func:`frame_parent_id`) or from a whole event's
    ``context.jobId``; give it to label a bare payload or a hand-made frame. A
    ``parent_id`` that contradicts the frame's or the event's is refused.

    Columns (:data:`SUMMARY_COLUMNS`):

    - ``parent_id``: the parent job's id, or missing (NaN) when unknown; also
      in ``summary.attrs["parent_id"]`` when known. :func:`settle` refuses a
      summary of another parent;
    - ``total``, ``completed``, ``failed``, ``canceled``: as in the payload;
      ``pending`` counts parts that have not ended (pending or running);
    - ``records_processed``: records of completed parts (nullable ``Int64``);
    - ``duration_p50_s``, ``duration_p95_s``, ``duration_max_s``: over the
      parts that ended with a known duration (retries included);
    - ``wall_s``: first ``started_at`` to last ``finished_at``;
    - ``parts_per_s``: ended parts per wall second; ``records_per_s``:
      records of completed parts per wall second.

    A resumed or retried run (``dispatch()`` on a parent some of whose parts
    an earlier run ended) has a ``previous_run`` column, True for those parts.
    The counts and ``records_processed`` take every row: they describe the
    parent, as ``job:parts-completed`` does. The timing columns (durations,
    ``wall_s``, ``parts_per_s``, ``records_per_s``) take only the rows with
    ``previous_run`` False: they describe this run's pace, which the hours
    between two runs would otherwise swamp. With no such row they are NaN.

    The index has one entry, ``0``, named ``run``; ``pd.concat`` summaries of
    several runs with ``keys=`` to compare them.

    Example::

        >>> summarize(parts_completed={"parts": [{"partId": "a", "status": "complete"},
        ...                                      {"partId": "b", "status": "failed"}]}
        ...           )[["total", "completed", "failed"]]
             total  completed  failed
        run
        0        2          1       1
    """
    if (outcomes is None) == (parts_completed is None):
        raise ValueError(
            "summarize needs exactly one of outcomes or parts_completed "
            "(use counts_match() to compare the two)"
        )
    if parent_id is not None:
        non_empty_str("parent_id", parent_id, what="a job id string or None")
    if outcomes is not None:
        if not isinstance(outcomes, pd.DataFrame):
            raise TypeError(f"outcomes must be a pandas DataFrame, got {type(outcomes).__name__}")
        row = _from_outcomes(outcomes)
        carried, where = frame_parent_id(outcomes), "the outcomes are"
    else:
        row = _from_payload(parts_completed)
        carried, where = _event_parent_id(parts_completed), "the event is"
    if parent_id is not None and carried is not None and carried != parent_id:
        raise ValueError(f"parent_id is {parent_id!r} but {where} of parent {carried!r}")
    parent = parent_id if parent_id is not None else carried

    wall = row.get("wall_s", np.nan)
    processed = row.get("records_processed")
    ended = row.get("ended_this_run", row["completed"] + row["failed"] + row["canceled"])
    processed_now = row.get("records_this_run", processed)
    rate_ok = np.isfinite(wall) and wall > 0
    data: dict[str, Any] = {
        "parent_id": pd.array([parent], dtype="str"),
        "total": np.int64(row["total"]),
        "completed": np.int64(row["completed"]),
        "failed": np.int64(row["failed"]),
        "canceled": np.int64(row["canceled"]),
        "pending": np.int64(row["pending"]),
        "records_processed": pd.array([processed], dtype="Int64"),
        "duration_p50_s": float(row.get("duration_p50_s", np.nan)),
        "duration_p95_s": float(row.get("duration_p95_s", np.nan)),
        "duration_max_s": float(row.get("duration_max_s", np.nan)),
        "wall_s": float(wall),
        "parts_per_s": ended / wall if rate_ok else np.nan,
        "records_per_s": (
            processed_now / wall if rate_ok and processed_now is not None else np.nan
        ),
    }
    summary = pd.DataFrame(data, index=pd.RangeIndex(1, name="run"))[SUMMARY_COLUMNS]
    if parent is not None:
        summary.attrs["parent_id"] = parent
    return summary


def counts_match(summary: pd.DataFrame, parts_completed: object) -> bool:
    """Whether a summary's counts equal those of a ``job:parts-completed`` payload.

    A cross-check between what dispatch saw and what the platform counted:
    ``counts_match(summarize(outcomes), event)``.
    """
    left = _summary_counts(summary)
    right = _summary_counts(summarize(parts_completed=parts_completed))
    return all(left[key] == right[key] for key in ("total", "completed", "failed", "canceled"))


def _summary_counts(frame: object) -> dict[str, int]:
    """The counts row of a summary frame, or of the summary of an outcome frame."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a summary or an outcome DataFrame, got {type(frame).__name__}")
    counts = ("total", "completed", "failed", "canceled", "pending")
    if "status" in frame.columns:
        frame = summarize(frame)
    elif not set(counts) <= set(frame.columns):
        raise ValueError(
            "expected a summary frame (columns total, completed, failed, canceled, pending) "
            "or an outcome frame (a status column)"
        )
    if len(frame) != 1:
        raise ValueError(f"a summary frame has exactly one row, got {len(frame)}")
    return {key: int(frame[key].iloc[0]) for key in counts}
