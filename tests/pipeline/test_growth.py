"""What dispatch holds per part is bounded (issue 10: <= 2 KiB a part above the outcome
frame), measured with tracemalloc on a run of 10,000 parts.

Memory is deterministic enough to assert (time is not). The embedded server runs in a
child process (real HTTP, real SQLite), so that everything traced here is the client's.
The run is stopped before any part starts: what is measured is what the engine holds for
the parts themselves (its rows, the pages of parts it reads to make them, the outcome
frame it builds), not the work of running them, which is per part and let go at its end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator

import pytest

from splitkit import Client, Part, dispatch, plan_parts, split_parent, start_parent_job
from splitkit.api import ClientConfig

PARTS = 10_000
BOUND_B = 2_048

SERVE = """
import json, sys
from splitkit.server import EmbeddedServer
with EmbeddedServer(records=1) as server:
    print(json.dumps({"url": server.url, "token": server.token,
                      "environment_id": server.environment_id,
                      "sheet_id": server.sheet_id}), flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def child_server() -> Iterator[dict[str, str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, f"the server process ended (exit code {child.wait()})"
        yield json.loads(line)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def noop(part: Part) -> None:
    return None


def test_dispatch_peak_memory_per_part_is_bounded(child_server: dict[str, str]) -> None:
    config = ClientConfig(
        child_server["url"], child_server["token"], child_server["environment_id"]
    )
    with Client.from_config(config) as client:
        parent = start_parent_job(client, child_server["sheet_id"])
        split_parent(client, parent.id, plan_parts(PARTS, batch_size=1), check_counts=False)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        handle = dispatch(config, parent.id, noop, progress=False, wait=False, claim=False)
        handle.stop()  # before the parts are listed: none starts, all stay open
        outcomes = handle.wait()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert len(outcomes) == PARTS
    assert (outcomes["status"] == "pending").all(), "a part started"
    frame = int(outcomes.memory_usage(deep=True).sum())
    above = (peak - frame) / PARTS
    assert above <= BOUND_B, (
        f"dispatch of {PARTS:,} parts peaked {above:,.0f} B a part above its outcome frame"
    )
