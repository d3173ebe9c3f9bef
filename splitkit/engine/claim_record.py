"""The claim as it sits in a parent job's metadata: who holds it (`Holder`), its wire form,
and the machine and process that wrote it (see `claim.py` for how a run takes and keeps it).

    metadata["splitkitClaim"] = {
        "host": "build-7", "pid": 4711, "run": "r_3f9c0a1b2d",
        "machine": "build-7/<boot id>/<pid namespace>",   # same machine = same string
        "since": "2025-01-01T10:02:03.123Z", "heartbeat": "2025-01-01T10:04:13.456Z",
        "heartbeat_s": 10.0, "stale_after_s": 30.0,
    }

Timestamps are UTC with milliseconds and a `Z`; a released claim is `null` (not a missing
key: a platform that merges metadata keeps missing keys).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from splitkit._checks import positive_number

__all__ = ["CLAIM_KEY", "Holder", "clock_text", "machine_id", "now_utc", "pid_alive"]

log = logging.getLogger("splitkit.engine")

CLAIM_KEY = "splitkitClaim"


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a parent's claim, as read from its metadata."""

    host: str
    pid: int
    run: str
    machine: str
    since: datetime
    heartbeat: datetime
    heartbeat_s: float
    stale_after_s: float

    @property
    def who(self) -> str:
        return f"{self.host}:{self.pid} (run {self.run})"

    def age_s(self, now: datetime) -> float:
        return (now - self.heartbeat).total_seconds()

    def wire(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pid": self.pid,
            "run": self.run,
            "machine": self.machine,
            "since": _iso(self.since),
            "heartbeat": _iso(self.heartbeat),
            "heartbeat_s": self.heartbeat_s,
            "stale_after_s": self.stale_after_s,
        }

    @classmethod
    def from_wire(cls, value: object) -> Holder | None:
        """The claim in `value`, or None when there is none (released, or not a claim)."""
        if not isinstance(value, Mapping):
            return None
        try:
            return cls(
                host=str(value["host"]),
                pid=int(value["pid"]),
                run=str(value["run"]),
                machine=str(value.get("machine", "")),
                since=_parse(value["since"]),
                heartbeat=_parse(value["heartbeat"]),
                heartbeat_s=positive_number("heartbeat_s", value["heartbeat_s"]),
                stale_after_s=positive_number("stale_after_s", value["stale_after_s"]),
            )
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed dispatch claim in the parent's metadata: %r", value)
            return None


def machine_id() -> str:
    """This machine (and pid namespace): pids are comparable only between equal ids."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):  # Linux: the boot, and the pid namespace (containers)
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(os.readlink("/proc/self/ns/pid"))
    return "/".join(parts)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this machine runs (True when it cannot be told)."""
    if os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def now_utc() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"a timestamp string, got {value!r}")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def clock_text(value: datetime, now: datetime) -> str:
    """`value` for a message: its UTC time, with the date unless it is `now`'s day."""
    value = value.astimezone(UTC)
    fmt = "%H:%M:%S UTC" if value.date() == now.astimezone(UTC).date() else "%Y-%m-%d %H:%M:%S UTC"
    return value.strftime(fmt)
