"""One dispatcher per parent across processes and machines: a claim in the parent's metadata.

`LiveRuns` keeps a second run off a parent within one process. Two processes (or machines)
would each list the parent's open parts and run them all, so each part's handler would run
twice. The claim keeps the second one out, built only on what the Flatfile platform offers
too: the parent job's `metadata`, read with `GET /jobs/{id}` and written with
`PATCH /jobs/{id}`. The claim sits under one key, next to whatever else is there
(`metadata["splitkitClaim"]`; its fields and wire form: `claim_record.py`).

How a run takes it (claim-then-verify):
  1. read the parent; a live claim of another run → `ParentClaimedError` naming its holder;
  2. write our claim (read-modify-write: the other metadata keys are kept);
  3. wait the verify delay, read again: ours → go on; another's → `ParentClaimedError`
     (of two runs that wrote at about the same time, the last write wins, and both see it).
While the run goes on, a heartbeat renews the claim every `heartbeat_s`; a run that finds
another's claim there starts no new part (its running parts finish) and ends with
`ClaimLostError`; one that finds no claim (someone's metadata write wiped it) renews it.
When the run ends, however it ends, the claim is released (set to null).

A claim is taken over when its heartbeat is older than its `stale_after_s` (3 heartbeats),
or at once when its holder ran on this machine and its process is gone (a killed run
resumed on the same machine does not wait), or when it was left by this process.

Limits (the platform has no compare-and-swap on metadata, so this is a lease, not a lock):
- Two runs may both start parts when one's read→write gap (its read of the parent to its
  claim reaching the server) is longer than the other's verify delay: the delay is
  `verify_s` (1 s) or 3× the run's own read→write time, whichever is longer. The first
  heartbeat ends that (the run whose claim was overwritten starts no new part), so the
  overlap lasts at most `heartbeat_s`.
- Staleness compares the holder's clock (heartbeat) with the reader's: clock skew between
  machines adds to or takes from a claim's age. Keep clocks in sync (NTP) well within
  `stale_after_s`. A run that cannot reach the server for longer than `stale_after_s` may
  be taken over while its running parts go on; it learns so at its next heartbeat.
- A metadata write by someone else between our read and write of the parent is lost (and
  ours may be lost to theirs): writes of other tools to the parent's metadata should not
  race a dispatch.
- Runs on different machines share only the heartbeat: a killed run's claim holds a run on
  another machine off for up to `stale_after_s`.
- Whatever the claim does, the server ends each part once: a part that two runs both ran is
  completed by the first and refused to the second (its handler ran twice, its outcome once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from splitkit._checks import positive_number
from splitkit.api import AsyncClient, Job
from splitkit.api.errors import ApiError, ConnectionFailedError, NotFoundError
from splitkit.engine.claim_record import (
    CLAIM_KEY,
    Holder,
    clock_text,
    machine_id,
    now_utc,
    pid_alive,
)
from splitkit.engine.controls import Controls
from splitkit.engine.state import RunState
from splitkit.errors import SplitkitError

__all__ = [
    "ClaimError",
    "ClaimLostError",
    "ClaimPolicy",
    "ParentClaim",
    "ParentClaimedError",
    "stop_starting",
]

log = logging.getLogger("splitkit.engine")

# Run ids holding a claim in this process: a claim of this pid with another run id is a
# leftover (its release failed), not a live run.
_HELD: set[str] = set()


class ClaimError(SplitkitError):
    """The parent's dispatch claim could not be taken or kept."""


class ParentClaimedError(ClaimError):
    """Another run (in another process or on another machine) is dispatching the parent."""

    def __init__(self, parent_id: str, holder: Holder, now: datetime) -> None:
        self.parent_id = parent_id
        self.holder = holder
        age = max(holder.age_s(now), 0.0)
        super().__init__(
            f"parent {parent_id} is being dispatched by {holder.who} since "
            f"{clock_text(holder.since, now)}, last heartbeat {age:.0f} s ago; wait for it, "
            f"or stop it; a claim whose heartbeat is older than {holder.stale_after_s:g} s "
            "is taken over"
        )


