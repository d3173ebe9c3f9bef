"""Chaos: dispatch, settle and the listener through a fault-injecting proxy, and kill -9 of
the dispatcher and of the server mid-run.

Every fault kind of ``tests/faultproxy.py`` (latency, 429 + Retry-After, 500, 503, 502 after
forwarding, answer lost after processing, reset) is injected at 10% of the requests, over
several seeds, on 240 parts. What must hold (issue 7, "Build"):

- every part ends in one run or is left open (``pending``) with its reason; handlers never
  raise here, so no part may end ``failed``; ``dispatch()`` again finishes the open ones;
- no handler runs twice within a run (handlers count their calls per part);
- no record or job is duplicated (counted on the server directly, not through the proxy);
- exactly one ``job:parts-completed``, with the true counts, once every part ended;
- the summary of the outcome frame equals the server;
- settle through the proxy changes the parent once (one ``job:completed``/``job:failed``);
- the listener through the proxy processes every part, each handler once per listener run,
  and settles the parent once;
- kill -9 of the dispatcher, and of the server (a ``splitkit serve`` on a file database,
  restarted on the same file and port): nothing is lost, and only parts executing at the
  kill run again.

The scenario runs once per seed (module fixture); each test checks one guarantee of it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from chaos_scenario import (
    CHAOS_RETRY,
    FAULT_RATES,
    MAX_RUNS,
    PARTS,
    RECORDS,
    SEEDS,
    CallLog,
    DispatchScenario,
    ServerView,
    count_ends,
    logged_dispatch,
    make_parent,
    payload_counts,
    proxy_for,
    read_log,
    run_dispatch_scenario,
    server_counts,
    summary_counts,
)
from faultproxy import KINDS

from splitkit import Client, ClientConfig, plan_parts, split_parent
from splitkit.api.errors import SplitkitError
from splitkit.listener import Listener, multipart_listener
from splitkit.server import EmbeddedServer

pytestmark = pytest.mark.chaos

TESTS_DIR = Path(__file__).resolve().parents[1]
ROOT = TESTS_DIR.parent


# -- dispatch and settle through the proxy ---------------------------------------------------


@pytest.fixture(scope="module", params=SEEDS, ids=lambda seed: f"seed{seed}")
def scenario(request: pytest.FixtureRequest, chaos_server: EmbeddedServer) -> DispatchScenario:
    assert chaos_server.sheet_id is not None
    return run_dispatch_scenario(
        chaos_server.url, chaos_server.token, chaos_server.sheet_id, request.param
    )


def test_every_fault_kind_was_injected(scenario: DispatchScenario) -> None:
    # The guarantees below mean something only if the faults really happened.
    assert scenario.planned_parts == PARTS
    for kind in KINDS:
        assert scenario.injected[kind] >= 20, (kind, dict(scenario.injected))


def test_every_part_ends_in_one_run_or_is_left_open_with_its_reason(
    scenario: DispatchScenario,
) -> None:
    for run in scenario.runs:
        if run.outcomes.empty:
            assert run.error, f"{run.label} has no outcome frame and no error"
            continue
        this_run = run.outcomes[~run.outcomes["previous_run"].astype(bool)]
        statuses = Counter(this_run["status"])
        # Handlers never raise: a failed part is one failed without its handler failing.
        assert set(statuses) <= {"completed", "pending"}, (run.label, dict(statuses), run.error)
        if run.error is not None:
            continue  # the run itself stopped (its claim): that is every open part's reason
        pending = this_run[this_run["status"] == "pending"]
        no_reason = pending[pending["error"].isna() | (pending["error"].astype(str) == "")]
        assert no_reason.empty, (run.label, no_reason[["part", "job_id"]].to_dict("records"))
    open_parts = {j: s for j, s in scenario.final_statuses.items() if s != "complete"}
    assert not open_parts, (
        f"{len(open_parts)} parts not complete after {len(scenario.runs)} runs: "
        f"{Counter(open_parts.values())}; run errors: {[r.error for r in scenario.runs]}"
    )


def test_no_handler_runs_twice_within_a_run(scenario: DispatchScenario) -> None:
    assert scenario.calls.twice_within_a_run() == {}


def test_a_part_completed_by_a_run_never_runs_again(scenario: DispatchScenario) -> None:
    for index, run in enumerate(scenario.runs):
        completed = set(run.rows("completed")["job_id"]) if not run.outcomes.empty else set()
        for later in scenario.runs[index + 1 :]:
            again = completed & scenario.calls.ran(later.label)
            assert not again, f"{len(again)} parts completed by {run.label} ran in {later.label}"


def test_a_handlers_result_is_never_dropped(scenario: DispatchScenario) -> None:
    # The server stays up: every result is delivered within the delivery window, so no
    # part whose handler ran is left open, and none runs again in a later run.
    for run in scenario.runs:
        if run.outcomes.empty:
            continue
        dropped = scenario.calls.ran(run.label) & set(run.rows("pending")["job_id"])
        reasons = run.rows("pending").set_index("job_id").loc[sorted(dropped), "error"]
        assert not dropped, (
            f"{run.label}: {len(dropped)} results not delivered: {list(reasons)[:3]}"
        )
    runs_per_part = Counter(job for (_, job) in scenario.calls.calls)
    assert {job: n for job, n in runs_per_part.items() if n > 1} == {}


def test_nothing_is_lost(scenario: DispatchScenario) -> None:
    # Complete on the server, by a handler that ran on the part's own page.
    assert scenario.lost() == set()
    assert scenario.calls.wrong_pages == []


def test_no_record_or_job_is_duplicated(scenario: DispatchScenario) -> None:
    assert scenario.part_jobs == scenario.planned_parts
    assert scenario.records_on_server == scenario.records == RECORDS


def test_exactly_one_parts_completed_with_the_true_counts(scenario: DispatchScenario) -> None:
    assert len(scenario.parts_completed_events) == 1, [
        e.payload for e in scenario.parts_completed_events
    ]
    assert payload_counts(scenario.parts_completed_events[0]) == server_counts(
        scenario.final_statuses
    )


def test_the_summary_equals_the_server(scenario: DispatchScenario) -> None:
    last = scenario.runs[-1]
    assert not last.outcomes.empty, last.error
    assert summary_counts(last.outcomes) == server_counts(scenario.final_statuses)


def test_settle_through_the_proxy_changes_the_parent_once(scenario: DispatchScenario) -> None:
    events = [e.topic for e in scenario.parent_end_events]
    assert events == ["job:completed"], (events, scenario.settles)
    assert scenario.parent_status == "complete"
    # settle reports what it did: the first call that returns says it changed the parent,
    # unless an earlier call raised (a request error after all its retries: the caller
    # cannot know whether that call changed it); every later call says unchanged.
    refused = [
        s.error
        for s in scenario.settles
        if s.error and s.error.startswith(("ValueError", "SettleRefusedError"))
    ]
    assert not refused, refused
    returned = [s for s in scenario.settles if s.error is None]
    assert len(returned) >= 2, scenario.settles
    assert all(s.status == "complete" for s in returned), scenario.settles
    if scenario.settles[0].error is None:
        assert scenario.settles[0].changed is True, scenario.settles
    assert not any(s.changed for s in returned[1:]), scenario.settles


# -- setup through the proxy: records and the split --------------------------------------------


def test_records_and_split_through_the_proxy_are_not_duplicated(
    chaos_server: EmbeddedServer, direct: Client
) -> None:
    """insert_records and split_parent through the faults: a POST that may have been
    processed is not resent by the client; the caller (here: the test for insert, and
    split_parent itself) reconciles from the server's state."""
    workbook = direct.create_workbook(
        "chaos",
        [{"name": "Rows", "fields": [{"key": "n", "type": "number", "label": "n"}]}],
        space_id=direct.create_space("chaos")["id"],
    )
    sheet_id = workbook["sheets"][0]["id"]
    batches = [
        [{"n": {"value": i}} for i in range(start, start + 40)] for start in range(0, 960, 40)
    ]
    with proxy_for(chaos_server.url) as proxy:
        through = Client(proxy.url, chaos_server.token, retry=CHAOS_RETRY)
        proxy.randomize(FAULT_RATES, seed=21)
        expected = 0
        for batch in batches:
            for _ in range(10):
                try:
                    through.insert_records(sheet_id, batch)
                except SplitkitError:
                    # Reconcile as a caller does: did the batch land?
                    if direct.get_counts(sheet_id).total == expected + len(batch):
                        break
                    continue
                break
            expected += len(batch)
            assert direct.get_counts(sheet_id).total == expected

        plan = plan_parts(expected, batch_size=4)
        parent = direct.create_job("sheet", "submitLargeSheet", sheet_id)
        direct.ack_job(parent.id)
        errors: list[str] = []
        parts = None
        for _ in range(6):
            try:
                parts = split_parent(through, parent.id, plan)
            except SplitkitError as exc:  # after a doubtful answer, split_parent again
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            break
        through.close()
        injected = dict(proxy.injected)
    assert parts is not None, errors
    assert len(parts) == len(plan) and parts["job_id"].notna().all()
    assert len(direct.list_parts(parent.id)) == len(plan)
    assert direct.get_counts(sheet_id).total == 960
    assert sum(injected.values()) > 0


