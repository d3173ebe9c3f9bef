"""Part outcomes, their summary, and settling the parent job.

Three stages of the pipeline, in order:

- the **outcome frame**: one row per part (:data:`OUTCOME_COLUMNS`), written by
  dispatch; :func:`empty_outcomes` gives its schema;
- the **summary**: :func:`summarize` reduces outcomes, or a
  ``job:parts-completed`` payload, to one row of counts, durations and
  throughput (the counts are the payload's: total, completed, failed, canceled);
- **settle**: :func:`settle` / :func:`asettle` complete the parent when every
  part completed and fail it otherwise, exactly once, after checking the frame
  against the parent's parts as the server has them.

Outcome and summary frames carry the id of the parent job whose parts they
describe (see :func:`frame_parent_id`), so a frame cannot settle another parent.

What settle does is decided by one pure function, :func:`settle_decision`,
checked against the parent's parts on the server and carried out by one
generator of client calls (the way httpx writes its auth flows) that a sync and
an async loop both drive, so the two cannot drift.

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
from typing import Any, Literal, Protocol, cast

import numpy as np
import pandas as pd

from splitkit._checks import boolean, non_empty_str, non_negative_int
from splitkit.errors import SettleRefusedError
from splitkit.statuses import (
    JOB_TERMINAL,
    SUMMARY_COUNTS,
    OutcomeStatus,
    spellings,
    summary_bucket,
)

__all__ = [
    "COMPLETED",
    "OPTIONAL_OUTCOME_DTYPES",
    "OUTCOME_COLUMNS",
    "OUTCOME_DTYPES",
    "OUTCOME_STATUSES",
    "SETTLE_SENDS",
    "SUMMARY_COLUMNS",
    "TERMINAL_JOB_STATUSES",
    "AsyncSettleClient",
    "RunLike",
    "SettleClient",
    "SettleDecision",
    "SettleResult",
    "asettle",
    "counts_match",
    "empty_outcomes",
    "frame_parent_id",
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
OPTIONAL_OUTCOME_DTYPES: dict[str, Any] = {
    "worker": "Int64",
    "traceback": "str",
    "parent_id": "str",
}

#: Job statuses after which nothing changes (Flatfile spells them this way).
TERMINAL_JOB_STATUSES = JOB_TERMINAL
#: Spellings of "completed" in outcomes and payloads (the wire says ``complete``).
COMPLETED = spellings(OutcomeStatus.COMPLETED)

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


def empty_outcomes(*, include_optional: bool = False) -> pd.DataFrame:
    """An outcome frame with no rows and the right dtypes.

    ``include_optional`` adds the ``worker``, ``traceback`` and ``parent_id``
    columns that dispatch may write.

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


def _event_parent_id(parts_completed: object) -> str | None:
    """The parent id in a whole ``job:parts-completed`` event (``context.jobId``), if given one."""
    context: object = getattr(parts_completed, "context", None)
    if context is None and isinstance(parts_completed, Mapping):
        context = parts_completed.get("context")
    job_id = context.get("jobId") if isinstance(context, Mapping) else None
    return job_id if isinstance(job_id, str) and job_id else None


# --- summary --------------------------------------------------------------------------------


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


# --- settle ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettleDecision:
    """What settling a parent should do: ``complete`` or ``fail`` it, with this message."""

    action: Literal["complete", "fail"]
    message: str


@dataclass(frozen=True)
class SettleResult:
    """What :func:`settle` did to a parent job.

    ``changed`` is True when this call ended the parent, including when the
    answer to its request was lost and the parent was then read back ended as
    asked (same status, same outcome message). It is False when the parent had
    already ended (settled before, or by a concurrent settler that won the
    race); ``status`` is then its status as read back, and ``message`` says so.
    """

    job_id: str
    status: str
    changed: bool
    message: str


