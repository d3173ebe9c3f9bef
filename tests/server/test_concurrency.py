"""Exactly one job:parts-completed, however many clients end parts at the same instant.

In-process: 32 HTTP clients in threads end 500 parts of one parent against one server.
Across processes: two servers (this one and a ``splitkit serve`` subprocess) on one
database file share the parts of one parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from server_helpers import all_events, create_sheet, data, events_of, list_parts, split_parent

from splitkit.server import EmbeddedServer

ENDINGS = ("complete", "fail", "cancel")
STATUS = {"complete": "complete", "fail": "failed", "cancel": "canceled"}


def _end_parts(urls: list[str], token: str, part_ids: list[str], clients: int) -> Counter[str]:
    """Ack and end every part from ``clients`` threads (each its own connection pool),
    all released at once; returns what the clients did, by status."""
    done: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(clients)
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        url = urls[worker % len(urls)]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            start.wait()
            try:
                for i in range(worker, len(part_ids), clients):
                    part_id, ending = part_ids[i], ENDINGS[i * 7 % 3]
                    data(http.post(f"/jobs/{part_id}/ack"))
                    data(http.post(f"/jobs/{part_id}/{ending}", json={"info": f"by {worker}"}))
                    with lock:
                        done[STATUS[ending]] += 1
            except BaseException as error:  # reported in the main thread
                failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    return done


def _check_one_parts_completed(
    http: httpx.Client, parent_id: str, part_ids: list[str], done: Counter[str]
) -> None:
    (event,) = events_of(http, parent_id, topic="job:parts-completed")
    assert event["payload"]["parts"] == {
        "total": len(part_ids),
        "completed": done["complete"],
        "failed": done["failed"],
        "canceled": done["canceled"],
    }
    parts = list_parts(http, parent_id)
    assert Counter(p["status"] for p in parts) == done
    # no event lost: every part has its created, ready, ack and ending events
    per_part = Counter(e["context"]["jobId"] for e in all_events(http, domain="job"))
    assert all(per_part[part_id] == 4 for part_id in part_ids), per_part.most_common(3)


def test_500_parts_ended_by_32_clients_emit_exactly_one_parts_completed(
    fresh_server: EmbeddedServer, fresh_http: httpx.Client
) -> None:
    parent = split_parent(fresh_http, create_sheet(fresh_http)["id"], 500)
    part_ids = [p["id"] for p in list_parts(fresh_http, parent["id"])]
    done = _end_parts([fresh_server.url], fresh_server.token, part_ids, clients=32)
    assert sum(done.values()) == 500 and all(done[s] > 100 for s in STATUS.values())
    _check_one_parts_completed(fresh_http, parent["id"], part_ids, done)


@contextmanager
def _serve_in_subprocess(db_path: Path, token: str) -> Iterator[str]:
    """``splitkit serve`` on ``db_path`` in another process; yields its API URL."""
    command = [sys.executable, "-u", "-c", "from splitkit.cli import main; main()", "serve"]
    command += ["--port", "0", "--db", str(db_path), "--token", token]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("splitkit server at"):
                yield line.split()[-1]
                break
        else:
            raise AssertionError(f"splitkit serve exited with {process.wait()}")
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C: the server stops cleanly
        assert process.wait(timeout=30) == 0
        assert "stopping" in process.stdout.read()


def test_two_processes_on_one_database_emit_exactly_one_parts_completed(
    tmp_path: Path, client_for: Callable[..., httpx.Client]
) -> None:
    db_path, token = tmp_path / "shared.db", "shared-token"
    with EmbeddedServer(db_path=db_path, token=token) as local, client_for(local) as http:
        parent = split_parent(http, create_sheet(http)["id"], 200)
        part_ids = [p["id"] for p in list_parts(http, parent["id"])]
        with _serve_in_subprocess(db_path, token) as remote_url:
            done = _end_parts([local.url, remote_url], token, part_ids, clients=16)
        _check_one_parts_completed(http, parent["id"], part_ids, done)