# -- the listener through the proxy ---------------------------------------------------------------


@pytest.fixture
def listener_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    # Its own server: the dispatch scenarios leave their parts' job:ready events
    # unacknowledged, and a listener would work through those first.
    with EmbeddedServer(db_path=tmp_path / "listener.db", records=RECORDS) as running:
        yield running


def test_listener_through_the_proxy_processes_every_part_once_and_settles_once(
    listener_server: EmbeddedServer,
) -> None:
    assert listener_server.sheet_id is not None
    direct = Client(listener_server.url, listener_server.token)
    view = ServerView(direct)
    parent_id, plan = make_parent(direct, listener_server.sheet_id)
    # The parent is split already: its job:ready is acknowledged so no listener splits it.
    for event in view.events(parent_id, "job:ready"):
        direct.ack_event(event.id)
    calls = CallLog()
    rounds: list[str] = []
    with proxy_for(listener_server.url) as proxy:
        config = ClientConfig(proxy.url, listener_server.token, retry=CHAOS_RETRY)
        proxy.randomize(FAULT_RATES, seed=31)
        for number in range(1, MAX_RUNS + 1):
            # A listener run ends when the parent ended or nothing moves; the next one
            # starts from the backlog (events left unacknowledged). The run count is a
            # bound, not the guarantee: under a loaded machine a run goes quiet sooner.
            label = f"listener{number}"
            rounds.append(label)
            listener = multipart_listener(
                config, calls.handler(label), batch_size=4, poll_interval=0.05, concurrency=64
            )
            listener.start()
            try:
                _wait_until_quiet(direct, view, parent_id, listener)
            finally:
                listener.stop(90)
            if direct.get_job(parent_id).status in ("complete", "failed"):
                break
        injected = dict(proxy.injected)

    statuses = view.part_statuses(parent_id)
    open_parts = {job for job, s in statuses.items() if s != "complete"}
    assert not open_parts, (
        f"after {len(rounds)} listener runs: {dict(Counter(statuses[j] for j in open_parts))}; "
        f"{len(open_parts & calls.parts_run())} of them ran their handler"
    )
    assert set(statuses) <= calls.parts_run(), "a part completed without its handler"
    assert calls.twice_within_a_run() == {}
    assert len(statuses) == len(plan)
    events = view.events(parent_id)
    ends = [e.topic for e in events if e.topic in ("job:completed", "job:failed")]
    assert ends == ["job:completed"], ends
    completed = [e for e in events if e.topic == "job:parts-completed"]
    assert len(completed) == 1
    assert payload_counts(completed[0]) == server_counts(statuses)
    assert all(injected.get(kind, 0) > 0 for kind in KINDS), injected
    direct.close()