class ClaimLostError(ClaimError):
    """The run found another run's claim on its parent and started no new part since."""

    def __init__(self, parent_id: str, reason: str) -> None:
        self.parent_id = parent_id
        self.reason = reason
        super().__init__(
            f"stopped dispatching parent {parent_id}: {reason}; the parts this run did not "
            "start are left open for the run holding the parent"
        )


@dataclass(frozen=True)
class ClaimPolicy:
    """How a run claims its parent. `dispatch(claim=ClaimPolicy(...))`; `claim=True` uses these
    defaults. A claim whose heartbeat is older than `stale_after_s` (default 3 heartbeats) is
    taken over; `verify_s` is the least wait between writing the claim and checking it."""

    heartbeat_s: float = 10.0
    stale_after_s: float | None = None
    verify_s: float = 1.0

    def __post_init__(self) -> None:
        positive_number("heartbeat_s", self.heartbeat_s)
        positive_number("verify_s", self.verify_s)
        if self.stale_after_s is not None:
            stale = positive_number("stale_after_s", self.stale_after_s)
            if stale <= self.heartbeat_s:
                raise ValueError(
                    f"stale_after_s must be longer than heartbeat_s ({self.heartbeat_s:g}), "
                    f"got {self.stale_after_s!r}"
                )

    @property
    def stale_s(self) -> float:
        return 3 * self.heartbeat_s if self.stale_after_s is None else self.stale_after_s


