"""One dispatcher per parent across processes: the claim in the parent job's metadata.

Two processes (real interpreters) on one parent of the session's embedded server, over real
HTTP: the second is refused with a message naming the holder, and no part's handler runs
twice. A stale claim is taken over, a released one lets the next run in, a run whose claim
is taken over starts no new part, and the parent's other metadata keys survive all of it.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import splitkit
from splitkit import AsyncClient, Client, Part, dispatch
from splitkit.engine import ClaimLostError, ClaimPolicy, ParentClaimedError
from splitkit.engine.claim import ParentClaim
from splitkit.engine.claim_record import CLAIM_KEY, machine_id

# Short delays keep the tests fast; the two-process race uses the defaults.
QUICK = ClaimPolicy(heartbeat_s=0.2, verify_s=0.2)

WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from splitkit import ClientConfig, dispatch
    from splitkit.engine import ParentClaimedError

    def handler(part):
        with open(os.environ["LOG"], "a") as log:
            log.write(f"{part.index} {os.getpid()}\\n")
        time.sleep(0.05)

    config = ClientConfig(os.environ["URL"], os.environ["TOKEN"])
    go = Path(os.environ["GO"])
    Path(os.environ["READY"]).touch()  # imported: wait for the start signal
    while not go.exists():
        time.sleep(0.002)
    try:
        dispatch(
            config, os.environ["PARENT"], handler, concurrency=2, progress=False, wait=True,
            claim=os.environ["CLAIM"] == "on",
        )
    except ParentClaimedError as exc:
        print(f"REFUSED {exc}", flush=True)
        sys.exit(3)
    print("DONE", flush=True)
    """
)


