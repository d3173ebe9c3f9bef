"""Interrupting a run stops it here and destroys no work: Ctrl-C (SIGINT) during a blocking
`dispatch()` or `handle.wait()` lets the running parts finish, starts no new one, cancels
nothing on the server, and `dispatch()` again runs the rest. `cancel()` is the explicit
server-side cancel (tests/pipeline/test_end_to_end.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from splitkit import Client, Part, dispatch

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from splitkit import ClientConfig, dispatch

    # As a terminal delivers Ctrl-C, even when started where SIGINT is ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def handler(part):
        with open(os.environ["LOG"], "a") as log:
            log.write(f"{part.index}\\n")
        time.sleep(1.0)  # 20 parts two at a time: ~10 s, far longer than Ctrl-C takes
        return "first run"

    config = ClientConfig(os.environ["URL"], os.environ["TOKEN"])
    if sys.argv[1] == "dispatch":
        dispatch(config, os.environ["PARENT"], handler, concurrency=2, progress=False, wait=True)
    else:
        run = dispatch(config, os.environ["PARENT"], handler, concurrency=2, progress=False,
                       wait=False)
        run.wait()
    """
)


def started(log: Path) -> set[int]:
    if not log.exists():
        return set()
    return {int(line) for line in log.read_text().split()}


@pytest.mark.parametrize("blocking", ["dispatch", "wait"])
def test_ctrl_c_stops_the_run_here_and_dispatch_again_finishes_it(
    server, client: Client, split_job, tmp_path: Path, blocking: str
) -> None:
    parent_id, _ = split_job(batch_size=100, total=2000)  # 20 slow parts
    log = tmp_path / "started.log"
    env = {
        **os.environ,
        "URL": server.url,
        "TOKEN": server.token,
        "PARENT": parent_id,
        "LOG": str(log),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, blocking],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(started(log)) < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no part started within 60 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "KeyboardInterrupt" in stderr, stderr

    ran = started(log)
    on_server = {job.part: job.status for job in client.list_parts(parent_id)}
    assert "canceled" not in on_server.values()
    # Every part that started finished and was recorded; none other started.
    assert {p for p, s in on_server.items() if s == "complete"} == ran
    assert {p for p, s in on_server.items() if s != "complete"} == set(range(20)) - ran
    assert set(on_server.values()) <= {"complete", "ready"}
    assert len(ran) < 20

    calls: Counter[int] = Counter()
    lock = threading.Lock()

    def count(part: Part) -> None:
        with lock:
            calls[part.index] += 1

    again = dispatch(client, parent_id, count, concurrency=4, progress=False, wait=True)
    assert set(again.outcomes["status"]) == {"completed"}
    assert set(calls) == set(range(20)) - ran and set(calls.values()) == {1}
    assert {job.status for job in client.list_parts(parent_id)} == {"complete"}


def test_stop_leaves_the_rest_open_on_the_server(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=100, total=2000)  # 20 parts
    first = threading.Event()
    release = threading.Event()

    def handler(part: Part) -> None:
        first.set()
        release.wait(30)

    handle = dispatch(client, parent_id, handler, concurrency=2, progress=False, wait=False)
    assert first.wait(30)
    handle.stop()
    release.set()
    outcomes = handle.wait(30)
    tally = outcomes["status"].value_counts().to_dict()
    assert tally.get("completed", 0) == 2 and tally.get("pending", 0) == 18
    assert outcomes.loc[outcomes["status"] == "pending", "error"].isna().all()
    jobs = {job.id: job.status for job in client.list_parts(parent_id)}
    assert sorted(Counter(jobs.values()).items()) == [("complete", 2), ("ready", 18)]
