"""Parts on a real Dask cluster started by the dask CLI (see conftest.py): the whole flow
(split, dispatch, settle) with a worker killed mid-part, a coordinator killed mid-run and
resumed, the token kept out of every task, repr and log, and a page a worker cannot read.

Each handler call leaves start/end marks (cluster_handlers.py) naming the process that ran
it, so the tests see which worker ran what, and how often.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from cli_cluster import RECORDS, Cluster
from cluster_handlers import TaskRecorder, calls, fails_every_third, marked, recorded, sleeps

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


@pytest.mark.parametrize("parts_per_task", [1, 4])
def test_a_worker_killed_mid_part_has_its_part_rerun_elsewhere_and_every_part_ends_once(
    cluster: Cluster,
    cluster_server: EmbeddedServer,
    client: Client,
    tmp_path: Path,
    parts_per_task: int,
) -> None:
    """With parts_per_task=4 the victim's whole group reruns elsewhere (the parts it had
    already run too: their results died with it), and still every part ends once."""
    parent_id = new_parent(client, cluster_server)
    marks = tmp_path / "marks"
    marks.mkdir()
    victim = cluster.workers["w2"].pid
    with DaskExecutor(cluster.address, parts_per_task=parts_per_task) as executor:
        executor.client.register_plugin(TaskRecorder(), name=TaskRecorder.name)
        addresses = {pid: address for address, pid in executor.client.run(os.getpid).items()}
        handle = dispatch(
            client, parent_id, functools.partial(marked, str(marks), HANDLER_S),
            executor=executor, concurrency=4 * parts_per_task, progress=False, wait=False,
        )  # fmt: skip

        def victim_is_mid_part() -> bool:
            ends = calls(marks, "end")
            mid = {j for j, p in calls(marks) if p == victim} - {j for j, p in ends}
            # Past its first task's end by a part: that task's result has left the victim.
            victim_ends = sum(p == victim for _, p in ends)
            return len(ends) >= 4 and victim_ends > parts_per_task and bool(mid)

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
    # handler_s is the handler's own time on its worker: not the wait for a free worker
    # (concurrency 4 x parts_per_task on 2 workers) nor for the rest of its group.
    assert outcomes["handler_s"].max() < 2 * HANDLER_S, outcomes["handler_s"].describe()
    # A handler ran twice only for a part the victim had taken (at least once, ended once).
    twice = {j for j, n in Counter(j for j, _ in starts).items() if n > 1}
    assert twice <= {j for j, p in starts if p == victim}

    # The token is in no task key, task repr, task spec, log or repr.
    token = cluster_server.token
    prefix = "splitkit-part-" if parts_per_task == 1 else "splitkit-parts-"
    assert tasks and all(key.startswith(prefix) for key, *_ in tasks)
    if parts_per_task > 1:  # groups, not one task a part (the rerun group is one more)
        assert len(tasks) <= len(outcomes) // parts_per_task + 4
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


def test_grouped_parts_end_once_each_with_their_own_results_and_errors(
    cluster: Cluster, cluster_server: EmbeddedServer, client: Client
) -> None:
    parent_id = new_parent(client, cluster_server)
    with DaskExecutor(cluster.address, parts_per_task=5) as executor:
        executor.client.register_plugin(TaskRecorder(), name=TaskRecorder.name)
        handle = dispatch(client, parent_id, fails_every_third, executor=executor,
                          concurrency=20, progress=False, wait=True)  # fmt: skip
        keys = [key for key, *_ in executor.client.run_on_scheduler(recorded)]
    outcomes = handle.outcomes.set_index("part")
    # 40 parts in groups of up to 5: a handful of tasks (a group leaves when full, or
    # 20 ms after its first part), not one a part.
    assert len(outcomes) == 40 and len(keys) < 20
    assert all(key.startswith("splitkit-parts-") for key in keys)
    # Part 1's result cannot be pickled back: that part fails, saying so, not its group.
    assert outcomes.loc[1, "status"] == "failed"
    assert "could not be sent back from the Dask worker" in outcomes.loc[1, "error"]
    outcomes = outcomes.drop(index=1)
    bad = outcomes.index % 3 == 0
    # A part's error fails that part alone, with the handler's own frame in its traceback;
    # the other parts of its group complete with their own results.
    assert set(outcomes.loc[bad, "status"]) == {"failed"}
    assert all(
        outcomes.loc[i, "error"] == f"ValueError: part {i} is bad" for i in outcomes.index[bad]
    )
    assert all("in fails_every_third" in tb for tb in outcomes.loc[bad, "traceback"])
    assert set(outcomes.loc[~bad, "status"]) == {"completed"}
    assert all(
        re.fullmatch(rf"part {i}: valid=\d+", outcomes.loc[i, "message"])
        for i in outcomes.index[~bad]
    )
    assert outcomes["dask_worker"].notna().all()  # failed parts name their worker too
    job_ids = set(outcomes.loc[~bad, "job_id"])
    assert completions(client, job_ids) == Counter({job_id: 1 for job_id in job_ids})


def test_a_group_whose_parts_all_timed_out_has_its_task_cancelled(
    cluster: Cluster, cluster_server: EmbeddedServer, client: Client
) -> None:
    parent = start_parent_job(client, cluster_server.sheet_id)
    split_parent(client, parent.id, plan_parts(100, batch_size=50), check_counts=False)

    def splitkit_tasks(dask_scheduler: object) -> list[str]:
        tasks = dask_scheduler.tasks  # type: ignore[attr-defined]
        return [str(key) for key in tasks if str(key).startswith("splitkit-")]

    with DaskExecutor(cluster.address, parts_per_task=2) as executor:
        handle = dispatch(client, parent.id, functools.partial(sleeps, 3.0), executor=executor,
                          timeout=0.5, progress=False, wait=True)  # fmt: skip
        # Nobody waits for the group any more: its task is cancelled at once (the scheduler
        # forgets it; the worker's thread still sleeps out the handler call it is in).
        left = executor.client.run_on_scheduler(splitkit_tasks)
    outcomes = handle.outcomes
    assert set(outcomes["status"]) == {"failed"}
    # What counted: the message says so (here the group's other part).
    assert all(
        e.startswith("PartTimeoutError: handler timed out after 0.5 s on Dask: counted from")
        and "whole group" in e
        for e in outcomes["error"]
    )
    assert "dask_worker" in outcomes.columns  # a Dask run's column, even if no part ended
    assert left == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"parts_per_task": 0}, "parts_per_task must be an integer from 1 to 1,000, got 0"),
        ({"parts_per_task": "4"}, "parts_per_task must be an integer from 1 to 1,000"),
        ({"linger_s": -1}, "linger_s must be a number of seconds"),
    ],
)
def test_bad_group_settings_are_refused_before_any_cluster_starts(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        DaskExecutor(**kwargs)  # type: ignore[arg-type]


def test_parts_that_time_out_before_their_group_leaves_are_never_submitted(
    cluster: Cluster, cluster_server: EmbeddedServer, client: Client
) -> None:
    parent = start_parent_job(client, cluster_server.sheet_id)
    split_parent(client, parent.id, plan_parts(100, batch_size=50), check_counts=False)
    # Groups of 10 that wait 3 s for company; the 2 parts give up after 0.5 s.
    with DaskExecutor(cluster.address, parts_per_task=10, linger_s=3.0) as executor:
        executor.client.register_plugin(TaskRecorder(), name=TaskRecorder.name)
        handle = dispatch(client, parent.id, functools.partial(sleeps, 0.0), executor=executor,
                          timeout=0.5, progress=False, wait=True)  # fmt: skip
        # At once, not at the linger's end: the deserted group leaves its loop's open slot
        # (it stayed there, keyed by a loop that was closing).
        assert not executor._groups._open
        time.sleep(3.5)  # past the linger: the abandoned group must not leave then
        keys = [key for key, *_ in executor.client.run_on_scheduler(recorded)]
    assert set(handle.outcomes["status"]) == {"failed"}
    assert all("wait for its group to fill" in e for e in handle.outcomes["error"])
    assert keys == []
