"""A real Dask cluster for the cluster tests: `dask scheduler` and two `dask worker`
processes started by the dask CLI (no nanny: the process a test kills is the worker), all
on loopback, with one embedded server (its own database) for the module.

The workers have the server's URL and token in their environment (`FLATFILE_API_URL`,
`FLATFILE_API_KEY`), for runs with `DaskExecutor(credentials="env")`. Under CI a missing
`dask` CLI fails the tests: they never skip.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from cli_cluster import HERE, RECORDS, REPO, Cluster, dask_cli

from splitkit import Client
from splitkit.server import EmbeddedServer


@pytest.fixture(scope="module")
def cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    db_path = tmp_path_factory.mktemp("cluster") / "cluster.db"
    with EmbeddedServer(db_path=db_path, records=RECORDS) as running:
        yield running


@pytest.fixture(scope="module")
def dask_cluster(
    cluster_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("dask-logs")
    scheduler_file = logs / "scheduler.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE), os.environ.get("PYTHONPATH", "")]),
        "FLATFILE_API_URL": cluster_server.url,
        "FLATFILE_API_KEY": cluster_server.token,
        "FLATFILE_ENVIRONMENT_ID": cluster_server.environment_id,
    }
    scheduler = subprocess.Popen(
        [dask_cli(), "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(scheduler_file)],
        stdout=(logs / "scheduler.log").open("ab"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not scheduler_file.exists():
        if scheduler.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"dask scheduler did not start: {(logs / 'scheduler.log').read_text()}")
        time.sleep(0.1)
    time.sleep(0.2)  # the file is written whole, but give the writer its close
    import json

    address = json.loads(scheduler_file.read_text())["address"]
    cluster = Cluster(address=address, logs=logs, env=env, scheduler=scheduler)
    try:
        for name in ("w1", "w2"):
            cluster.start_worker(name)
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        for process in [*cluster.workers.values(), scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*cluster.workers.values(), scheduler]:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def cluster(dask_cluster: Cluster) -> Cluster:
    """The module's cluster with both workers up (a worker a test killed is restarted)."""
    for name, process in list(dask_cluster.workers.items()):
        if process.poll() is not None:
            dask_cluster.start_worker(name)
    dask_cluster.wait_for_workers(2)
    return dask_cluster


@pytest.fixture
def client(cluster_server: EmbeddedServer) -> Iterator[Client]:
    with Client(
        cluster_server.url, cluster_server.token, environment_id=cluster_server.environment_id
    ) as c:
        yield c
