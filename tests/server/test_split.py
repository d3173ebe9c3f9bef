"""Split into parts (int, array, sequential), parts-completed, and retry rounds."""

from __future__ import annotations

import time

import httpx
import pytest
from server_helpers import (
    create_job,
    create_sheet,
    data,
    errors,
    events_of,
    list_parts,
    split_parent,
    topics,
)

from splitkit.server import EmbeddedServer


def _parts_completed(http: httpx.Client, parent_id: str) -> list[dict]:
    return events_of(http, parent_id, topic="job:parts-completed")


def test_split_by_count_makes_ready_parallel_parts(
    server: EmbeddedServer, http: httpx.Client
) -> None:
    parent = split_parent(http, server.sheet_id or "", 3)
    assert parent["status"] == "executing" and "parentId" not in parent
    parts = list_parts(http, parent["id"])
    assert [p["part"] for p in parts] == [0, 1, 2]
    for i, part in enumerate(parts):
        assert part["parentId"] == parent["id"] and part["status"] == "ready"
        assert part["partData"] == {"part": i, "total": 3}
        assert part["partExecution"] == "parallel" and "predecessorIds" not in part
        for key in ("type", "operation", "source", "environmentId"):
            assert part[key] == parent[key]
        events = events_of(http, part["id"])
        assert topics(events) == ["job:created", "job:ready"]
        for event in events:
            assert event["payload"]["isPart"] is True
            assert event["payload"]["job"] == "sheet:submitLargeSheet"
            assert event["context"]["sheetId"] == server.sheet_id
    page = http.get("/jobs", params={"parentId": parent["id"], "pageSize": 2, "pageNumber": 2})
    assert page.json()["pagination"] == {"currentPage": 2, "pageCount": 2, "totalCount": 3}
    assert [p["part"] for p in page.json()["data"]] == [2]


def test_split_by_array_merges_part_data(server: EmbeddedServer, http: httpx.Client) -> None:
    parent = split_parent(http, server.sheet_id or "", [{"first": 1, "part": 99}, {"first": 501}])
    parts = list_parts(http, parent["id"])
    assert [p["partData"] for p in parts] == [
        {"first": 1, "part": 0, "total": 2},
        {"first": 501, "part": 1, "total": 2},
    ]


def test_all_parts_ending_emit_one_parts_completed(fresh_http: httpx.Client) -> None:
    sheet = create_sheet(fresh_http)
    parent = split_parent(fresh_http, sheet["id"], 4)
    parts = list_parts(fresh_http, parent["id"])
    data(fresh_http.post(f"/jobs/{parts[0]['id']}/complete"))
    data(fresh_http.post(f"/jobs/{parts[1]['id']}/fail", json={"info": "bad rows"}))
    data(fresh_http.post(f"/jobs/{parts[2]['id']}/cancel"))
    assert _parts_completed(fresh_http, parent["id"]) == []
    data(fresh_http.post(f"/jobs/{parts[3]['id']}/complete"))
    (event,) = _parts_completed(fresh_http, parent["id"])
    assert event["context"]["jobId"] == parent["id"]
    assert event["context"]["sheetId"] == sheet["id"]
    payload = event["payload"]
    assert payload["parts"] == {"total": 4, "completed": 2, "failed": 1, "canceled": 1}
    assert payload["job"] == "sheet:submitLargeSheet" and payload["isPart"] is False
    assert payload["status"] == "executing"  # the server does not settle the parent
    settled = data(fresh_http.post(f"/jobs/{parent['id']}/fail", json={"info": "1 part failed"}))
    assert settled["status"] == "failed"


def test_sequential_parts_start_one_after_another(fresh_http: httpx.Client) -> None:
    sheet = create_sheet(fresh_http)
    parent = split_parent(fresh_http, sheet["id"], 3, runInParallel=False)
    parts = list_parts(fresh_http, parent["id"])
    assert [p["status"] for p in parts] == ["ready", "waiting", "waiting"]
    assert [p.get("predecessorIds") for p in parts] == [None, [parts[0]["id"]], [parts[1]["id"]]]
    assert {p["partExecution"] for p in parts} == {"sequential"}
    assert topics(events_of(fresh_http, parts[1]["id"])) == ["job:created"]
    data(fresh_http.post(f"/jobs/{parts[0]['id']}/ack"))
    data(fresh_http.post(f"/jobs/{parts[0]['id']}/complete"))
    assert [p["status"] for p in list_parts(fresh_http, parent["id"])] == [
        "complete", "ready", "waiting",
    ]  # fmt: skip
    assert topics(events_of(fresh_http, parts[1]["id"])) == ["job:created", "job:ready"]
    data(fresh_http.post(f"/jobs/{parts[1]['id']}/fail"))  # a failed part releases the next too
    assert list_parts(fresh_http, parent["id"])[2]["status"] == "ready"
    data(fresh_http.post(f"/jobs/{parts[2]['id']}/complete"))
    (event,) = _parts_completed(fresh_http, parent["id"])
    assert event["payload"]["parts"] == {"total": 3, "completed": 2, "failed": 1, "canceled": 0}


