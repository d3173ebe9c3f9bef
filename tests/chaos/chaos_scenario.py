"""The chaos scenario, shared by ``tests/chaos`` and ``bench/bench_chaos.py``.

A parent of ``parts`` parts is dispatched through a :class:`FaultProxy` in random mode
(every fault kind at ``rate``), again and again until no part is left open (a part whose
ack or page could not get through stays ``pending`` with its reason; ``dispatch()`` again
picks it up), then settled through the proxy. Everything the assertions need is read
*directly* from the server (a client on the server's own URL, never through the proxy)
and kept in a :class:`DispatchScenario`.

Handlers never raise here, so no part may end ``failed``; they count their calls per
(run, part), so a handler run twice within a run shows.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from faultproxy import KINDS, FaultProxy

from splitkit import Client, ClientConfig, Part, dispatch, plan_parts, settle, summarize
from splitkit.api import Event, RetryPolicy
from splitkit.api.errors import SplitkitError
from splitkit.engine import ClaimPolicy, ParentClaimedError
from splitkit.pipeline import split_parent, start_parent_job

PARTS = 240
BATCH = 4  # parts of 4 records, the last of 2: 1-5 records each
RECORDS = PARTS * BATCH - 2
SEEDS = (11, 12, 13)
RATE = 0.10
FAULT_RATES: dict[str, float] = dict.fromkeys(KINDS, RATE)
# Short waits keep the module within its time budget; 6 attempts make a GET that meets
# 60% failing faults get through 95% of the time (a part whose ack/page does not is left
# open and the next run takes it).
CHAOS_RETRY = RetryPolicy(attempts=6, initial=0.01, max_wait=0.2, jitter=0.01)
LATENCY_S = (0.001, 0.005)
MAX_RUNS = 8
CHAOS_CLAIM = ClaimPolicy(heartbeat_s=0.5, stale_after_s=2.0, verify_s=0.05)
CONCURRENCY = 64  # waits between retries cost no CPU: overlap them
ENDED = ("complete", "failed", "canceled")


def proxy_for(upstream_url: str) -> FaultProxy:
    """A proxy answering 429/503 with ``Retry-After: 0`` and a few ms of latency."""
    return FaultProxy(upstream_url, retry_after="0", latency_s=LATENCY_S)


def dispatch_options() -> dict[str, Any]:
    """Keyword arguments for every dispatch() here: a quick claim, so a run resumed after
    a kill waits 2 s (not 30) for the killed run's claim to go stale."""
    return {"claim": CHAOS_CLAIM}


# -- reading the server directly ------------------------------------------------------------


