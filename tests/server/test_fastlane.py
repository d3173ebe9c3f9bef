"""The fast lane (splitkit/server/fastlane.py) answers as FastAPI does, and never waits.

Same answers: a request with ``Authorization: bearer <token>`` (lower-case scheme, which
FastAPI accepts) is handed on to FastAPI; with ``Bearer`` the fast lane answers. Both
must give the same status, headers and bytes.

Never waits: while another thread holds the database's write lock, an ack is handed to
the thread pool (where it waits its turn) and the event loop goes on answering reads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from server_helpers import create_sheet, data, split_parent

from splitkit.server import EmbeddedServer


@pytest.fixture
def pair(fresh_server: EmbeddedServer) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """(the fast lane's client, FastAPI's client) on one server."""
    clients = [
        httpx.Client(
            base_url=fresh_server.url,
            headers={"Authorization": f"{scheme} {fresh_server.token}"},
            trust_env=False,
            timeout=30,
        )
        for scheme in ("Bearer", "bearer")
    ]
    yield clients[0], clients[1]
    for client in clients:
        client.close()


def same(fast: httpx.Response, slow: httpx.Response) -> None:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    drop = {"date"}
    assert [(k, v) for k, v in fast.headers.items() if k not in drop] == [
        (k, v) for k, v in slow.headers.items() if k not in drop
    ]
    assert fast.content == slow.content


def test_reads_and_errors_are_byte_identical(pair: tuple[httpx.Client, httpx.Client]) -> None:
    fast, slow = pair
    sheet = create_sheet(fast)
    data(fast.post(f"/sheets/{sheet['id']}/records", json=[{"name": "a", "email": "b"}] * 3))
    parent = split_parent(fast, sheet["id"], 2)
    part = data(fast.get("/jobs", params={"parentId": parent["id"]}))[0]
    for path in (
        f"/jobs/{part['id']}",
        f"/jobs/{parent['id']}",
        "/jobs/us_jb_nope",
        f"/sheets/{sheet['id']}/records",
        f"/sheets/{sheet['id']}/records?pageNumber=2&pageSize=2&for=us_evt_x",
        "/sheets/us_sh_nope/records?pageSize=1",
    ):
        same(fast.get(path), slow.get(path))
    data(fast.post(f"/jobs/{part['id']}/ack", json={"info": "started", "progress": 0}))
    body = {"outcome": {"message": "done"}}
    data(fast.post(f"/jobs/{part['id']}/complete", json=body))
    for action in ("ack", "complete", "fail"):  # refused: the part has ended
        same(fast.post(f"/jobs/{part['id']}/{action}", json=body),
             slow.post(f"/jobs/{part['id']}/{action}", json=body))  # fmt: skip
    same(fast.get(f"/jobs/{part['id']}"), slow.get(f"/jobs/{part['id']}"))


def test_transitions_answer_alike(pair: tuple[httpx.Client, httpx.Client]) -> None:
    fast, slow = pair
    sheet = create_sheet(fast)
    parent = split_parent(fast, sheet["id"], 2)
    one, two = data(fast.get("/jobs", params={"parentId": parent["id"]}))
    answers = []
    for client, job in ((fast, one), (slow, two)):
        acked = data(client.post(f"/jobs/{job['id']}/ack", json={"progress": 5, "info": "i"}))
        ended = data(client.post(f"/jobs/{job['id']}/complete", json={"outcome": {"m": 1}}))
        answers.append([{k: v for k, v in j.items() if not k.endswith("At") and k != "id"}
                        for j in (acked, ended)])  # fmt: skip
    assert answers[0] == [{**a, "part": 0, "partData": {**a["partData"], "part": 0}}
                          for a in answers[1]]  # fmt: skip
    # what the models refuse, FastAPI words (the fast lane hands it on)
    same(fast.post(f"/jobs/{one['id']}/ack", json={"progress": 101}),
         slow.post(f"/jobs/{one['id']}/ack", json={"progress": 101}))  # fmt: skip


def test_the_loop_answers_reads_while_another_thread_writes(
    fresh_server: EmbeddedServer, pair: tuple[httpx.Client, httpx.Client]
) -> None:
    fast, _ = pair
    sheet = create_sheet(fast)
    parent = split_parent(fast, sheet["id"], 1)
    (part,) = data(fast.get("/jobs", params={"parentId": parent["id"]}))
    store = fresh_server.store
    assert store is not None
    acked: list[httpx.Response] = []
    with store.write():  # this thread holds the write lock (and SQLite's)
        sender = threading.Thread(target=lambda: acked.append(fast.post(f"/jobs/{part['id']}/ack")))
        sender.start()
        # Had the ack made the loop wait for the lock, this read would never be answered
        # (the lock is released only after it): httpx's timeout would fail the test.
        for _ in range(5):
            assert data(fast.get(f"/jobs/{part['id']}"))["status"] == "ready"
        assert not acked, "the ack went through while the write lock was held"
    sender.join(30)
    assert data(acked[0])["status"] == "executing"
