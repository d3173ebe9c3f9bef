"""A real Dask cluster for the cluster tests: `dask scheduler` and two `dask worker`
processes started by the dask CLI (no nanny: the process a test kills is the worker), all
on loopback, with one embedded server (its own database) for the module.

The workers have the server's URL and token in their environment (`FLATFILE_API_URL`,
`FLATFILE_API_KEY`), for runs with `DaskExecutor(credentials="env")`. Under CI a missing
`dask` CLI fails the tests: they never skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import distributed
import pytest

from splitkit import Client
from splitkit.server import EmbeddedServer

RECORDS = 2_000
HERE = Path(__file__).parent
REPO = HERE.parent.parent


def dask_cli() -> str:
    beside = Path(sys.executable).parent / "dask"
    found = str(beside) if beside.exists() else shutil.which("dask")
    if not found:
        pytest.fail("the dask CLI is missing: pip install -e '.[dev]' (dask[distributed])")
    return found


@dataclass
class Cluster:
    """The scheduler's address, the worker processes by name, and their logs."""

    address: str
    logs: Path
    env: dict[str, str]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    scheduler: subprocess.Popen[bytes] | None = None

    def start_worker(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.workers[name] = subprocess.Popen(
            [dask_cli(), "worker", self.address, "--name", name, "--nthreads", "1",
             "--no-nanny", "--host", "127.0.0.1", "--no-dashboard"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )  # fmt: skip

    def kill(self, name: str) -> None:
        self.workers[name].send_signal(signal.SIGKILL)
        self.workers[name].wait(10)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs.glob("*.log"))

    def wait_for_workers(self, n: int) -> None:
        with distributed.Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=60)


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
