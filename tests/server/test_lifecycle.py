"""Resources, the job lifecycle, and the events each transition writes."""

from __future__ import annotations

import re

import httpx
from server_helpers import all_events, create_job, create_sheet, data, events_of, topics

from splitkit.server import EmbeddedServer

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_the_default_environment_exists_from_the_start(
    fresh_server: EmbeddedServer, fresh_http: httpx.Client
) -> None:
    body = fresh_http.get("/environments").json()
    assert [env["id"] for env in body["data"]] == [fresh_server.environment_id]
    assert body["pagination"] == {"currentPage": 1, "pageCount": 1, "totalCount": 1}
    env = data(fresh_http.get(f"/environments/{fresh_server.environment_id}"))
    assert env["id"].startswith("us_env_") and env["accountId"].startswith("us_acc_")
    assert env["isProd"] is False and env["guestAuthentication"]


def test_space_workbook_and_sheets_round_trip(fresh_http: httpx.Client) -> None:
    space = data(fresh_http.post("/spaces", json={"name": "Imports", "metadata": {"a": 1}}))
    assert space["id"].startswith("us_sp_") and space["name"] == "Imports"
    assert space["metadata"] == {"a": 1} and ISO_MS.match(space["updatedAt"])
    assert data(fresh_http.post("/spaces"))["name"]  # every field is optional
    workbook = data(
        fresh_http.post(
            "/workbooks",
            json={
                "name": "wb",
                "spaceId": space["id"],
                "sheets": [
                    {"name": "Contacts", "fields": [{"key": "email", "type": "string"}]},
                    {"name": "Deals List", "slug": "deals", "fields": []},
                ],
            },
        )
    )
    assert workbook["environmentId"] == space["environmentId"]
    assert [s["slug"] for s in workbook["sheets"]] == ["contacts", "deals"]
    assert data(fresh_http.get(f"/workbooks/{workbook['id']}")) == workbook
    sheets = data(fresh_http.get("/sheets", params={"workbookId": workbook["id"]}))
    assert sheets == workbook["sheets"]
    sheet = data(fresh_http.get(f"/sheets/{sheets[0]['id']}"))
    assert sheet["workbookId"] == workbook["id"] and sheet["config"]["fields"][0]["key"] == "email"
    counts = data(fresh_http.get(f"/sheets/{sheet['id']}/counts"))
    assert counts == {"success": True, "counts": {"total": 0, "valid": 0, "error": 0}}
    assert data(fresh_http.get(f"/spaces/{space['id']}"))["workbooksCount"] == 1


def test_an_immediate_job_runs_through_its_lifecycle(
    server: EmbeddedServer, http: httpx.Client
) -> None:
    job = create_job(http, server.sheet_id or "")
    assert job["status"] == "ready" and job["startedAt"] is None
    # the Node listener acks with no body and no Content-Type
    acked = data(http.post(f"/jobs/{job['id']}/ack", content=b""))
    assert acked["status"] == "executing" and ISO_MS.match(acked["startedAt"])
    again = data(http.post(f"/jobs/{job['id']}/ack", json={"progress": 40, "info": "half"}))
    assert again["status"] == "executing" and again["progress"] == 40
    assert again["startedAt"] == acked["startedAt"]
    done = data(http.post(f"/jobs/{job['id']}/complete", json={"outcome": {"message": "ok"}}))
    assert done["status"] == "complete" and done["outcome"] == {"message": "ok"}
    assert ISO_MS.match(done["finishedAt"])
    assert data(http.get(f"/jobs/{job['id']}")) == done

    events = events_of(http, job["id"])
    assert topics(events) == [
        "job:created", "job:ready", "job:updated", "job:updated", "job:completed",
    ]  # fmt: skip
    assert [e["payload"]["status"] for e in events] == [
        "created", "ready", "executing", "executing", "complete",
    ]  # fmt: skip
    for event in events:
        assert event["domain"] == "job" and event["id"].startswith("us_evt_")
        assert event["payload"]["job"] == "sheet:submitLargeSheet"
        assert event["payload"]["isPart"] is False
        assert event["payload"]["domain"] == "sheet"
        assert event["payload"]["operation"] == "submitLargeSheet"
        context = event["context"]
        assert context["jobId"] == job["id"] and context["sheetId"] == server.sheet_id
        assert context["workbookId"] == server.workbook_id
        assert context["spaceId"] == server.space_id
        assert context["environmentId"] == server.environment_id
        assert context["accountId"].startswith("us_acc_")
        assert event["dataUrl"] == f"v1/sheets/{server.sheet_id}/records?for={event['id']}"
    assert events[3]["payload"]["info"] == "half"