def _wait_until_quiet(
    direct: Client,
    view: ServerView,
    parent_id: str,
    listener: Listener,
    quiet_s: float = 5.0,
    limit_s: float = 90.0,
) -> None:
    """Until the parent ended, or neither the server nor the listener moved for ``quiet_s``."""
    deadline = time.monotonic() + limit_s
    last: tuple[str, int, int] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        status = direct.get_job(parent_id).status
        if status in ("complete", "failed"):
            return
        ended = len(view.part_statuses(parent_id)) - len(view.open_parts(parent_id))
        now = (status, ended, listener.handled)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > quiet_s:
            return
        time.sleep(0.2)


# -- kill -9 -------------------------------------------------------------------------------------

WORKER = """
import os, sys
sys.path[:0] = [os.environ["CHAOS_DIR"], os.environ["TESTS_DIR"], os.environ["ROOT"]]
from chaos_scenario import logged_dispatch
from splitkit import ClientConfig
config = ClientConfig(os.environ["URL"], os.environ["TOKEN"])
logged_dispatch(config, os.environ["PARENT"], os.environ["LOG"], "run1")
"""


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "CHAOS_DIR": str(Path(__file__).parent),
        "TESTS_DIR": str(TESTS_DIR),
        "ROOT": str(ROOT),
        **extra,
    }


def _wait_for_ends(log: Path, count: int, alive: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + 60
    while count_ends(str(log)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} parts ended within 60 s"
        if alive is not None:
            assert alive.poll() is None, "the first run ended before it was killed"
        time.sleep(0.02)


def _resume(config: ClientConfig, parent_id: str, log: Path, view: ServerView) -> list[str]:
    """dispatch() again (run2, run3, ...) until no part is open; a claim left by the killed
    run is waited out (it goes stale). Returns the runs' errors."""
    errors: list[str] = []
    deadline = time.monotonic() + 60
    number = 2
    while view.open_parts(parent_id) and time.monotonic() < deadline:
        try:
            logged_dispatch(config, parent_id, str(log), f"run{number}")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.3)
        number += 1
    return errors


