"""The status vocabulary, defined once: a job's status on the wire and a part's outcome.

Two vocabularies meet in splitkit and must not be confused:

- :class:`JobStatus`, what Flatfile (and the embedded server) says a job is, spelled as on
  the wire: ``complete`` (not ``completed``), ``canceled``;
- :class:`OutcomeStatus`, what an outcome row says about a part in a run: ``pending`` and
  ``running`` have not ended; ``completed``, ``failed`` and ``canceled`` have.

A job status maps to one outcome status (:func:`outcome_of_job`: an ended job to its
ending, any open one to ``pending``), and the spellings splitkit accepts in frames and
payloads (``complete``, ``cancelled``, any case) are read by :func:`outcome_status`.

Both are ``StrEnum``: a member equals its string (``JobStatus.COMPLETE == "complete"``),
so wire values, job models and DataFrame columns stay plain strings. This module imports
nothing from splitkit, so the client and the server may both use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "ALIASES",
    "ENDED_OUTCOMES",
    "JOB_RETRYABLE",
    "JOB_TERMINAL",
    "OUTCOME_OF_ENDED_JOB",
    "SUMMARY_COUNTS",
    "JobStatus",
    "OutcomeStatus",
    "job_status_of",
    "outcome_of_job",
    "outcome_status",
    "spellings",
    "summary_bucket",
]


class JobStatus(StrEnum):
    """A job's status as Flatfile spells it on the wire."""

    CREATED = "created"
    PLANNING = "planning"
    SCHEDULED = "scheduled"
    READY = "ready"
    EXECUTING = "executing"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELED = "canceled"
    WAITING = "waiting"  # a sequential part whose predecessor has not ended


class OutcomeStatus(StrEnum):
    """A part's status in an outcome frame (and a run's live rows), in display order."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


#: Job statuses after which nothing changes.
JOB_TERMINAL: Final = frozenset({JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.CANCELED})
#: Job statuses the platform's retry moves back to ``ready`` (``POST /jobs/{id}/retry``).
JOB_RETRYABLE: Final = frozenset({JobStatus.FAILED, JobStatus.CANCELED})
#: Outcome statuses of a part that has ended.
ENDED_OUTCOMES: Final = frozenset(
    {OutcomeStatus.COMPLETED, OutcomeStatus.FAILED, OutcomeStatus.CANCELED}
)
#: The counts of a summary, in its column order: anything not ended counts as ``pending``.
SUMMARY_COUNTS: Final = (
    OutcomeStatus.COMPLETED,
    OutcomeStatus.FAILED,
    OutcomeStatus.CANCELED,
    OutcomeStatus.PENDING,
)
#: An ended job's status as an outcome status: the one mapping between the vocabularies.
OUTCOME_OF_ENDED_JOB: Final[Mapping[str, OutcomeStatus]] = MappingProxyType(
    {
        JobStatus.COMPLETE: OutcomeStatus.COMPLETED,
        JobStatus.FAILED: OutcomeStatus.FAILED,
        JobStatus.CANCELED: OutcomeStatus.CANCELED,
    }
)
_JOB_OF_OUTCOME: Final = {outcome: JobStatus(job) for job, outcome in OUTCOME_OF_ENDED_JOB.items()}
#: Other spellings met in payloads and hand-made frames (the wire's ``complete``, British
#: ``cancelled``), as the outcome status they mean.
ALIASES: Final[Mapping[str, OutcomeStatus]] = MappingProxyType(
    {"complete": OutcomeStatus.COMPLETED, "cancelled": OutcomeStatus.CANCELED}
)
# Every accepted spelling (lower-case) → its outcome status.
_SPELLINGS: Final = (
    {job.value: OutcomeStatus.PENDING for job in JobStatus}
    | {JobStatus(job).value: outcome for job, outcome in OUTCOME_OF_ENDED_JOB.items()}
    | {outcome.value: outcome for outcome in OutcomeStatus}
    | dict(ALIASES)
)


def outcome_of_job(status: str) -> OutcomeStatus:
    """A job status as an outcome status: its ending once ended, else ``pending``.

    ``ValueError`` for a string that is no job status.
    """
    job = JobStatus(status)
    return OUTCOME_OF_ENDED_JOB.get(job, OutcomeStatus.PENDING)


def job_status_of(outcome: str) -> JobStatus:
    """The job status an ended outcome is on the wire (``completed`` → ``complete``)."""
    return _JOB_OF_OUTCOME[OutcomeStatus(outcome)]


def outcome_status(spelling: object) -> OutcomeStatus | None:
    """Any spelling splitkit accepts (outcome or job status, an alias, any case) as the
    outcome status it means; None when it is none of them (or not a string)."""
    return _SPELLINGS.get(spelling.lower()) if isinstance(spelling, str) else None


def summary_bucket(spelling: object) -> OutcomeStatus | None:
    """The count of a summary a status spelling adds to: ``completed``, ``failed``,
    ``canceled``, or ``pending`` for anything not ended (``running`` included)."""
    status = outcome_status(spelling)
    return OutcomeStatus.PENDING if status is OutcomeStatus.RUNNING else status


def spellings(status: OutcomeStatus) -> frozenset[str]:
    """The exact spellings of ``status`` in frames (its own, the wire's, an alias)."""
    return frozenset(s for s, outcome in _SPELLINGS.items() if outcome is status) - {
        job.value for job in JobStatus if job not in JOB_TERMINAL
    }