def test_data_url_works_when_the_listener_appends_its_params(
    server: EmbeddedServer, http: httpx.Client
) -> None:
    job = create_job(http, server.sheet_id or "")
    ready = next(e for e in events_of(http, job["id"]) if e["topic"] == "job:ready")
    # @flatfile/listener: root + dataUrl + "&pageSize=..&pageNumber=.."
    url = f"{server.root_url}/{ready['dataUrl']}&pageSize=5&pageNumber=2"
    response = http.get(url)
    records = data(response)["records"]
    assert len(records) == 5
    first_page = data(http.get(f"/sheets/{server.sheet_id}/records", params={"pageSize": 10}))
    assert records == first_page["records"][5:10]


def test_a_manual_job_waits_for_execute(fresh_http: httpx.Client) -> None:
    sheet = create_sheet(fresh_http)
    job = create_job(fresh_http, sheet["id"], trigger="manual")
    assert job["status"] == "created"
    assert topics(events_of(fresh_http, job["id"])) == ["job:created"]
    assert data(fresh_http.post(f"/jobs/{job['id']}/execute")) == {"success": True}
    assert data(fresh_http.get(f"/jobs/{job['id']}"))["status"] == "ready"
    assert topics(events_of(fresh_http, job["id"])) == ["job:created", "job:ready"]
    assert create_job(fresh_http, sheet["id"], trigger="manual")["trigger"] == "manual"


def test_fail_and_cancel_end_a_job(fresh_http: httpx.Client) -> None:
    sheet = create_sheet(fresh_http)
    failing, canceled = create_job(fresh_http, sheet["id"]), create_job(fresh_http, sheet["id"])
    data(fresh_http.post(f"/jobs/{failing['id']}/ack"))
    failed = data(fresh_http.post(f"/jobs/{failing['id']}/fail", json={"info": "boom"}))
    assert failed["status"] == "failed" and failed["info"] == "boom" and failed["finishedAt"]
    assert topics(events_of(fresh_http, failing["id"]))[-1] == "job:failed"
    gone = data(fresh_http.post(f"/jobs/{canceled['id']}/cancel"))
    assert gone["status"] == "canceled" and gone["finishedAt"]
    last = events_of(fresh_http, canceled["id"])[-1]
    assert last["topic"] == "job:updated" and last["payload"]["status"] == "canceled"


def test_patch_updates_fields_and_status(fresh_http: httpx.Client) -> None:
    job = create_job(fresh_http, create_sheet(fresh_http)["id"])
    patched = data(
        fresh_http.patch(f"/jobs/{job['id']}", json={"info": "step 2", "metadata": {"k": 1}})
    )
    assert patched["info"] == "step 2" and patched["metadata"] == {"k": 1}
    assert patched["status"] == "ready"
    done = data(fresh_http.patch(f"/jobs/{job['id']}", json={"status": "complete"}))
    assert done["status"] == "complete"
    assert "job:completed" in topics(events_of(fresh_http, job["id"]))


