"""A dispatch killed midway, started again, finishes only the rest: every part ends once.

Both runs' handlers log ``<run> start|end <part>`` to one file. Read together, the two runs
cover every part, no part starts twice within a run, and the parts that ran in both runs
are exactly those the first run had started but the server had not seen end at the kill.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from splitkit import Client, Part, dispatch, settle, summarize

WORKER = textwrap.dedent(
    """
    import os, sys, time
    from splitkit import ClientConfig, dispatch

    def log(what, part):
        with open(os.environ["LOG"], "a") as file:  # one write per line: a kill cuts no line
            file.write(f"first {what} {part.index}\\n")

    def handler(part):
        log("start", part)
        time.sleep(0.15)
        log("end", part)
        return "first run"

    config = ClientConfig(os.environ["URL"], os.environ["TOKEN"])
    dispatch(config, os.environ["PARENT"], handler, concurrency=2, progress=False, wait=True)
    """
)


def test_killed_dispatch_resumes_with_only_the_remaining_parts(
    server, client: Client, split_job, job_events, tmp_path: Path
) -> None:
    parent_id, _parts = split_job(batch_size=50, total=2000)  # 40 parts
    log = tmp_path / "handlers.log"
    env = {
        **os.environ,
        "URL": server.url,
        "TOKEN": server.token,
        "PARENT": parent_id,
        "LOG": str(log),
    }
    proc = subprocess.Popen([sys.executable, "-c", WORKER], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = sum(job.status == "complete" for job in client.list_parts(parent_id))
            if done >= 6:
                break
            assert proc.poll() is None, "the first run ended before it was killed"
            time.sleep(0.05)
        proc.kill()  # SIGKILL: no cleanup, parts may be left executing on the server
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()

    before = {job.id: job.status for job in client.list_parts(parent_id)}
    completed_before = {i for i, s in before.items() if s == "complete"}
    assert 6 <= len(completed_before) < 40

    index_of = {job.id: job.part for job in client.list_parts(parent_id)}
    executing_at_kill = {index_of[i] for i, s in before.items() if s == "executing"}
    ended_at_kill = {index_of[i] for i in completed_before}
    second_run: list[int] = []

    def handler(part: Part) -> str:
        second_run.append(part.index)
        with log.open("a") as file:
            file.write(f"second start {part.index}\n")
        return "second run"

    handle = dispatch(client, parent_id, handler, concurrency=4, progress=False, wait=True)
    outcomes = handle.outcomes
    by_job = outcomes.set_index("job_id")

    # Only the parts not completed by the first run ran again, each once.
    rerun = {row.job_id for row in outcomes.itertuples() if not row.previous_run}
    assert rerun == set(before) - completed_before
    assert len(second_run) == len(rerun) == len(set(second_run))
    assert by_job.loc[sorted(completed_before), "previous_run"].all()
    assert (outcomes["status"] == "completed").all()

    # The log of both runs: every part ran, and only those executing at the kill ran twice.
    starts: dict[str, list[int]] = {"first": [], "second": []}
    ends: list[int] = []
    for line in log.read_text().splitlines():
        run, what, index = line.split()
        (starts[run] if what == "start" else ends).append(int(index))
    first, second = set(starts["first"]), set(starts["second"])
    assert len(first) == len(starts["first"]) and len(second) == len(starts["second"])
    assert first | second == set(index_of.values())
    assert set(ends) <= first
    assert ended_at_kill <= first  # a part completed on the server had run its handler
    assert first & second == first - ended_at_kill  # started but not seen to end: again
    assert first - ended_at_kill <= executing_at_kill  # ... all of them executing at the kill
    assert second == set(index_of.values()) - ended_at_kill

    # On the server: every part completed exactly once, one parts-completed, one settle.
    events = job_events()
    completed_events = Counter(e.context.get("jobId") for e in events if e.topic == "job:completed")
    for job_id in before:
        assert completed_events[job_id] == 1, job_id
    parts_completed = [
        e
        for e in events
        if e.topic == "job:parts-completed" and e.context.get("jobId") == parent_id
    ]
    assert len(parts_completed) == 1

    first = settle(client, parent_id, summarize(outcomes))
    second = settle(client, parent_id, summarize(outcomes))
    assert first.changed and not second.changed
    assert client.get_job(parent_id).status == "complete"
    events = job_events("job:completed")
    assert (
        sum(1 for e in events if e.topic == "job:completed" and e.context.get("jobId") == parent_id)
        == 1
    )