class RunLike(Protocol):
    """What settle needs of a run: a :class:`~splitkit.engine.RunHandle` is one.

    ``wait()`` blocks until the run ends and returns its outcome frame,
    ``await run`` does the same without blocking, and ``outcomes`` is the
    frame as it is now.
    """

    @property
    def outcomes(self) -> pd.DataFrame: ...

    def wait(self, timeout: float | None = None) -> pd.DataFrame: ...

    def __await__(self) -> Generator[Any, None, pd.DataFrame]: ...


#: What :func:`settle_decision`, :func:`settle` and :func:`asettle` settle from.
SettleSource = pd.DataFrame | RunLike


class _JobLike(Protocol):
    @property
    def status(self) -> str: ...


class _PartLike(Protocol):
    @property
    def status(self) -> str: ...


class SettleClient(Protocol):
    """The client calls :func:`settle` makes: :class:`~splitkit.api.Client` has them."""

    def get_job(self, job_id: str) -> _JobLike: ...

    def list_parts(self, parent_id: str) -> Sequence[_PartLike]: ...

    def complete_job(self, job_id: str, *, message: str | None = None) -> _JobLike: ...

    def fail_job(self, job_id: str, *, message: str | None = None) -> _JobLike: ...


class AsyncSettleClient(Protocol):
    """The client calls :func:`asettle` makes: :class:`~splitkit.api.AsyncClient` has them."""

    async def get_job(self, job_id: str) -> _JobLike: ...

    async def list_parts(self, parent_id: str) -> Sequence[_PartLike]: ...

    async def complete_job(self, job_id: str, *, message: str | None = None) -> _JobLike: ...

    async def fail_job(self, job_id: str, *, message: str | None = None) -> _JobLike: ...


def _as_run(value: object) -> RunLike | None:
    """``value`` if it is a run handle, told apart by what it does (``wait()``, ``outcomes``)."""
    if (
        not isinstance(value, pd.DataFrame)
        and callable(getattr(value, "wait", None))
        and hasattr(value, "outcomes")
    ):
        return cast(RunLike, value)
    return None


def settle_decision(
    summary_or_outcomes: SettleSource,
    *,
    message: str | None = None,
    allow_unfinished: bool = False,
) -> SettleDecision:
    """Decide how to settle a parent from its parts, without touching the API.

    Complete when every part completed (or there are no parts); fail otherwise,
    with a message naming the counts, e.g. ``"3 of 100 parts failed, 2 canceled"``.
    ``message`` replaces the generated message.

    ``summary_or_outcomes`` is a :func:`summarize` frame, an outcome frame, or a
    run handle (its outcomes as they are now: this function never waits; a run
    that has not listed its parts yet is refused rather than read as 0 parts).

    Parts that have not ended (``pending`` > 0) mean the run is still going, or
    was stopped: settling then would fail a parent whose parts may yet complete,
    so it raises ``SettleRefusedError("N parts have not ended; wait for the run ...")``
    (a ``ValueError``).
    ``allow_unfinished=True`` settles anyway: the parent is failed with a
    message ending ``", N not ended"``.

    Example::

        >>> counts = {"total": 100, "completed": 95, "failed": 3, "canceled": 2}
        >>> settle_decision(summarize(parts_completed={"parts": counts})).message
        '3 of 100 parts failed, 2 canceled'
    """
    if message is not None and not isinstance(message, str):
        raise TypeError(f"message must be a string or None, got {type(message).__name__}")
    allow_unfinished = boolean("allow_unfinished", allow_unfinished)
    run = _as_run(summary_or_outcomes)
    counts = _summary_counts(summary_or_outcomes if run is None else run.outcomes)
    total, pending = counts["total"], counts["pending"]
    if pending and not allow_unfinished:
        raise SettleRefusedError(
            f"{pending} parts have not ended; wait for the run (handle.wait() or await handle) "
            "before settling"
        )
    if run is not None and total == 0 and getattr(run, "done", True) is False:
        # A run that has not listed its parts yet has an empty frame: not "0 of 0 completed".
        raise SettleRefusedError(
            "the run has not listed its parts yet; wait for the run (handle.wait() or "
            "await handle) before settling"
        )
    if total == 0 or counts["completed"] == total:
        generated = f"{counts['completed']} of {total} parts completed"
        return SettleDecision("complete", message if message is not None else generated)
    generated = f"{counts['failed']} of {total} parts failed, {counts['canceled']} canceled"
    if pending:
        generated += f", {pending} not ended"
    return SettleDecision("fail", message if message is not None else generated)