class ServerView:
    """What the server holds, read over a client on its own URL (no proxy in between)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def part_statuses(self, parent_id: str) -> dict[str, str]:
        return {job.id: job.status for job in self.client.list_parts(parent_id)}

    def open_parts(self, parent_id: str) -> set[str]:
        return {j for j, s in self.part_statuses(parent_id).items() if s not in ENDED}

    def events(self, parent_id: str | None = None, topic: str | None = None) -> list[Event]:
        """Every job event (acknowledged too), optionally of one topic and one job id."""
        events: list[Event] = []
        page = 1
        while True:
            batch = self.client.list_events(
                domain="job",
                topic=topic,
                include_acknowledged=True,
                page_size=1000,
                page_number=page,
            )
            events.extend(batch)
            if len(batch) < 1000:
                break
            page += 1
        if parent_id is None:
            return events
        return [e for e in events if e.context.get("jobId") == parent_id]


def make_parent(client: Client, sheet_id: str, *, batch: int = BATCH) -> tuple[str, pd.DataFrame]:
    """A parent on ``sheet_id`` split into parts of ``batch`` records, made directly."""
    plan = plan_parts(client.get_counts(sheet_id).total, batch_size=batch)
    parent = start_parent_job(client, sheet_id)
    return parent.id, split_parent(client, parent.id, plan)


# -- handlers that count ----------------------------------------------------------------------


@dataclass
class CallLog:
    """Handler calls per (run, part job id), and parts whose page had the wrong size."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    wrong_pages: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def handler(self, run: str) -> Callable[[Part], dict[str, Any]]:
        def handle(part: Part) -> dict[str, Any]:
            seen = len(part.records)
            expected = int(part.part_data.get("records", seen))
            with self._lock:
                self.calls[(run, part.job_id)] += 1
                if seen != expected:
                    self.wrong_pages.append(f"{run} {part.job_id}: {seen} of {expected}")
            return {"message": f"{run}: {seen} records", "records": seen}

        return handle

    def ran(self, run: str) -> set[str]:
        with self._lock:
            return {job for (r, job) in self.calls if r == run}

    def twice_within_a_run(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return {key: n for key, n in self.calls.items() if n > 1}

    def parts_run(self) -> set[str]:
        with self._lock:
            return {job for (_, job) in self.calls}


# -- running until every part ended -----------------------------------------------------------


@dataclass
class RunRecord:
    """One dispatch() of the scenario: its outcome frame and how it ended."""

    label: str
    outcomes: pd.DataFrame
    error: str | None
    wall_s: float

    def rows(self, status: str, *, this_run: bool = True) -> pd.DataFrame:
        frame = self.outcomes
        if frame.empty:
            return frame
        mask = frame["status"] == status
        if this_run and "previous_run" in frame.columns:
            mask &= ~frame["previous_run"].astype(bool)
        return frame[mask]


def dispatch_until_done(
    config: ClientConfig,
    parent_id: str,
    calls: CallLog,
    view: ServerView,
    *,
    max_runs: int = MAX_RUNS,
    label: str = "run",
    claim_wait_s: float = 30.0,
) -> list[RunRecord]:
    """dispatch() again while parts are open on the server (at most ``max_runs`` runs).

    A run refused because an earlier run's claim has not gone stale yet (that run wrote
    its claim, then stopped on an error) does not count: it is tried again for up to
    ``claim_wait_s``."""
    runs: list[RunRecord] = []
    counted = 0
    claim_deadline = time.monotonic() + claim_wait_s
    while counted < max_runs:
        name = f"{label}{len(runs) + 1}"
        started = time.monotonic()
        handle = None
        error = None
        refused = False
        try:
            handle = dispatch(
                config,
                parent_id,
                calls.handler(name),
                concurrency=CONCURRENCY,
                progress=False,
                wait=False,
                **dispatch_options(),
            )
            handle.wait()
        except ParentClaimedError as exc:
            error, refused = f"{type(exc).__name__}: {exc}", True
        except Exception as exc:  # the run itself stopped (e.g. its claim could not be written)
            error = f"{type(exc).__name__}: {exc}"
        outcomes = handle.outcomes if handle is not None else pd.DataFrame()
        runs.append(RunRecord(name, outcomes, error, time.monotonic() - started))
        if refused and time.monotonic() < claim_deadline:
            time.sleep(0.3)
            continue
        counted += 1
        if not view.open_parts(parent_id):
            break
    return runs


# -- the whole dispatch scenario ----------------------------------------------------------------


@dataclass
class SettleAttempt:
    changed: bool | None  # None: the call raised
    status: str | None
    error: str | None


@dataclass
class DispatchScenario:
    seed: int
    parent_id: str
    planned_parts: int
    records: int
    runs: list[RunRecord]
    calls: CallLog
    injected: Counter[str]
    final_statuses: dict[str, str]
    part_jobs: int
    records_on_server: int
    parts_completed_events: list[Event]
    parent_end_events: list[Event]
    parent_status: str
    settles: list[SettleAttempt]
    wall_s: float

    @property
    def first(self) -> RunRecord:
        return self.runs[0]

    def left_open_after_first_run(self) -> int:
        return (
            len(self.first.rows("pending", this_run=False))
            if not self.first.outcomes.empty
            else self.planned_parts
        )

    def lost(self) -> set[str]:
        """Parts not complete on the server at the end, or complete without a handler run."""
        not_complete = {j for j, s in self.final_statuses.items() if s != "complete"}
        never_ran = set(self.final_statuses) - self.calls.parts_run()
        return not_complete | never_ran


def settle_through(
    client: Client, parent_id: str, source: Any, tries: int = 4
) -> list[SettleAttempt]:
    """settle() until a call returns (a call may raise under faults), then again until a
    second call returns: the second must find the parent settled."""
    attempts: list[SettleAttempt] = []
    for _ in range(2):
        for _ in range(tries):
            try:
                result = settle(client, parent_id, source)
            except (SplitkitError, ValueError) as exc:
                attempts.append(SettleAttempt(None, None, f"{type(exc).__name__}: {exc}"))
                continue
            attempts.append(SettleAttempt(result.changed, result.status, None))
            break
    return attempts


def run_dispatch_scenario(
    server_url: str,
    token: str,
    sheet_id: str,
    seed: int,
    *,
    rates: dict[str, float] | None = None,
    batch: int = BATCH,
) -> DispatchScenario:
    """Split a parent directly; dispatch and settle it through the proxy; read the result."""
    began = time.monotonic()
    with Client(server_url, token) as direct, proxy_for(server_url) as proxy:
        view = ServerView(direct)
        records = direct.get_counts(sheet_id).total
        parent_id, plan = make_parent(direct, sheet_id, batch=batch)
        calls = CallLog()
        config = ClientConfig(proxy.url, token, retry=CHAOS_RETRY)
        proxy.randomize(FAULT_RATES if rates is None else rates, seed=seed)
        runs = dispatch_until_done(config, parent_id, calls, view)
        last = runs[-1].outcomes
        with Client.from_config(config) as through:
            settles = settle_through(through, parent_id, last)
        injected = Counter(proxy.injected)
        proxy.randomize(None)
        statuses = view.part_statuses(parent_id)
        events = view.events(parent_id)
        return DispatchScenario(
            seed=seed,
            parent_id=parent_id,
            planned_parts=len(plan),
            records=records,
            runs=runs,
            calls=calls,
            injected=injected,
            final_statuses=statuses,
            part_jobs=len(statuses),
            records_on_server=direct.get_counts(sheet_id).total,
            parts_completed_events=[e for e in events if e.topic == "job:parts-completed"],
            parent_end_events=[e for e in events if e.topic in ("job:completed", "job:failed")],
            parent_status=direct.get_job(parent_id).status,
            settles=settles,
            wall_s=time.monotonic() - began,
        )


def server_counts(statuses: dict[str, str]) -> dict[str, int]:
    """total/completed/failed/canceled as the server has them (by part statuses)."""
    tally = Counter(statuses.values())
    return {
        "total": len(statuses),
        "completed": tally["complete"],
        "failed": tally["failed"],
        "canceled": tally["canceled"],
    }


def summary_counts(outcomes: pd.DataFrame) -> dict[str, int]:
    row = summarize(outcomes).iloc[0]
    return {key: int(row[key]) for key in ("total", "completed", "failed", "canceled")}


def payload_counts(event: Event) -> dict[str, int]:
    row = summarize(parts_completed=event.payload).iloc[0]
    return {key: int(row[key]) for key in ("total", "completed", "failed", "canceled")}


# -- logged runs, for the kill -9 tests ---------------------------------------------------------


class EndLog:
    """A run observer writing ``end <run> <job>`` once a part completed on the server
    (the engine moves a row to completed only after the server said so)."""

    def __init__(self, path: str, run: str) -> None:
        self.path = path
        self.run = run
        self._logged: set[str] = set()

    def run_started(self, state: Any) -> None:
        pass

    def part_changed(self, state: Any) -> None:
        done = [
            row.job_id
            for row in list(state.rows)
            if row.status == "completed" and not row.previous_run and row.job_id not in self._logged
        ]
        if done:
            self._logged.update(done)
            with open(self.path, "a") as log:
                log.write("".join(f"end {self.run} {job}\n" for job in done))

    def run_finished(self, state: Any) -> None:
        self.part_changed(state)


def logged_handler(path: str, run: str, sleep_s: float) -> Callable[[Part], str]:
    """A handler writing ``start <run> <job>`` before it works (``sleep_s``)."""

    def handle(part: Part) -> str:
        with open(path, "a") as log:
            log.write(f"start {run} {part.job_id}\n")
        time.sleep(sleep_s)
        return f"{run}: {len(part.records)} records"

    return handle


def logged_dispatch(
    config: ClientConfig,
    parent_id: str,
    log_path: str,
    run: str,
    *,
    sleep_s: float = 0.03,
    concurrency: int = 4,
    wait: bool = True,
) -> Any:
    """dispatch() with a logged handler and end log; returns the handle."""
    handle = dispatch(
        config,
        parent_id,
        logged_handler(log_path, run, sleep_s),
        concurrency=concurrency,
        progress=False,
        observers=[EndLog(log_path, run)],
        wait=False,
        **dispatch_options(),
    )
    if wait:
        handle.wait()
    return handle


@dataclass
class RunLog:
    started: Counter[str] = field(default_factory=Counter)
    ended: set[str] = field(default_factory=set)


def read_log(path: str) -> dict[str, RunLog]:
    """The log's lines by run: handler starts (counted) and server-confirmed ends."""
    runs: dict[str, RunLog] = {}
    with open(path) as log:
        for line in log:
            kind, run, job = line.split()
            entry = runs.setdefault(run, RunLog())
            if kind == "start":
                entry.started[job] += 1
            else:
                entry.ended.add(job)
    return runs


def count_ends(path: str) -> int:
    try:
        with open(path) as log:
            return sum(line.startswith("end ") for line in log)
    except FileNotFoundError:
        return 0
