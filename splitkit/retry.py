"""`retry_failed()`: run the failed parts of a parent again, and only those.

The mechanism is the platform's own retry (`POST /jobs/{id}/retry`, documented by Flatfile
too): each failed part job goes back to `ready` and keeps its id, its part index and its
`partData`. No new job is created, so the parent keeps exactly the parts it was split
into, and `job:parts-completed` counts them all again when the round ends (one event per
round). `dispatch()` then does the rest unchanged: it runs the parts that have not ended,
which are exactly the retried ones, and lists the parts completed before as
`previous_run=True` rows. See docs/retry.md for why not new jobs or a new split.
"""

from __future__ import annotations

from typing import Any

from splitkit._checks import boolean, callable_handler, instance_of, non_empty_str
from splitkit.api import Client, Job
from splitkit.api.errors import BadRequestError
from splitkit.engine import RunHandle, dispatch
from splitkit.engine.executors import Handler
from splitkit.engine.steps import part_index
from splitkit.statuses import JOB_RETRYABLE, JOB_TERMINAL, JobStatus

__all__ = ["retry_failed", "retryable_parts"]

RETRYABLE = JOB_RETRYABLE  # the part statuses the server moves back to `ready`
ENDED = JOB_TERMINAL


def retryable_parts(
    client: Client, parent_job_id: str, *, include_canceled: bool = False
) -> list[Job]:
    """The parent's parts that `retry_failed()` would retry, in part order. Sends no change.

    Raises `ValueError` when the parent is a part itself, is already settled (complete,
    failed or canceled: its parts can no longer be retried), or was never split.
    """
    _check(client, parent_job_id, include_canceled)
    parent = client.get_job(parent_job_id)
    if parent.is_part:
        raise ValueError(
            f"job {parent_job_id} is a part of {parent.parent_id}: retry its parent, "
            f"retry_failed(client, {parent.parent_id!r}, handler)"
        )
    if parent.status in ENDED:
        raise _settled(parent_job_id, parent.status)
    parts = client.list_parts(parent_job_id)
    if not parts:
        raise ValueError(
            f"job {parent_job_id} has no parts: nothing to retry; split it first "
            "(splitkit.split_parent)"
        )
    wanted = RETRYABLE if include_canceled else {JobStatus.FAILED}
    return sorted((job for job in parts if job.status in wanted), key=part_index)


def retry_failed(
    client: Client,
    parent_job_id: str,
    handler: Handler,
    *,
    include_canceled: bool = False,
    **dispatch_kwargs: Any,
) -> RunHandle | None:
    """Rerun the failed parts of a finished run (and canceled ones with `include_canceled`).

    Each failed part job is moved back to `ready` on the server (`client.retry_job`), then
    `dispatch(client, parent_job_id, handler, **dispatch_kwargs)` runs what has not ended:
    exactly those parts. The handle's outcome frame lists every part; the ones completed by
    an earlier run have `previous_run=True`. When the round ends the platform emits a new
    `job:parts-completed` with the counts of all parts; settle the parent from the new
    outcomes as usual.

    Returns the `RunHandle` (in a notebook at once, elsewhere when the run has ended, as
    `dispatch()` does), or **None when there is nothing to retry** (no failed part, or no
    failed or canceled one with `include_canceled=True`). Nothing to retry is not an error:
    retrying is then already done, the same way settling twice is safe. So
    `if (handle := retry_failed(...)) is not None: handle.wait()`.

    Raises `ValueError` when the parent is already settled ("parent us_jb_x is already
    complete: retry needs an unsettled parent"): settle only once every retry round is
    over. Run it after the earlier run has ended (`handle.wait()`), not beside it, or the
    two runs would share the retried parts. If it is interrupted after moving parts back
    to `ready`, `dispatch()` on the parent runs them (it resumes any unfinished run).
    """
    # Checked before any part is touched: a bad handler must not leave parts moved back to
    # `ready` with nothing running them.
    callable_handler(handler)
    targets = retryable_parts(client, parent_job_id, include_canceled=include_canceled)
    if not targets:
        return None
    for job in targets:
        _retry_one(client, parent_job_id, job)
    try:
        return dispatch(client, parent_job_id, handler, **dispatch_kwargs)
    except (TypeError, ValueError) as exc:
        # dispatch() checks its arguments before it starts anything; by then the parts are
        # already `ready` again, so say how to run them once the arguments are fixed.
        exc.add_note(
            f"{len(targets)} part(s) of {parent_job_id} were moved back to ready: run "
            f"dispatch(client, {parent_job_id!r}, handler, ...) to process them"
        )
        raise


def _retry_one(client: Client, parent_job_id: str, job: Job) -> None:
    try:
        client.retry_job(job.id)
    except BadRequestError as exc:
        # The server refuses (400) when the parent was settled between our read and this
        # call, or when the part is no longer failed (someone else retried it). Find out
        # which, so the message says what to do instead of echoing a transition error.
        parent = client.get_job(parent_job_id)
        if parent.status in ENDED:
            raise _settled(parent_job_id, parent.status) from exc
        if client.get_job(job.id).status not in RETRYABLE:
            return  # already back in play: the dispatch below runs it like the others
        raise


def _settled(parent_job_id: str, status: str) -> ValueError:
    return ValueError(
        f"parent {parent_job_id} is already {status}: retry needs an unsettled parent "
        "(settle only after the last retry round; a settled parent's parts cannot run again)"
    )


def _check(client: object, parent_job_id: object, include_canceled: object) -> None:
    # retry_failed calls the client synchronously: an AsyncClient would hand back coroutines.
    instance_of("client", client, Client, "a splitkit Client")
    non_empty_str("parent_job_id", parent_job_id, what="a job id string")
    boolean("include_canceled", include_canceled)