class ParentClaim:
    """The claim of one run on one parent: `async with` takes it (or raises
    `ParentClaimedError`), heartbeats while inside, releases it on the way out.

    `on_lost(reason)` is called (on the loop) when a heartbeat finds another run's claim;
    leaving the block then raises `ClaimLostError`. `policy=None` claims nothing.
    """

    def __init__(
        self,
        client: AsyncClient,
        parent_id: str,
        policy: ClaimPolicy | None,
        on_lost: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.client = client
        self.parent_id = parent_id
        self.policy = policy
        self.on_lost = on_lost
        self.run_id = f"r_{uuid.uuid4().hex[:10]}"
        self.lost: str | None = None  # why the run stopped starting parts, once it did
        self._since: datetime | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ParentClaim:
        if self.policy is None:
            return self
        _HELD.add(self.run_id)  # before our write: this process must not take it as a leftover
        try:
            claimed = await self._acquire(self.policy)
        except BaseException:
            if self._since is not None:  # written: do not leave it for others to wait out
                with contextlib.suppress(Exception):
                    await self._release()
            _HELD.discard(self.run_id)
            raise
        if claimed:
            self._heartbeat = asyncio.create_task(self._beat(self.policy))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.policy is None:
            return
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        try:
            if self.lost is None:
                await self._release()
        finally:
            _HELD.discard(self.run_id)
        if self.lost is not None and exc_type is None:
            raise ClaimLostError(self.parent_id, self.lost)

    # -- taking it -------------------------------------------------------------------------
    async def _acquire(self, policy: ClaimPolicy) -> bool:
        """Take the claim (True), or find nothing to claim (False: not a parent), or raise."""
        started = time.monotonic()
        parent = await self._read("read")
        if parent.is_part:
            return False  # not a parent: the engine says so
        holder = Holder.from_wire(parent.metadata.get(CLAIM_KEY))
        now = now_utc()
        if holder is not None and self._is_live(holder, now):
            raise ParentClaimedError(self.parent_id, holder, now)
        if holder is not None:
            log.warning(
                "taking over parent %s from %s: %s",
                self.parent_id,
                holder.who,
                self._why_dead(holder, now),
            )
        self._since = now
        await self._write(parent, self._mine(policy, now), "write")
        # Wait long enough for a run that read before our write to land its own write.
        await asyncio.sleep(max(policy.verify_s, 3 * (time.monotonic() - started)))
        parent = await self._read("verify")
        holder = Holder.from_wire(parent.metadata.get(CLAIM_KEY))
        if holder is None or holder.run != self.run_id:
            if holder is None:
                raise ClaimError(
                    f"the claim on parent {self.parent_id} was removed right after it was "
                    "written: another run released or cleared it; dispatch again"
                )
            raise ParentClaimedError(self.parent_id, holder, now_utc())
        return True

    def _is_live(self, holder: Holder, now: datetime) -> bool:
        return holder.run == self.run_id or self._why_dead(holder, now) is None

    def _why_dead(self, holder: Holder, now: datetime) -> str | None:
        """Why `holder`'s claim no longer holds, or None while it does."""
        if holder.machine == machine_id():
            if holder.pid == os.getpid() and holder.run not in _HELD:
                return "it was left by an earlier run of this process"
            if not pid_alive(holder.pid):
                return f"its process {holder.pid} on this machine is gone"
        age = holder.age_s(now)
        if age > holder.stale_after_s:
            return f"its last heartbeat is {age:.0f} s old (stale after {holder.stale_after_s:g} s)"
        return None

    def _mine(self, policy: ClaimPolicy, now: datetime) -> Holder:
        assert self._since is not None
        return Holder(
            host=socket.gethostname(),
            pid=os.getpid(),
            run=self.run_id,
            machine=machine_id(),
            since=self._since,
            heartbeat=now,
            heartbeat_s=policy.heartbeat_s,
            stale_after_s=policy.stale_s,
        )

    # -- keeping it ------------------------------------------------------------------------
    async def _beat(self, policy: ClaimPolicy) -> None:
        while True:
            await asyncio.sleep(policy.heartbeat_s)
            try:
                parent = await self._read("heartbeat read")
                holder = Holder.from_wire(parent.metadata.get(CLAIM_KEY))
                if holder is not None and holder.run != self.run_id:
                    self._lose(
                        f"its claim was taken over by {holder.who} at "
                        f"{clock_text(holder.since, now_utc())}"
                    )
                    return
                if holder is None:  # wiped by someone's metadata write: nobody holds it
                    log.warning(
                        "parent %s: its dispatch claim was removed; renewing it", self.parent_id
                    )
                await self._write(parent, self._mine(policy, now_utc()), "heartbeat")
            except NotFoundError:
                self._lose("the parent job is gone")
                return
            except Exception as exc:  # the server is away: try again next beat
                log.warning("%s", exc)

    def _lose(self, why: str) -> None:
        self.lost = why
        log.warning("parent %s: %s; starting no new part", self.parent_id, self.lost)
        self.on_lost(self.lost)

    async def _release(self) -> None:
        try:
            parent = await self._read("release read")
            holder = Holder.from_wire(parent.metadata.get(CLAIM_KEY))
            if holder is not None and holder.run == self.run_id:
                # null, not a missing key: a platform that merges metadata keeps missing keys.
                await self._write(parent, None, "release")
        except NotFoundError:
            pass  # the parent is gone, and its claim with it
        except ClaimError as exc:
            log.warning(
                "%s; the claim goes stale after %g s",
                exc,
                self.policy.stale_s if self.policy else 0,
            )

    # -- the wire ------------------------------------------------------------------------
    async def _read(self, what: str) -> Job:
        try:
            return await self.client.get_job(self.parent_id)
        except NotFoundError:
            raise
        except (ApiError, ConnectionFailedError) as exc:
            raise ClaimError(
                f"could not {what} the dispatch claim of parent {self.parent_id}: {exc}"
            ) from exc

    async def _write(self, parent: Job, holder: Holder | None, what: str) -> None:
        metadata = {**parent.metadata, CLAIM_KEY: None if holder is None else holder.wire()}
        try:
            await self.client.update_job(self.parent_id, metadata=metadata)
        except (ApiError, ConnectionFailedError) as exc:
            raise ClaimError(
                f"could not {what} the dispatch claim of parent {self.parent_id}: {exc} "
                "(dispatch(..., claim=False) runs without one)"
            ) from exc


def stop_starting(controls: Controls, state: RunState) -> Callable[[str], None]:
    """What a run does when its claim is lost: start no new part (running ones finish) and
    say why on every part it will not start. The parts stay open on the server."""

    def stop(reason: str) -> None:
        controls.stop()  # a local stop: the other run owns the parts now
        state.last_error = reason
        for row in state.rows:
            if row.status == "pending" and not row.error:
                row.error = f"not started: {reason}"

    return stop
