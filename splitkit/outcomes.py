"""Part outcomes, their summary, and settling the parent job.

Three stages of the pipeline, in order:

- the **outcome frame**: one row per part (:data:`OUTCOME_COLUMNS`), written by
  dispatch; :func:`empty_outcomes` gives its schema;
- the **summary**: :func:`summarize` reduces outcomes, or a
  ``job:parts-completed`` payload, to one row of counts, durations and
  throughput (the counts are the payload's: total, completed, failed, canceled);
- **settle**: :func:`settle` / :func:`asettle` complete the parent when every
  part completed and fail it otherwise, exactly once.

What settle does is decided by one pure function, :func:`settle_decision`,
and carried out by one generator of client calls (the way httpx writes its
auth flows) that a sync and an async loop both drive, so the two cannot drift.

Example::

    >>> summary = summarize(parts_completed={"parts": {"total": 3, "completed": 3,
    ...                                                 "failed": 0, "canceled": 0}})
    >>> settle_decision(summary)
    SettleDecision(action='complete', message='3 of 3 parts completed')
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "COMPLETED",
    "OPTIONAL_OUTCOME_DTYPES",
    "OUTCOME_COLUMNS",
    "OUTCOME_DTYPES",
    "OUTCOME_STATUSES",
    "SUMMARY_COLUMNS",
    "TERMINAL_JOB_STATUSES",
    "SettleDecision",
    "SettleResult",
    "asettle",
    "counts_match",
    "empty_outcomes",
    "settle",
    "settle_decision",
    "summarize",
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
OUTCOME_STATUSES = ("pending", "running", "completed", "failed", "canceled")
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
#: Columns dispatch may add; nothing here needs them.
OPTIONAL_OUTCOME_DTYPES: dict[str, Any] = {"worker": "Int64", "traceback": "str"}

#: Job statuses after which nothing changes (Flatfile spells them this way).
TERMINAL_JOB_STATUSES = frozenset({"complete", "failed", "canceled"})
#: Spellings of "completed" in outcomes and payloads (the wire says ``complete``).
COMPLETED = frozenset({"completed", "complete"})

# Every status spelling splitkit may meet, mapped to the summary bucket it counts in.
# Flatfile's not-yet-ended job statuses are all "pending" here.
_BUCKET = {
    "completed": "completed",
    "complete": "completed",
    "failed": "failed",
    "canceled": "canceled",
    "cancelled": "canceled",
    "pending": "pending",
    "running": "pending",
    "created": "pending",
    "planning": "pending",
    "scheduled": "pending",
    "ready": "pending",
    "executing": "pending",
    "waiting": "pending",
}

SUMMARY_COLUMNS = [
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


def empty_outcomes(*, include_optional: bool = False) -> pd.DataFrame:
    """An outcome frame with no rows and the right dtypes.

    ``include_optional`` adds the ``worker`` and ``traceback`` columns that
    dispatch may write.

    Example::

        >>> empty_outcomes().dtypes["started_at"]
        datetime64[us, UTC]
    """
    dtypes = dict(OUTCOME_DTYPES)
    if include_optional:
        dtypes.update(OPTIONAL_OUTCOME_DTYPES)
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})


# --- summary --------------------------------------------------------------------------------


def _buckets(counts: Mapping[Any, int], where: str) -> dict[str, int]:
    """Add up status counts into completed / failed / canceled / pending."""
    totals = dict.fromkeys(("completed", "failed", "canceled", "pending"), 0)
    unknown = []
    for status, count in counts.items():
        bucket = _BUCKET.get(str(status).lower()) if isinstance(status, str) else None
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

    bucket = status.str.lower().map(_BUCKET)
    completed = (bucket == "completed").to_numpy()
    records = pd.to_numeric(outcomes["records"], errors="coerce").to_numpy(dtype=float)
    row["records_processed"] = int(np.nansum(records[completed]))

    durations = np.array([], dtype=float)
    if "duration_s" in outcomes.columns:
        ended = (bucket != "pending").to_numpy()
        values = pd.to_numeric(outcomes["duration_s"], errors="coerce").to_numpy(dtype=float)
        durations = values[ended & np.isfinite(values)]
    if durations.size:
        p50, p95 = np.percentile(durations, [50, 95])
        row |= {"duration_p50_s": p50, "duration_p95_s": p95, "duration_max_s": durations.max()}

    if {"started_at", "finished_at"} <= set(outcomes.columns) and len(outcomes):
        first, last = _utc(outcomes["started_at"]).min(), _utc(outcomes["finished_at"]).max()
        if pd.notna(first) and pd.notna(last):
            row["wall_s"] = (last - first).total_seconds()
    return row


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


def _count(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{where} must be a non-negative integer, got {value!r}")
    return int(value)


def _from_payload(parts_completed: object) -> dict[str, Any]:
    parts = _payload(parts_completed)["parts"]
    if isinstance(parts, Mapping):
        # The multi-part guide's shape. failed/canceled are read as 0 when absent
        # because the documented examples are not consistent about listing zeros.
        canceled = parts.get("canceled", parts.get("cancelled", 0))
        row = {
            "completed": _count("parts['completed']", parts.get("completed", 0)),
            "failed": _count("parts['failed']", parts.get("failed", 0)),
            "canceled": _count("parts['canceled']", canceled),
        }
        ended = row["completed"] + row["failed"] + row["canceled"]
        total = _count("parts['total']", parts.get("total", ended))
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
    outcomes: pd.DataFrame | None = None, *, parts_completed: object | None = None
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

    Columns (:data:`SUMMARY_COLUMNS`):

    - ``total``, ``completed``, ``failed``, ``canceled``: as in the payload;
      ``pending`` counts parts that have not ended (pending or running);
    - ``records_processed``: records of completed parts (nullable ``Int64``);
    - ``duration_p50_s``, ``duration_p95_s``, ``duration_max_s``: over the
      parts that ended with a known duration (retries included);
    - ``wall_s``: first ``started_at`` to last ``finished_at``;
    - ``parts_per_s``: ended parts per wall second; ``records_per_s``:
      ``records_processed`` per wall second.

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
    if outcomes is not None:
        if not isinstance(outcomes, pd.DataFrame):
            raise TypeError(f"outcomes must be a pandas DataFrame, got {type(outcomes).__name__}")
        row = _from_outcomes(outcomes)
    else:
        row = _from_payload(parts_completed)

    wall = row.get("wall_s", np.nan)
    processed = row.get("records_processed")
    ended = row["completed"] + row["failed"] + row["canceled"]
    rate_ok = np.isfinite(wall) and wall > 0
    data: dict[str, Any] = {
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
        "records_per_s": processed / wall if rate_ok and processed is not None else np.nan,
    }
    return pd.DataFrame(data, index=pd.RangeIndex(1, name="run"))[SUMMARY_COLUMNS]


def counts_match(summary: pd.DataFrame, parts_completed: object) -> bool:
    """Whether a summary's counts equal those of a ``job:parts-completed`` payload.

    A cross-check between what dispatch saw and what the platform counted:
    ``counts_match(summarize(outcomes), event)``.
    """
    left = _summary_counts(summary)
    right = _summary_counts(summarize(parts_completed=parts_completed))
    return all(left[key] == right[key] for key in ("total", "completed", "failed", "canceled"))


def _summary_counts(frame: pd.DataFrame) -> dict[str, int]:
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


# --- settle ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettleDecision:
    """What settling a parent should do: ``complete`` or ``fail`` it, with this message."""

    action: Literal["complete", "fail"]
    message: str


@dataclass(frozen=True)
class SettleResult:
    """What :func:`settle` did to a parent job.

    ``changed`` is False when the parent had already ended (settled before, or
    by a concurrent settler that won the race); ``status`` is then its status
    as read back, and ``message`` says so.
    """

    job_id: str
    status: str
    changed: bool
    message: str


def settle_decision(
    summary_or_outcomes: pd.DataFrame, *, message: str | None = None
) -> SettleDecision:
    """Decide how to settle a parent from its parts, without touching the API.

    Complete when every part completed (or there are no parts); fail otherwise,
    with a message naming the counts, e.g. ``"3 of 100 parts failed, 2 canceled"``
    (plus ``", 4 not ended"`` when some parts never ended). ``message``
    replaces the generated message.

    Example::

        >>> counts = {"total": 100, "completed": 95, "failed": 3, "canceled": 2}
        >>> settle_decision(summarize(parts_completed={"parts": counts})).message
        '3 of 100 parts failed, 2 canceled'
    """
    if message is not None and not isinstance(message, str):
        raise TypeError(f"message must be a string or None, got {type(message).__name__}")
    counts = _summary_counts(summary_or_outcomes)
    total = counts["total"]
    if total == 0 or counts["completed"] == total:
        generated = f"{counts['completed']} of {total} parts completed"
        return SettleDecision("complete", message if message is not None else generated)
    generated = f"{counts['failed']} of {total} parts failed, {counts['canceled']} canceled"
    if counts["pending"]:
        generated += f", {counts['pending']} not ended"
    return SettleDecision("fail", message if message is not None else generated)


@dataclass(frozen=True)
class _Call:
    """One client call the settle flow asks its driver to make."""

    method: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


def _settle_flow(job_id: str, decision: SettleDecision) -> Generator[_Call, Any, SettleResult]:
    """The settle protocol, written once: yields client calls, receives their results.

    A failed call is thrown back into the generator, so the race handling below
    is the same for the sync and the async driver.
    """
    # Imported here so the pure stages (plan, outcomes, summary) load without the
    # HTTP client stack.
    from splitkit.api.errors import InvalidTransitionError

    job = yield _Call("get_job", (job_id,), {})
    if job.status in TERMINAL_JOB_STATUSES:
        return _unchanged(job_id, job.status)
    method = "complete_job" if decision.action == "complete" else "fail_job"
    try:
        # The client's message= is Flatfile's outcome.message, what the UI shows.
        job = yield _Call(method, (job_id,), {"message": decision.message})
    except InvalidTransitionError:
        # Another settler ended the parent between our read and our write.
        job = yield _Call("get_job", (job_id,), {})
        if job.status not in TERMINAL_JOB_STATUSES:
            raise  # refused for another reason: not ours to hide
        return _unchanged(job_id, job.status)
    return SettleResult(job_id, job.status, True, decision.message)


def _unchanged(job_id: str, status: str) -> SettleResult:
    return SettleResult(job_id, status, False, f"parent {job_id} was already {status}; unchanged")


def _check(client: object, job_id: object, *, want_async: bool, caller: str) -> None:
    if not isinstance(job_id, str) or not job_id:
        raise ValueError(f"parent_job_id must be a non-empty string, got {job_id!r}")
    for name in ("get_job", "complete_job", "fail_job"):
        method = getattr(client, name, None)
        if not callable(method):
            raise TypeError(
                f"{caller} needs a client with get_job, complete_job and fail_job, "
                f"got {type(client).__name__}"
            )
        if inspect.iscoroutinefunction(method) != want_async:
            other = "asettle() with an AsyncClient" if not want_async else "settle()"
            raise TypeError(
                f"{caller} got {type(client).__name__} whose {name} is "
                f"{'async' if not want_async else 'sync'}; use {other}"
            )


def settle(
    client: Any,
    parent_job_id: str,
    summary_or_outcomes: pd.DataFrame,
    *,
    message: str | None = None,
) -> SettleResult:
    """Complete or fail the parent job from its parts, exactly once.

    The decision is :func:`settle_decision` (complete when every part
    completed, fail otherwise). The parent is read first; if it has already
    ended, nothing is sent. If the complete/fail call is refused because a
    concurrent settler got there first, the parent is read again and the
    result says it was unchanged. So settling twice, or from two listeners,
    is safe.

    ``summary_or_outcomes`` is a :func:`summarize` frame or an outcome frame.

    Example::

        result = settle(client, parent.id, summarize(outcomes))
        result  # SettleResult(job_id='us_jb_…', status='complete', changed=True, ...)
    """
    _check(client, parent_job_id, want_async=False, caller="settle()")
    flow = _settle_flow(parent_job_id, settle_decision(summary_or_outcomes, message=message))
    call = next(flow)
    while True:
        try:
            try:
                result = getattr(client, call.method)(*call.args, **call.kwargs)
            except Exception as exc:
                call = flow.throw(exc)
            else:
                call = flow.send(result)
        except StopIteration as stop:
            return stop.value


async def asettle(
    client: Any,
    parent_job_id: str,
    summary_or_outcomes: pd.DataFrame,
    *,
    message: str | None = None,
) -> SettleResult:
    """:func:`settle` for an :class:`~splitkit.api.AsyncClient`.

    Example::

        result = await asettle(async_client, parent.id, summary)
    """
    _check(client, parent_job_id, want_async=True, caller="asettle()")
    flow = _settle_flow(parent_job_id, settle_decision(summary_or_outcomes, message=message))
    call = next(flow)
    while True:
        try:
            try:
                result = await getattr(client, call.method)(*call.args, **call.kwargs)
            except Exception as exc:
                call = flow.throw(exc)
            else:
                call = flow.send(result)
        except StopIteration as stop:
            return stop.value
