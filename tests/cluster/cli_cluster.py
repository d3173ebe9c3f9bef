"""The dask CLI cluster the cluster tests run on: its processes, address and logs
(imported by conftest.py and the tests; `conftest` names clash across test folders)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import distributed
import pytest

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
