"""Parts on a real Dask cluster started by the dask CLI (see conftest.py): the whole flow
(split, dispatch, settle) with a worker killed mid-part, a coordinator killed mid-run and
resumed, the token kept out of every task, repr and log, and a page a worker cannot read.

Each handler call leaves start/end marks (cluster_handlers.py) naming the process that ran
it, so the tests see which worker ran what, and how often.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from cli_cluster import RECORDS, Cluster
from cluster_handlers import TaskRecorder, calls, marked, recorded

from splitkit import (
    Client,
    DaskExecutor,
    dispatch,
    plan_parts,
    settle,
    split_parent,
    start_parent_job,
)
from splitkit.server import EmbeddedServer

BATCH = 50  # 40 parts of the 2,000 records
HANDLER_S = 0.4


def new_parent(client: Client, server: EmbeddedServer) -> str:
    parent = start_parent_job(client, server.sheet_id)
    split_parent(client, parent.id, plan_parts(RECORDS, batch_size=BATCH))
    return parent.id


def completions(client: Client, job_ids: set[str]) -> Counter[str]:
    """How many job:completed events each of `job_ids` has on the server."""
    seen: Counter[str] = Counter()
    page = 1
    while True:
        events = client.list_events(
            domain="job", topic="job:completed", include_acknowledged=True,
            page_size=1000, page_number=page,
        )  # fmt: skip
        for event in events:
            job_id = (event.context or {}).get("jobId")
            if job_id in job_ids:
                seen[job_id] += 1
        if len(events) < 1000:
            return seen
        page += 1


def wait_until(check, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_worker_killed_mid_part_has_its_part_rerun_elsewhere_and_every_part_ends_once(
    cluster: Cluster, cluster_server: EmbeddedServer, client: Client, tmp_path: Path
) -> None:
    parent_id = new_parent(client, cluster_server)
    marks = tmp_path / "marks"
    marks.mkdir()
    victim = cluster.workers["w2"].pid
    with DaskExecutor(cluster.address) as executor:
        executor.client.register_plugin(TaskRecorder(), name=TaskRecorder.name)
        addresses = {pid: address for address, pid in executor.client.run(os.getpid).items()}
        handle = dispatch(
            client, parent_id, functools.partial(marked, str(marks), HANDLER_S),
            executor=executor, concurrency=4, progress=False, wait=False,
        )  # fmt: skip

        def victim_is_mid_part() -> bool:
            ends = calls(marks, "end")
            mid = {j for j, p in calls(marks) if p == victim} - {j for j, p in ends}
            return len(ends) >= 4 and bool(mid)

        wait_until(victim_is_mid_part, "worker w2 to be running a part")
        cluster.kill("w2")
        handle.wait()
        tasks = executor.client.run_on_scheduler(recorded)
        logs = [executor.client.get_scheduler_logs(), executor.client.get_worker_logs()]
        shown = repr(executor)

    # Every part completed in this run, once on the server; the parent settles once.
    outcomes = handle.outcomes
    assert len(outcomes) == RECORDS // BATCH
    assert set(outcomes["status"]) == {"completed"}
    job_ids = set(outcomes["job_id"])
    assert completions(client, job_ids) == Counter({job_id: 1 for job_id in job_ids})
    assert {job.status for job in client.list_parts(parent_id)} == {"complete"}
    assert settle(client, parent_id, outcomes).changed

    # The parts the victim was running when killed ran again on the other worker.
    starts, ends = calls(marks), calls(marks, "end")
    cut = {j for j, p in starts if p == victim} - {j for j, p in ends if p == victim}
    assert cut, "the victim was killed mid-part"
    survivor = cluster.workers["w1"].pid
    assert {j for j, p in ends if p == survivor} >= cut
    placed = dict(zip(outcomes["job_id"], outcomes["dask_worker"], strict=True))
    assert {placed[j] for j in cut} == {addresses[survivor]}
    assert set(placed.values()) == {addresses[survivor], addresses[victim]}
    # A handler ran twice only for a part the victim had taken (at least once, ended once).
    twice = {j for j, n in Counter(j for j, _ in starts).items() if n > 1}
    assert twice <= {j for j, p in starts if p == victim}

    # The token is in no task key, task repr, task spec, log or repr.
    token = cluster_server.token
    assert tasks and all(key.startswith("splitkit-part-") for key, *_ in tasks)
    for key, task, spec, raw in tasks:
        assert token not in key and token not in task and token not in spec
        assert token.encode() not in raw
    assert token not in repr(logs) and token not in cluster.log_text() and token not in shown
    assert token not in outcomes.to_csv()


COORDINATOR = textwrap.dedent(
    """
    import functools, os
    from cluster_handlers import marked
    from splitkit import ClientConfig, DaskExecutor, dispatch

    config = ClientConfig(os.environ["URL"], os.environ["TOKEN"])
    handler = functools.partial(marked, os.environ["MARKS"], float(os.environ["HANDLER_S"]))
    with DaskExecutor(os.environ["SCHEDULER"], credentials="env") as executor:
        dispatch(config, os.environ["PARENT"], handler, executor=executor, concurrency=4,
                 progress=False, wait=True)
    """
)


def test_a_coordinator_killed_mid_run_is_resumed_by_dispatch_and_every_part_ends_once(
    cluster: Cluster, cluster_server: EmbeddedServer, client: Client, tmp_path: Path
) -> None:
    parent_id = new_parent(client, cluster_server)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {
        **cluster.env,
        "URL": cluster_server.url,
        "TOKEN": cluster_server.token,
        "PARENT": parent_id,
        "MARKS": str(marks),
        "HANDLER_S": str(HANDLER_S),
        "SCHEDULER": cluster.address,
    }
    coordinator = subprocess.Popen([sys.executable, "-c", COORDINATOR], env=env)
    try:
        wait_until(lambda: len(calls(marks, "end")) >= 6, "the first coordinator's parts")
    finally:
        coordinator.kill()  # SIGKILL: no claim released, no part ended on the way out
        coordinator.wait(10)
    ended_at_kill = {j.id for j in client.list_parts(parent_id) if j.status == "complete"}
    assert 0 < len(ended_at_kill) < RECORDS // BATCH

    # A new coordinator takes over at once (the holder's pid is gone on this machine),
    # its workers read credentials from their own environment.
    with DaskExecutor(cluster.address, credentials="env") as executor:
        handle = dispatch(
            client, parent_id, functools.partial(marked, str(marks), HANDLER_S),
            executor=executor, concurrency=4, progress=False, wait=True,
        )  # fmt: skip
    outcomes = handle.outcomes
    assert set(outcomes["status"]) == {"completed"}
    assert set(outcomes.loc[outcomes["previous_run"], "job_id"]) >= ended_at_kill
    job_ids = set(outcomes["job_id"])
    assert completions(client, job_ids) == Counter({job_id: 1 for job_id in job_ids})
    assert settle(client, parent_id, outcomes).changed


def test_a_page_a_worker_cannot_read_leaves_the_part_open(cluster: Cluster, tmp_path: Path) -> None:
    # The workers' environment names the module's server; this server's sheet is not there.
    with (
        EmbeddedServer(db_path=tmp_path / "other.db", records=100) as other,
        Client(other.url, other.token, environment_id=other.environment_id) as client,
        DaskExecutor(cluster.address, credentials="env") as executor,
    ):
        parent = start_parent_job(client, other.sheet_id)
        split_parent(client, parent.id, plan_parts(100, batch_size=50))
        handle = dispatch(client, parent.id, lambda part: None, executor=executor,
                          progress=False, wait=True)  # fmt: skip
        outcomes = handle.outcomes
        assert set(outcomes["status"]) == {"pending"}
        assert all("could not read the part's records" in e for e in outcomes["error"])
        assert {job.status for job in client.list_parts(parent.id)} == {"executing"}


def test_a_handler_that_cannot_be_pickled_is_refused_before_any_part(
    cluster: Cluster, cluster_server: EmbeddedServer, client: Client
) -> None:
    lock = threading.Lock()
    parent_id = new_parent(client, cluster_server)
    with DaskExecutor(cluster.address) as executor, pytest.raises(TypeError, match="pickled"):
        dispatch(client, parent_id, lambda part: lock, executor=executor, progress=False)
    assert {job.status for job in client.list_parts(parent_id)} == {"ready"}