def test_retry_after_parts_completed_opens_a_new_round(fresh_http: httpx.Client) -> None:
    sheet = create_sheet(fresh_http)
    parent = split_parent(fresh_http, sheet["id"], 2)
    first, second = list_parts(fresh_http, parent["id"])
    data(fresh_http.post(f"/jobs/{first['id']}/complete"))
    data(fresh_http.post(f"/jobs/{second['id']}/fail", json={"outcome": {"message": "x"}}))
    assert len(_parts_completed(fresh_http, parent["id"])) == 1

    retried = data(fresh_http.post(f"/jobs/{second['id']}/retry"))
    assert retried["status"] == "ready" and retried["metadata"]["attempt"] == 2
    assert retried["finishedAt"] is None and "outcome" not in retried
    assert topics(events_of(fresh_http, second["id"]))[-1] == "job:ready"
    data(fresh_http.post(f"/jobs/{second['id']}/ack"))
    data(fresh_http.post(f"/jobs/{second['id']}/complete"))
    rounds = _parts_completed(fresh_http, parent["id"])
    assert [e["payload"]["parts"] for e in rounds] == [
        {"total": 2, "completed": 1, "failed": 1, "canceled": 0},
        {"total": 2, "completed": 2, "failed": 0, "canceled": 0},
    ]


def test_retry_within_a_round_emits_once(fresh_http: httpx.Client) -> None:
    sheet = create_sheet(fresh_http)
    parent = split_parent(fresh_http, sheet["id"], 2)
    first, second = list_parts(fresh_http, parent["id"])
    data(fresh_http.post(f"/jobs/{first['id']}/cancel"))
    data(fresh_http.post(f"/jobs/{first['id']}/retry"))  # the round is still open
    data(fresh_http.post(f"/jobs/{first['id']}/fail"))
    again = data(fresh_http.post(f"/jobs/{first['id']}/retry"))
    assert again["metadata"]["attempt"] == 3
    data(fresh_http.post(f"/jobs/{first['id']}/complete"))
    data(fresh_http.post(f"/jobs/{second['id']}/complete"))
    (event,) = _parts_completed(fresh_http, parent["id"])
    assert event["payload"]["parts"] == {"total": 2, "completed": 2, "failed": 0, "canceled": 0}


@pytest.mark.slow
def test_split_is_bounded_at_100_000_parts(fresh_http: httpx.Client) -> None:
    sheet = create_sheet(fresh_http)
    too_many = create_job(fresh_http, sheet["id"])
    for parts in (100_001, [{}] * 100_001):
        (error,) = errors(
            fresh_http.post(f"/jobs/{too_many['id']}/split", json={"parts": parts}), 400
        )
        assert error["key"] == "parts" and "100000" in error["message"]
    assert list_parts(fresh_http, too_many["id"]) == []  # all or none

    started = time.perf_counter()
    parent = split_parent(fresh_http, sheet["id"], 100_000)
    elapsed = time.perf_counter() - started
    page = fresh_http.get(
        "/jobs", params={"parentId": parent["id"], "pageSize": 1000, "pageNumber": 100}
    ).json()
    assert page["pagination"] == {"currentPage": 100, "pageCount": 100, "totalCount": 100_000}
    assert page["data"][-1]["partData"] == {"part": 99_999, "total": 100_000}
    assert elapsed < 60, f"a 100,000-part split took {elapsed:.1f} s"
    query = {"topic": "job:ready", "pageSize": 1000, "pageNumber": 100}
    last_ready = data(fresh_http.get("/events", params=query))  # page 1 is the parent's
    assert len(last_ready) == 1000 and last_ready[-1]["payload"]["isPart"] is True