def _assert_only_parts_executing_at_the_kill_ran_again(
    log: Path, view: ServerView, parent_id: str, planned: int
) -> None:
    runs = read_log(str(log))
    first = runs["run1"]
    for name, run in runs.items():
        twice = {job: n for job, n in run.started.items() if n > 1}
        assert not twice, f"handlers ran twice within {name}: {twice}"
    later = set().union(*(set(run.started) for name, run in runs.items() if name != "run1"))
    both = set(first.started) & later
    executing_at_kill = set(first.started) - first.ended
    assert both <= executing_at_kill, (
        f"{len(both - executing_at_kill)} parts completed by run 1 ran again"
    )
    statuses = view.part_statuses(parent_id)
    assert len(statuses) == planned
    assert Counter(statuses.values()) == {"complete": planned}
    ran = set().union(*(set(run.started) for run in runs.values()))
    assert set(statuses) <= ran, "a part completed without its handler running"
    completed = view.events(parent_id, "job:parts-completed")
    assert len(completed) == 1
    assert payload_counts(completed[0]) == server_counts(statuses)


def test_kill_9_of_the_dispatcher_loses_nothing_and_reruns_only_executing_parts(
    chaos_server: EmbeddedServer, direct: Client, tmp_path: Path
) -> None:
    assert chaos_server.sheet_id is not None
    view = ServerView(direct)
    parent_id, plan = make_parent(direct, chaos_server.sheet_id, batch=8)
    log = tmp_path / "runs.log"
    env = _env(URL=chaos_server.url, TOKEN=chaos_server.token, PARENT=parent_id, LOG=str(log))
    proc = subprocess.Popen([sys.executable, "-c", WORKER], env=env, text=True)
    try:
        _wait_for_ends(log, 30, alive=proc)
        proc.kill()  # SIGKILL: parts it was running stay executing on the server
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 30 <= len(read_log(str(log))["run1"].ended) < len(plan)

    config = ClientConfig(chaos_server.url, chaos_server.token)
    errors = _resume(config, parent_id, log, view)
    assert not view.open_parts(parent_id), errors
    _assert_only_parts_executing_at_the_kill_ran_again(log, view, parent_id, len(plan))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serve(
    db: Path, port: int, token: str, *extra: str
) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """``splitkit serve`` on ``db`` and ``port``; yields the process and what it printed."""
    command = [sys.executable, "-u", "-m", "splitkit.cli", "serve"]
    command += ["--db", str(db), "--port", str(port), "--token", token, *extra]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=_env())
    try:
        said: dict[str, str] = {}
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Ctrl-C"):
                break
            key, _, value = line.strip().partition("  ")
            if value:
                said[key.strip()] = value.strip()
        else:
            raise AssertionError(f"splitkit serve exited with {proc.wait()}")
        yield proc, said
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def test_kill_9_of_the_server_loses_nothing_and_reruns_only_executing_parts(
    tmp_path: Path,
) -> None:
    db, port, token = tmp_path / "served.db", _free_port(), "chaos-token"
    log = tmp_path / "runs.log"
    with _serve(db, port, token, "--records", str(RECORDS)) as (server, said):
        url, sheet_id = said["splitkit server at"], said["sheet id"]
        config = ClientConfig(url, token, retry=CHAOS_RETRY)
        with Client.from_config(config) as client:
            parent_id, plan = make_parent(client, sheet_id, batch=8)
        handle = logged_dispatch(config, parent_id, str(log), "run1", wait=False)
        _wait_for_ends(log, 30)
        server.kill()  # SIGKILL on a file database: no clean shutdown
        server.wait(10)
    with _serve(db, port, token) as (_restarted, said_again):
        assert said_again["splitkit server at"] == url
        with suppress(Exception):  # the run may end with its own error; parts are checked
            handle.wait(120)
        with Client.from_config(config) as client:
            view = ServerView(client)
            assert client.get_counts(sheet_id).total == RECORDS  # nothing lost by the kill
            first = handle.outcomes
            this_run = first[~first["previous_run"].astype(bool)]
            assert set(this_run["status"]) <= {"completed", "pending"}, Counter(this_run["status"])
            errors = _resume(config, parent_id, log, view)
            assert not view.open_parts(parent_id), errors
            _assert_only_parts_executing_at_the_kill_ran_again(log, view, parent_id, len(plan))