@pytest.fixture
def worker(server, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a dispatching process on a parent; it waits for `tmp_path/go` before it starts."""
    procs: list[subprocess.Popen[str]] = []
    root = str(Path(splitkit.__file__).resolve().parents[1])  # this worktree's splitkit

    def start(parent_id: str, log: Path, *, name: str, claim: bool = True) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "PYTHONPATH": root,
            "URL": server.url,
            "TOKEN": server.token,
            "PARENT": parent_id,
            "LOG": str(log),
            "GO": str(tmp_path / "go"),
            "READY": str(tmp_path / f"ready-{name}"),
            "CLAIM": "on" if claim else "off",
        }
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _wait_for(condition: Callable[[], bool], what: str, limit_s: float = 60) -> None:
    """Poll until `condition()`; the limit only keeps a broken run from hanging the suite."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def _claim(client: Client, parent_id: str) -> Any:
    return client.get_job(parent_id).metadata.get(CLAIM_KEY)


def _runs(log: Path) -> list[tuple[int, int]]:
    """(part index, pid) of every handler call written to `log`."""
    if not log.exists():
        return []
    return [
        (int(i), int(p)) for i, p in (line.split() for line in log.read_text().split("\n") if line)
    ]


def _foreign_claim(*, heartbeat_age_s: float, since_age_s: float = 600) -> dict[str, Any]:
    """A claim as another machine's run writes it, with a heartbeat `heartbeat_age_s` old."""
    now = datetime.now(UTC)

    def iso(value: datetime) -> str:
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return {
        "host": "elsewhere",
        "pid": 4242,
        "run": "r_elsewhere",
        "machine": "elsewhere/another-boot",
        "since": iso(now - timedelta(seconds=since_age_s)),
        "heartbeat": iso(now - timedelta(seconds=heartbeat_age_s)),
        "heartbeat_s": 10.0,
        "stale_after_s": 30.0,
    }


# -- two processes -------------------------------------------------------------------------
def test_two_processes_started_together_run_each_part_once(
    client: Client, split_job, worker, tmp_path: Path
) -> None:
    parent_id, parts = split_job(batch_size=33, total=1980)
    assert len(parts) == 60
    log = tmp_path / "handlers.log"
    procs = [worker(parent_id, log, name=name) for name in ("a", "b")]
    _wait_for(
        lambda: all((tmp_path / f"ready-{n}").exists() for n in "ab"), "both processes to start"
    )
    (tmp_path / "go").touch()  # both leave their wait loop at once
    results = [(proc.wait(120), proc.communicate()[0]) for proc in procs]

    codes = sorted(code for code, _ in results)
    assert codes == [0, 3], results  # one ran, the other was refused
    winner = next(proc for proc, (code, _) in zip(procs, results, strict=True) if code == 0)
    refusal = next(out for code, out in results if code == 3)
    assert f"is being dispatched by {socket.gethostname()}:{winner.pid} (run r_" in refusal
    assert "since" in refusal and "last heartbeat" in refusal and "taken over" in refusal

    runs = _runs(log)
    assert {pid for _, pid in runs} == {winner.pid}  # the refused one ran no handler
    times = Counter(index for index, _ in runs)
    assert sorted(times) == list(range(60)) and set(times.values()) == {1}, times
    assert {job.status for job in client.list_parts(parent_id)} == {"complete"}
    assert _claim(client, parent_id) is None  # released by the winner


def test_a_second_process_started_while_a_run_goes_on_is_refused(
    client: Client, split_job, worker, tmp_path: Path
) -> None:
    parent_id, _ = split_job(batch_size=100, total=1000)  # 10 parts
    first_started = threading.Event()
    go_on = threading.Event()
    ran: list[int] = []

    def handler(part: Part) -> None:
        ran.append(part.index)
        first_started.set()
        go_on.wait(60)  # the first run is busy while the second process tries

    handle = dispatch(
        client, parent_id, handler, concurrency=1, progress=False, wait=False, claim=QUICK
    )
    try:
        assert first_started.wait(60)
        log = tmp_path / "second.log"
        (tmp_path / "go").touch()
        second = worker(parent_id, log, name="second")
        code = second.wait(120)
        out = second.communicate()[0]
    finally:
        go_on.set()
    outcomes = handle.wait(60)

    assert code == 3, out
    assert f"parent {parent_id} is being dispatched by {socket.gethostname()}:{os.getpid()}" in out
    assert _runs(log) == []
    assert sorted(ran) == list(range(10))
    assert (outcomes["status"] == "completed").all()


# -- in this process, against claims written by hand -----------------------------------------
def test_a_live_claim_of_another_machine_refuses_the_run_and_changes_nothing(
    client: Client, split_job
) -> None:
    parent_id, _ = split_job(batch_size=500, total=1000)
    theirs = _foreign_claim(heartbeat_age_s=4)
    client.update_job(parent_id, metadata={"team": "ops", CLAIM_KEY: theirs})
    ran: list[int] = []

    with pytest.raises(ParentClaimedError) as refused:
        dispatch(client, parent_id, lambda part: ran.append(part.index), progress=False)

    message = str(refused.value)
    assert message.startswith(
        f"parent {parent_id} is being dispatched by elsewhere:4242 (run r_elsewhere) since "
    )
    heartbeat = re.search(r"UTC, last heartbeat (\d+) s ago; wait for it, or stop it;", message)
    assert heartbeat is not None and int(heartbeat[1]) >= 4, message
    assert message.endswith("a claim whose heartbeat is older than 30 s is taken over")
    assert refused.value.holder.run == "r_elsewhere"
    assert ran == []
    assert {job.status for job in client.list_parts(parent_id)} == {"ready"}
    assert client.get_job(parent_id).metadata == {"team": "ops", CLAIM_KEY: theirs}


def test_a_stale_claim_is_taken_over_and_the_users_metadata_survives(
    client: Client, split_job
) -> None:
    parent_id, _ = split_job(batch_size=250, total=1000)
    mine = {"team": "ops", "batch": {"source": "s3://bucket/x.csv", "rows": [1, 2]}}
    client.update_job(parent_id, metadata={**mine, CLAIM_KEY: _foreign_claim(heartbeat_age_s=45)})
    seen: list[dict[str, Any]] = []

    def handler(part: Part) -> None:
        seen.append(dict(client.get_job(parent_id).metadata))  # the parent while parts run

    outcomes = dispatch(client, parent_id, handler, progress=False, claim=QUICK).outcomes

    assert (outcomes["status"] == "completed").all() and len(seen) == 4
    for metadata in seen:
        assert metadata[CLAIM_KEY]["pid"] == os.getpid()  # ours now, beside the user's keys
        assert metadata[CLAIM_KEY]["host"] == socket.gethostname()
        assert {k: v for k, v in metadata.items() if k != CLAIM_KEY} == mine
    assert client.get_job(parent_id).metadata == {**mine, CLAIM_KEY: None}  # released


@pytest.mark.parametrize("left_by", ["a process that is gone", "this process"])
def test_a_claim_left_on_this_machine_is_taken_over_at_once(
    client: Client, split_job, left_by: str
) -> None:
    """A killed run resumed on the same machine does not wait for its claim to go stale."""
    parent_id, _ = split_job(batch_size=500, total=1000)
    if left_by == "this process":
        pid = os.getpid()  # a run of ours whose release did not get through
    else:
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait(60)
        pid = gone.pid
    left = {**_foreign_claim(heartbeat_age_s=1), "host": socket.gethostname()}
    left |= {"pid": pid, "machine": machine_id(), "run": "r_left"}
    client.update_job(parent_id, metadata={CLAIM_KEY: left})

    outcomes = dispatch(client, parent_id, lambda p: None, progress=False, claim=QUICK).outcomes

    assert (outcomes["status"] == "completed").all()
    assert client.get_job(parent_id).metadata == {CLAIM_KEY: None}


def test_the_claim_is_released_when_the_run_ends_or_is_canceled(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=100, total=1000)
    release = threading.Event()

    def slow(part: Part) -> None:
        release.wait(60)

    handle = dispatch(
        client, parent_id, slow, concurrency=1, progress=False, wait=False, claim=QUICK
    )
    try:
        _wait_for(lambda: handle.state.running == 1, "the first part to start")
        held = _claim(client, parent_id)
        assert held is not None and held["pid"] == os.getpid()
        handle.cancel()
    finally:
        release.set()
    handle.wait(60)
    assert _claim(client, parent_id) is None  # released on cancel too

    # A later run on the same parent goes ahead and runs what the canceled one left.
    client.update_job(parent_id, metadata={CLAIM_KEY: None, "note": "kept"})
    for job in client.list_parts(parent_id):
        if job.status == "canceled":
            client.retry_job(job.id)
    ran: list[int] = []
    again = dispatch(client, parent_id, lambda p: ran.append(p.index), progress=False, claim=QUICK)
    assert len(ran) == 9 and (again.outcomes["status"] == "completed").all()
    assert client.get_job(parent_id).metadata == {CLAIM_KEY: None, "note": "kept"}


def test_a_run_whose_claim_is_taken_over_starts_no_new_part(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=100, total=1000)
    release = threading.Event()
    ran: list[int] = []

    def handler(part: Part) -> None:
        ran.append(part.index)
        release.wait(60)

    handle = dispatch(
        client, parent_id, handler, concurrency=1, progress=False, wait=False, claim=QUICK
    )
    theirs = _foreign_claim(heartbeat_age_s=0)
    try:
        _wait_for(lambda: handle.state.running == 1, "the first part to start")
        first = _claim(client, parent_id)
        _wait_for(
            lambda: _claim(client, parent_id)["heartbeat"] > first["heartbeat"], "a heartbeat"
        )
        assert _claim(client, parent_id)["since"] == first["since"]  # renewed, not re-taken

        client.update_job(parent_id, metadata={CLAIM_KEY: theirs})
        _wait_for(lambda: handle.controls.stopped, "the run to notice")
    finally:
        release.set()
    with pytest.raises(ClaimLostError) as lost:
        handle.wait(60)

    assert "taken over by elsewhere:4242 (run r_elsewhere)" in str(lost.value)
    assert ran == [0]  # the running part finished; no other started
    outcomes = handle.outcomes.set_index("part")
    assert outcomes.loc[0, "status"] == "completed"
    rest = outcomes.drop(index=0)
    assert (rest["status"] == "pending").all()
    assert rest["error"].str.startswith("not started: its claim was taken over by elsewhere").all()
    # The rest stay open for the holder (not canceled), and its claim stays.
    statuses = {job.part: job.status for job in client.list_parts(parent_id)}
    assert statuses[0] == "complete" and set(statuses.values()) - {"complete"} == {"ready"}
    assert _claim(client, parent_id) == theirs


class WritesAfterBothReads(httpx.AsyncBaseTransport):
    """The real HTTP transport, except that each PATCH waits until two are on their way:
    both claimants have read the parent (and found no claim) before either writes."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._writes = 0
        self._both = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH" and self._writes < 2:  # later writes (release) go on
            self._writes += 1
            if self._writes == 2:
                self._both.set()
            await asyncio.wait_for(self._both.wait(), 30)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_a_claim_wiped_by_a_metadata_write_is_renewed_and_the_run_goes_on(
    client: Client, split_job
) -> None:
    parent_id, _ = split_job(batch_size=250, total=1000)
    release = threading.Event()

    def handler(part: Part) -> None:
        release.wait(60)

    handle = dispatch(
        client, parent_id, handler, concurrency=1, progress=False, wait=False, claim=QUICK
    )
    try:
        _wait_for(lambda: handle.state.running == 1, "the first part to start")
        client.update_job(parent_id, metadata={"note": "a user's write, unaware of the claim"})
        _wait_for(lambda: _claim(client, parent_id) is not None, "the claim to be renewed")
        assert _claim(client, parent_id)["pid"] == os.getpid()
    finally:
        release.set()
    assert (handle.wait(60)["status"] == "completed").all()
    assert client.get_job(parent_id).metadata == {
        "note": "a user's write, unaware of the claim",
        CLAIM_KEY: None,
    }


def test_two_claims_written_together_leave_exactly_one_holder(
    server, client: Client, split_job
) -> None:
    """The verify step: both read no claim, both write; the last write wins and both see it."""
    parent_id, _ = split_job(batch_size=500, total=1000)

    async def race() -> list[ParentClaim | BaseException]:
        transport = WritesAfterBothReads()
        async with AsyncClient(server.url, server.token, transport=transport) as api:

            async def take() -> ParentClaim:
                async with ParentClaim(api, parent_id, QUICK) as claim:
                    assert _claim(client, parent_id)["run"] == claim.run_id
                    return claim

            return await asyncio.gather(take(), take(), return_exceptions=True)

    results = asyncio.run(race())
    won = [r for r in results if isinstance(r, ParentClaim)]
    refused = [r for r in results if isinstance(r, ParentClaimedError)]
    assert len(won) == 1 and len(refused) == 1, results
    assert refused[0].holder.run == won[0].run_id
    assert _claim(client, parent_id) is None  # the winner released it on leaving


def test_claim_must_be_a_bool_or_a_policy(client: Client, split_job) -> None:
    with pytest.raises(TypeError, match="claim must be True, False or a ClaimPolicy, got 'yes'"):
        dispatch(client, "us_jb_x", lambda p: None, claim="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stale_after_s must be longer than heartbeat_s"):
        ClaimPolicy(heartbeat_s=10, stale_after_s=5)
    with pytest.raises(ValueError, match="heartbeat_s must be"):
        ClaimPolicy(heartbeat_s=0)