def test_outcome_ack_and_delete(fresh_http: httpx.Client) -> None:
    job = create_job(fresh_http, create_sheet(fresh_http)["id"])
    data(fresh_http.post(f"/jobs/{job['id']}/complete"))
    acked = data(fresh_http.post(f"/jobs/{job['id']}/outcome/ack"))
    assert ISO_MS.match(acked["outcomeAcknowledgedAt"])
    assert data(fresh_http.delete(f"/jobs/{job['id']}")) == {"success": True}
    assert fresh_http.get(f"/jobs/{job['id']}").status_code == 404
    assert topics(events_of(fresh_http, job["id"]))[-2:] == [
        "job:outcome-acknowledged", "job:deleted",
    ]  # fmt: skip


def test_jobs_are_listed_in_pages(fresh_server: EmbeddedServer, fresh_http: httpx.Client) -> None:
    sheet = create_sheet(fresh_http)
    ids = [create_job(fresh_http, sheet["id"])["id"] for _ in range(5)]
    body = fresh_http.get("/jobs", params={"pageSize": 2, "pageNumber": 2}).json()
    assert [job["id"] for job in body["data"]] == ids[2:4]
    assert body["pagination"] == {"currentPage": 2, "pageCount": 3, "totalCount": 5}
    newest = data(fresh_http.get("/jobs", params={"sortDirection": "desc", "pageSize": 1}))
    assert newest[0]["id"] == ids[-1]
    by_env = fresh_http.get("/jobs", params={"environmentId": fresh_server.environment_id})
    assert len(data(by_env)) == 5
    assert data(fresh_http.get("/jobs", params={"environmentId": "us_env_other"})) == []
    assert data(fresh_http.get("/jobs", params={"pageNumber": 9})) == []


def test_events_list_in_creation_order_with_exclusive_since(fresh_http: httpx.Client) -> None:
    sheet = create_sheet(fresh_http)
    for _ in range(3):
        create_job(fresh_http, sheet["id"])
    events = all_events(fresh_http)
    assert len(events) == 6
    stamps = [e["createdAt"] for e in events]
    assert stamps == sorted(stamps) and all(ISO_MS.match(s) for s in stamps)
    # since is exclusive: nothing stamped at or before it comes back
    cut = stamps[2]
    after = all_events(fresh_http, since=cut)
    assert after == [e for e in events if e["createdAt"] > cut]
    # JavaScript's form, Python's isoformat form, and a naive one are all accepted
    assert all_events(fresh_http, since="2000-01-01T00:00:00.000Z") == events
    assert all_events(fresh_http, since="2000-01-01T00:00:00+00:00") == events
    assert all_events(fresh_http, since="2000-01-01T00:00:00") == events
    assert all_events(fresh_http, since="2999-01-01T00:00:00.000Z") == []
    page = data(fresh_http.get("/events", params={"pageSize": 4, "pageNumber": 2}))
    assert page == events[4:]
    assert len(data(fresh_http.get("/events"))) == 6  # default page size is 10
    ready = all_events(fresh_http, topic="job:ready")
    assert [e["topic"] for e in ready] == ["job:ready"] * 3
    assert all_events(fresh_http, domain="space") == []


def test_acknowledged_events_are_hidden_unless_asked_for(fresh_http: httpx.Client) -> None:
    create_job(fresh_http, create_sheet(fresh_http)["id"])
    first, second = data(fresh_http.get("/events"))
    assert first["acknowledgedAt"] is None
    assert data(fresh_http.post(f"/events/{first['id']}/ack")) == {"success": True}
    assert data(fresh_http.post(f"/events/{first['id']}/ack")) == {"success": True}
    assert [e["id"] for e in data(fresh_http.get("/events"))] == [second["id"]]
    shown = data(fresh_http.get("/events", params={"includeAcknowledged": "true"}))
    assert [e["id"] for e in shown] == [first["id"], second["id"]]
    assert ISO_MS.match(shown[0]["acknowledgedAt"])
    assert data(fresh_http.get(f"/events/{first['id']}")) == shown[0]
