"""Settle: complete or fail the parent job from its parts, exactly once.

What settle does is decided by one pure function, :func:`settle_decision`
(complete when every part completed, fail otherwise), checked against the
parent's parts as the server has them, and carried out by one flow of
operations (built with ``splitkit.api.operations``, the shape of httpx's auth
flows). The client's own drive loop runs the flow, ``Client`` and
``AsyncClient`` alike, and throws a failed request's error into it, where it is
reconciled from the server's state. :func:`settle` and :func:`asettle` only
check their arguments, wait for a run if given one, and drive the flow.

Example::

    >>> from splitkit.summary import summarize
    >>> summary = summarize(parts_completed={"parts": {"total": 3, "completed": 3,
    ...                                                 "failed": 0, "canceled": 0}})
    >>> settle_decision(summary)
    SettleDecision(action='complete', message='3 of 3 parts completed')
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import pandas as pd

from splitkit._checks import boolean, non_empty_str
from splitkit.api import AsyncClient, Client, Job
from splitkit.api import operations as ops
from splitkit.api.errors import (
    ConnectionFailedError,
    InvalidTransitionError,
    RateLimitedError,
    ServerError,
)
from splitkit.api.operations import Flow
from splitkit.errors import SettleRefusedError
from splitkit.outcomes import TERMINAL_JOB_STATUSES, frame_parent_id
from splitkit.statuses import OutcomeStatus, summary_bucket
from splitkit.summary import _buckets, _summary_counts

__all__ = [
    "SETTLE_SENDS",
    "RunLike",
    "SettleDecision",
    "SettleResult",
    "asettle",
    "settle",
    "settle_decision",
]


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

        >>> from splitkit.summary import summarize
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


def _settle_flow(
    job_id: str,
    decision: SettleDecision,
    counts: Mapping[str, int],
    *,
    allow_unfinished: bool,
) -> Flow[SettleResult]:
    """The settle protocol, written once: yields operations, receives their results.

    The client's drive loop throws a failed request's error back in at its
    ``yield``, so the checks, the race handling and the reconciliation below are
    the same for ``Client`` and ``AsyncClient``. ``counts`` are the frame's
    (:func:`~splitkit.summary._summary_counts`).
    """
    job: Job = yield ops.get_job(job_id)
    if job.status in TERMINAL_JOB_STATUSES:
        return _unchanged(job_id, job.status)

    # The server decides, not the frame: a frame taken while the run was going, or of
    # another parent, must not settle this one.
    # Counted page by page: 100,000 parts' Job objects are never all held at once.
    statuses: Counter[str] = Counter()
    total = yield from ops.fold_parts(
        job_id, lambda page: statuses.update(str(part.status) for part in page)
    )
    server = _buckets(statuses, f"the parts of parent {job_id}") | {"total": total}
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

    completing = decision.action == "complete"
    end, wanted = (ops.complete_job, "complete") if completing else (ops.fail_job, "failed")
    doubtful: Exception | None = None
    for _ in range(SETTLE_SENDS):
        try:
            # The client's message= is Flatfile's outcome.message, what the UI shows; info
            # replaces the status line a start left ("splitkit: planning parts").
            job = yield end(job_id, message=decision.message, info=decision.message[:500])
        except InvalidTransitionError:
            # Another settler ended the parent between our read and our write, or an
            # earlier send of ours that looked lost had in fact been processed.
            job = yield ops.get_job(job_id)
            if job.status not in TERMINAL_JOB_STATUSES:
                raise  # refused for another reason: not ours to hide
            if doubtful is not None and _ended_as_asked(job, wanted, decision.message):
                return SettleResult(job_id, job.status, True, decision.message)
            return _unchanged(job_id, job.status)
        except (ServerError, ConnectionFailedError, RateLimitedError) as exc:
            # The answer is lost or an error, yet the server may have processed it:
            # read the parent to learn what happened before sending again.
            doubtful = exc
            job = yield ops.get_job(job_id)
            if job.status in TERMINAL_JOB_STATUSES:
                if _ended_as_asked(job, wanted, decision.message):
                    return SettleResult(job_id, job.status, True, decision.message)
                return _unchanged(job_id, job.status)
            continue  # still open: it was not processed; send again
        return SettleResult(job_id, job.status, True, decision.message)
    assert doubtful is not None
    raise doubtful


def _ended_as_asked(job: Job, status: str, message: str) -> bool:
    """Whether the parent ended with the status and outcome message we sent."""
    outcome: object = job.outcome
    sent = outcome.get("message") if isinstance(outcome, Mapping) else None
    return job.status == status and sent == message


def _counts_text(counts: Mapping[str, int]) -> str:
    return " ".join(f"{key}={counts[key]}" for key in _COUNT_KEYS)


def _unchanged(job_id: str, status: str) -> SettleResult:
    return SettleResult(job_id, status, False, f"parent {job_id} was already {status}; unchanged")


def _check(client: object, job_id: object, *, want_async: bool, caller: str) -> None:
    non_empty_str("parent_job_id", job_id)
    wanted, other = (AsyncClient, Client) if want_async else (Client, AsyncClient)
    if isinstance(client, other):
        use = "settle()" if want_async else "asettle() with an AsyncClient"
        raise TypeError(
            f"{caller} got {type(client).__name__}, whose calls are "
            f"{'sync' if want_async else 'async'}; use {use}"
        )
    if not isinstance(client, wanted):
        # The flow runs on the client's own send loop: a look-alike object cannot drive it.
        raise TypeError(
            f"{caller} needs a client with get_job, list_parts, complete_job and fail_job, "
            f"got {type(client).__name__}; pass a splitkit.api.{wanted.__name__}"
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
) -> Flow[SettleResult]:
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
    client: Client,
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
    return client._drive(_prepare(parent_job_id, source, message, allow_unfinished))


async def asettle(
    client: AsyncClient,
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
    return await client._drive(_prepare(parent_job_id, source, message, allow_unfinished))


def _outcomes_of(run: RunLike, waited: object) -> pd.DataFrame:
    """The outcome frame of an ended run: what waiting returned, else ``run.outcomes``."""
    return waited if isinstance(waited, pd.DataFrame) else run.outcomes