#: How many times settle sends complete/fail while each doubtful answer leaves the
#: parent open (the client's own retries come on top, per send).
SETTLE_SENDS = 3

_COUNT_KEYS = ("total", "completed", "failed", "canceled", "pending")


@dataclass(frozen=True)
class _Call:
    """One client call the settle flow asks its driver to make."""

    method: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


def _settle_flow(
    job_id: str,
    decision: SettleDecision,
    counts: Mapping[str, int],
    *,
    allow_unfinished: bool,
) -> Generator[_Call, Any, SettleResult]:
    """The settle protocol, written once: yields client calls, receives their results.

    A failed call is thrown back into the generator, so the checks, the race
    handling and the reconciliation below are the same for the sync and the
    async driver. ``counts`` are the frame's (:func:`_summary_counts`).
    """
    # Imported here so the pure stages (plan, outcomes, summary) load without the
    # HTTP client stack.
    from splitkit.api.errors import (
        ConnectionFailedError,
        InvalidTransitionError,
        RateLimitedError,
        ServerError,
    )

    job = yield _Call("get_job", (job_id,), {})
    if job.status in TERMINAL_JOB_STATUSES:
        return _unchanged(job_id, job.status)

    # The server decides, not the frame: a frame taken while the run was going, or of
    # another parent, must not settle this one.
    parts = yield _Call("list_parts", (job_id,), {})
    statuses = Counter(str(part.status) for part in parts)
    server = _buckets(statuses, f"the parts of parent {job_id}") | {"total": len(parts)}
    if server["pending"] and not allow_unfinished:
        open_statuses = ", ".join(
            f"{n} {status}"
            for status, n in sorted(statuses.items())
            if summary_bucket(status) == OutcomeStatus.PENDING
        )
        raise SettleRefusedError(
            f"parent {job_id} has {server['pending']} of {server['total']} parts not ended "
            f"on the server ({open_statuses}); the frame handed in counts {counts['total']} "
            f"parts, {counts['pending']} not ended. Wait for the run (handle.wait() or "
            "await handle) before settling, or pass allow_unfinished=True to fail the "
            "parent; nothing was changed"
        )
    if any(counts[key] != server[key] for key in _COUNT_KEYS):
        raise SettleRefusedError(
            f"the counts handed in do not match the parts of parent {job_id} on the server: "
            f"frame {_counts_text(counts)}; server {_counts_text(server)}. Summarize the "
            "run's final outcomes (or this parent's job:parts-completed event) and settle "
            "from that; nothing was changed"
        )

    method, wanted = (
        ("complete_job", "complete") if decision.action == "complete" else ("fail_job", "failed")
    )
    doubtful: Exception | None = None
    for _ in range(SETTLE_SENDS):
        try:
            # The client's message= is Flatfile's outcome.message, what the UI shows.
            job = yield _Call(method, (job_id,), {"message": decision.message})
        except InvalidTransitionError:
            # Another settler ended the parent between our read and our write, or an
            # earlier send of ours that looked lost had in fact been processed.
            job = yield _Call("get_job", (job_id,), {})
            if job.status not in TERMINAL_JOB_STATUSES:
                raise  # refused for another reason: not ours to hide
            if doubtful is not None and _ended_as_asked(job, wanted, decision.message):
                return SettleResult(job_id, job.status, True, decision.message)
            return _unchanged(job_id, job.status)
        except (ServerError, ConnectionFailedError, RateLimitedError) as exc:
            # The answer is lost or an error, yet the server may have processed it:
            # read the parent to learn what happened before sending again.
            doubtful = exc
            job = yield _Call("get_job", (job_id,), {})
            if job.status in TERMINAL_JOB_STATUSES:
                if _ended_as_asked(job, wanted, decision.message):
                    return SettleResult(job_id, job.status, True, decision.message)
                return _unchanged(job_id, job.status)
            continue  # still open: it was not processed; send again
        return SettleResult(job_id, job.status, True, decision.message)
    assert doubtful is not None
    raise doubtful


