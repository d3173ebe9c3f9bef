"""Exactly one job:parts-completed per round, however many clients end parts at once.

In-process: 32 HTTP clients in threads end 500 parts of one parent against one server.
Across processes: 16 clients split between two servers (this one and a ``splitkit serve``
subprocess) on one database file end the 200 parts of one parent. In both, the clients
wait at a barrier with one open part each and end those last parts together, so the
ending that completes the parent races with the others (across processes too, where no
in-process lock serializes the writers). Then, four times over, each client reopens one
failed or canceled part (``retry``: the parent's next round) and all end them together.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from server_helpers import all_events, create_sheet, data, events_of, list_parts, split_parent

from splitkit.server import EmbeddedServer

ENDINGS = ("complete", "fail", "cancel")
STATUS = {"complete": "complete", "fail": "failed", "cancel": "canceled"}
_BARRIER_TIMEOUT_S = 120.0  # only against a hang if a client dies; never reached otherwise
# Races of the last endings per test: the first ends every part, each later one retries one
# failed or canceled part per client (a new round) and ends those together again.
ROUNDS = 5


class Race:
    """Clients ending the parts of one parent, and what the server must say about it."""

    def __init__(self, http: httpx.Client, clients: list[httpx.Client], parent_id: str) -> None:
        self.http, self.clients, self.parent_id = http, clients, parent_id
        self.part_ids = [p["id"] for p in list_parts(http, parent_id)]
        self.index = {part_id: i for i, part_id in enumerate(self.part_ids)}
        self.status: dict[str, str] = {}  # what the clients did to each part, last time
        self.runs: Counter[str] = Counter()  # how often each part was made ready again

    def run(self, assigned: list[list[str]], round_number: int) -> None:
        """Each client acks its parts and ends all but one, then waits at a barrier: only
        when every client holds exactly one open part are they released together, so the
        ending that reaches the total races with the others."""
        clients = len(assigned)
        assert clients <= len(self.clients)
        start, last = threading.Barrier(clients), threading.Barrier(clients)
        lock = threading.Lock()
        failures: list[BaseException] = []

        def end(http: httpx.Client, part_id: str, worker: int) -> None:
            ending = ENDINGS[(self.index[part_id] * 7 + round_number) % 3]
            data(http.post(f"/jobs/{part_id}/{ending}", json={"info": f"by {worker}"}))
            with lock:
                self.status[part_id] = STATUS[ending]

        def work(worker: int) -> None:
            mine, http = assigned[worker], self.clients[worker]
            try:
                start.wait(timeout=_BARRIER_TIMEOUT_S)
                for part_id in mine:
                    data(http.post(f"/jobs/{part_id}/ack"))
                for part_id in mine[:-1]:
                    end(http, part_id, worker)
                last.wait(timeout=_BARRIER_TIMEOUT_S)  # every client holds one open part
                end(http, mine[-1], worker)
            except BaseException as error:  # reported in the main thread
                failures.append(error)
                start.abort()  # a client that fails must not leave the others waiting
                last.abort()

        assert all(assigned), "every client needs a part to end at the barrier"
        threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures[:3]

    def first_round(self, clients: int) -> None:
        self.runs.update(self.part_ids)
        self.run([self.part_ids[n::clients] for n in range(clients)], 1)

    def retry_round(self, clients: int, round_number: int) -> None:
        """Reopen one failed or canceled part per client (the parent's next round)."""
        reopened = [p for p in self.part_ids if self.status[p] != "complete"][:clients]
        assert len(reopened) == clients
        for part_id in reopened:
            data(self.http.post(f"/jobs/{part_id}/retry"))
        self.runs.update(reopened)
        self.run([[part_id] for part_id in reopened], round_number)

    def check(self, rounds: int) -> None:
        """One job:parts-completed per round, each with the true counts of its round."""
        done = Counter(self.status.values())
        events = events_of(self.http, self.parent_id, topic="job:parts-completed")
        assert len(events) == rounds, [e["payload"]["parts"] for e in events]
        assert events[-1]["payload"]["parts"] == {
            "total": len(self.part_ids),
            "completed": done["complete"],
            "failed": done["failed"],
            "canceled": done["canceled"],
        }
        parts = list_parts(self.http, self.parent_id)
        assert {p["id"]: p["status"] for p in parts} == self.status

    def check_events(self) -> None:
        # no event lost: created, then ready, ack and ending each time a part was opened
        per_part = Counter(e["context"]["jobId"] for e in all_events(self.http, domain="job"))
        expected = {p: 1 + 3 * self.runs[p] for p in self.part_ids}
        assert {p: per_part[p] for p in self.part_ids} == expected


def _race(http: httpx.Client, urls: list[str], token: str, parts: int, clients: int) -> None:
    parent = split_parent(http, create_sheet(http)["id"], parts)
    headers = {"Authorization": f"Bearer {token}"}
    with ExitStack() as stack:
        # one connection pool per client, kept for every round (the servers take turns)
        pools = [
            stack.enter_context(
                httpx.Client(base_url=urls[n % len(urls)], headers=headers, timeout=60)
            )
            for n in range(clients)
        ]
        _rounds(Race(http, pools, parent["id"]), parts, clients)


def _rounds(race: Race, parts: int, clients: int) -> None:
    race.first_round(clients)
    done = Counter(race.status.values())
    assert sum(done.values()) == parts and min(done.values()) > parts // 4, done
    race.check(1)
    for round_number in range(2, ROUNDS + 1):
        race.retry_round(clients, round_number)
        race.check(round_number)
    race.check_events()


def test_500_parts_ended_by_32_clients_emit_exactly_one_parts_completed(
    fresh_server: EmbeddedServer, fresh_http: httpx.Client
) -> None:
    _race(fresh_http, [fresh_server.url], fresh_server.token, parts=500, clients=32)


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
    with (
        EmbeddedServer(db_path=db_path, token=token) as local,
        client_for(local) as http,
        _serve_in_subprocess(db_path, token) as remote_url,
    ):
        _race(http, [local.url, remote_url], token, parts=200, clients=16)
