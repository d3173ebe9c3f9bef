"""Frozen views over the wire dicts: ``Job``, ``Event``, ``RecordCounts``.

Each keeps the dict it was built from in ``.raw`` (fields the model does not
name, like ``predecessorIds`` or ``subject``, are still there). Missing
optional keys become ``None``; a missing required key is a ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from splitkit.statuses import JOB_TERMINAL

__all__ = ["TERMINAL_STATUSES", "Event", "Job", "RecordCounts"]

#: The job statuses after which nothing changes (splitkit.statuses.JOB_TERMINAL).
TERMINAL_STATUSES = JOB_TERMINAL


def _required(wire: Mapping[str, Any], key: str, kind: str) -> Any:
    try:
        return wire[key]
    except KeyError:
        raise ValueError(f"{kind} has no {key!r}: {dict(wire)!r:.200}") from None
    except TypeError:
        raise ValueError(f"{kind} must be a JSON object, got {wire!r:.200}") from None


def _when(value: Any) -> datetime | None:
    # Python 3.11's fromisoformat takes "Z" and any number of fraction digits.
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _when_required(wire: Mapping[str, Any], key: str, kind: str) -> datetime:
    value = _when(_required(wire, key, kind))
    if value is None:
        raise ValueError(f"{kind} has a null {key!r}")
    return value


@dataclass(frozen=True, slots=True)
class RecordCounts:
    """A sheet's record counts: ``total == valid + error``."""

    total: int
    valid: int
    error: int
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> RecordCounts:
        """Build from ``{"total", "valid", "error"}`` or the ``{"counts": {...}}`` around it."""
        counts = wire.get("counts", wire) if isinstance(wire, Mapping) else wire
        return cls(
            total=int(_required(counts, "total", "counts")),
            valid=int(_required(counts, "valid", "counts")),
            error=int(_required(counts, "error", "counts")),
            raw=counts,
        )


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the API returns it; ``part``/``parent_id`` are set on parts."""

    id: str
    type: str
    operation: str
    status: str
    source: str | None
    parent_id: str | None
    part: int | None
    part_data: Mapping[str, Any] | None
    part_execution: str | None
    environment_id: str | None
    progress: int | None
    info: str | None
    outcome: Mapping[str, Any] | None
    metadata: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Job:
        get = wire.get
        return cls(
            id=_required(wire, "id", "job"),
            type=_required(wire, "type", "job"),
            operation=_required(wire, "operation", "job"),
            status=_required(wire, "status", "job"),
            source=get("source"),
            parent_id=get("parentId"),
            part=get("part"),
            part_data=get("partData"),
            part_execution=get("partExecution"),
            environment_id=get("environmentId"),
            progress=get("progress"),
            info=get("info"),
            outcome=get("outcome"),
            metadata=get("metadata") or {},
            created_at=_when_required(wire, "createdAt", "job"),
            updated_at=_when_required(wire, "updatedAt", "job"),
            started_at=_when(get("startedAt")),
            finished_at=_when(get("finishedAt")),
            raw=wire,
        )

    @property
    def is_part(self) -> bool:
        """True for a part of a split job."""
        return self.parent_id is not None

    @property
    def is_terminal(self) -> bool:
        """True once the job has ended: complete, failed or canceled."""
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class Event:
    """An event from ``GET /events``; ``job_id`` is ``context.jobId``."""

    id: str
    topic: str
    domain: str
    context: Mapping[str, Any]
    payload: Mapping[str, Any]
    created_at: datetime
    acknowledged_at: datetime | None
    data_url: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Event:
        get = wire.get
        return cls(
            id=_required(wire, "id", "event"),
            topic=_required(wire, "topic", "event"),
            domain=_required(wire, "domain", "event"),
            context=get("context") or {},
            payload=get("payload") or {},
            created_at=_when_required(wire, "createdAt", "event"),
            acknowledged_at=_when(get("acknowledgedAt")),
            # The real platform sends "" for "no data URL".
            data_url=get("dataUrl") or None,
            raw=wire,
        )

    @property
    def job_id(self) -> str | None:
        """The job the event is about (for ``job:*`` topics)."""
        job_id = self.context.get("jobId")
        return job_id if isinstance(job_id, str) else None