def _ended_as_asked(job: object, status: str, message: str) -> bool:
    """Whether the parent ended with the status and outcome message we sent."""
    outcome = getattr(job, "outcome", None)
    sent = outcome.get("message") if isinstance(outcome, Mapping) else None
    return getattr(job, "status", None) == status and sent == message


def _counts_text(counts: Mapping[str, int]) -> str:
    return " ".join(f"{key}={counts[key]}" for key in _COUNT_KEYS)


def _unchanged(job_id: str, status: str) -> SettleResult:
    return SettleResult(job_id, status, False, f"parent {job_id} was already {status}; unchanged")


def _check(client: object, job_id: object, *, want_async: bool, caller: str) -> None:
    non_empty_str("parent_job_id", job_id)
    for name in ("get_job", "list_parts", "complete_job", "fail_job"):
        method = getattr(client, name, None)
        if not callable(method):
            raise TypeError(
                f"{caller} needs a client with get_job, list_parts, complete_job and fail_job, "
                f"got {type(client).__name__}"
            )
        if inspect.iscoroutinefunction(method) != want_async:
            other = "asettle() with an AsyncClient" if not want_async else "settle()"
            raise TypeError(
                f"{caller} got {type(client).__name__} whose {name} is "
                f"{'async' if not want_async else 'sync'}; use {other}"
            )


def _check_options(message: object, allow_unfinished: object) -> None:
    # Before waiting for a run: a typo must not cost the whole run's wait.
    if message is not None and not isinstance(message, str):
        raise TypeError(f"message must be a string or None, got {type(message).__name__}")
    boolean("allow_unfinished", allow_unfinished)


def _check_run_parent(job_id: str, run: RunLike) -> None:
    # Before waiting for a run: the handle of another parent's run is refused at once.
    run_parent = getattr(run, "parent_id", None)
    if isinstance(run_parent, str) and run_parent != job_id:
        raise SettleRefusedError(
            f"the run handed in is of parent {run_parent}, not {job_id}; "
            "settle each parent with its own run; nothing was changed"
        )


def _prepare(
    job_id: str, source: object, message: str | None, allow_unfinished: bool
) -> Generator[_Call, Any, SettleResult]:
    """Check the frame (pure) and return the settle flow for it."""
    if isinstance(source, pd.DataFrame):
        carried = frame_parent_id(source)
        if carried is not None and carried != job_id:
            raise SettleRefusedError(
                f"the frame handed in is of parent {carried}, not {job_id}; "
                "settle each parent with its own outcomes or summary; nothing was changed"
            )
    decision = settle_decision(
        cast(SettleSource, source), message=message, allow_unfinished=allow_unfinished
    )
    counts = _summary_counts(source)
    return _settle_flow(job_id, decision, counts, allow_unfinished=allow_unfinished)


def settle(
    client: SettleClient,
    parent_job_id: str,
    summary_or_outcomes: SettleSource,
    *,
    message: str | None = None,
    allow_unfinished: bool = False,
) -> SettleResult:
    """Complete or fail the parent job from its parts, exactly once, as the server has them.

    The decision is :func:`settle_decision` (complete when every part
    completed, fail otherwise). ``summary_or_outcomes`` is a :func:`summarize`
    frame, an outcome frame, or the run's handle (from ``dispatch()``), which
    is waited for first (``handle.wait()``) and settled from its outcomes.

    Before anything is sent, the frame is checked, and refused with
    ``SettleRefusedError`` (a ``ValueError``; the parent unchanged) when:

    - it is of another parent: its ``parent_id`` (see :func:`frame_parent_id`),
      or the run handle's, is not ``parent_job_id``. A frame with no parent id
      (built by hand, or summarized from a bare ``job:parts-completed``
      payload) is accepted, and checked by its counts alone;
    - it has parts that have not ended (see :func:`settle_decision`);
    - the parent is still open and the server lists parts of it that have not
      ended (the message names how many, with their statuses): a frame taken
      while the run was going, e.g. ``run.outcomes`` right after
      ``dispatch(..., wait=False)``, cannot settle it;
    - its counts (total, completed, failed, canceled, pending) differ from the
      server's parts of the parent: the message shows both.

    ``allow_unfinished=True`` is the explicit escape for a run stopped on
    purpose: parts not ended are allowed (on the server and in the frame, which
    must still agree), and the parent is failed with a message ending
    ``", N not ended"``.

    The parent is read first; if it has already ended, nothing is sent and the
    result says it was unchanged. If the complete/fail call is refused because
    a concurrent settler got there first, the parent is read again and the
    result says it was unchanged. So settling twice, or from two listeners, is
    safe.

    If the complete/fail call's answer is lost or is a 5xx or 429
    (``ConnectionFailedError``, ``ServerError``, ``RateLimitedError``), the
    server may or may not have processed it, so the parent is read again:
    ended with the status and outcome message asked for → ``changed=True``;
    ended otherwise → ``changed=False`` with that status; still open → sent
    again, at most :data:`SETTLE_SENDS` times in all, then the last error is
    raised. (Two settlers sending the same message, one of which lost its
    answer, may then both report ``changed=True``: the server cannot tell them
    apart.)

    Example::

        result = settle(client, parent.id, summarize(outcomes))
        result  # SettleResult(job_id='us_jb_…', status='complete', changed=True, ...)
        settle(client, parent.id, handle)  # waits for the run, then settles
    """
    _check(client, parent_job_id, want_async=False, caller="settle()")
    _check_options(message, allow_unfinished)
    source: object = summary_or_outcomes
    run = _as_run(source)
    if run is not None:
        _check_run_parent(parent_job_id, run)
        source = _outcomes_of(run, run.wait())
    flow = _prepare(parent_job_id, source, message, allow_unfinished)
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
    client: AsyncSettleClient,
    parent_job_id: str,
    summary_or_outcomes: SettleSource,
    *,
    message: str | None = None,
    allow_unfinished: bool = False,
) -> SettleResult:
    """:func:`settle` for an :class:`~splitkit.api.AsyncClient`: the same checks and flow.

    A run handle is awaited (``await handle``) rather than waited for.

    Example::

        result = await asettle(async_client, parent.id, summary)
        result = await asettle(async_client, parent.id, handle)
    """
    _check(client, parent_job_id, want_async=True, caller="asettle()")
    _check_options(message, allow_unfinished)
    source: object = summary_or_outcomes
    run = _as_run(source)
    if run is not None:
        if not inspect.isawaitable(run):
            raise TypeError(
                f"asettle() got a {type(run).__name__} that cannot be awaited; "
                "pass its outcomes (await it yourself) or use settle()"
            )
        _check_run_parent(parent_job_id, run)
        source = _outcomes_of(run, await run)
    flow = _prepare(parent_job_id, source, message, allow_unfinished)
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


def _outcomes_of(run: RunLike, waited: object) -> pd.DataFrame:
    """The outcome frame of an ended run: what waiting returned, else ``run.outcomes``."""
    return waited if isinstance(waited, pd.DataFrame) else run.outcomes
