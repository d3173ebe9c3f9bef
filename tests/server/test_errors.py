"""Every error of Part A: 401, 404, 400 for bad input (never 422), refused transitions."""

from __future__ import annotations

import httpx
import pytest
from server_helpers import create_job, create_sheet, data, errors, list_parts, split_parent

from splitkit.server import EmbeddedServer

ROUTES = [
    ("GET", "/environments"),
    ("GET", "/jobs"),
    ("POST", "/jobs"),
    ("GET", "/events"),
    ("POST", "/jobs/us_jb_missing/ack"),
    ("GET", "/sheets/us_sh_missing/records"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["no-token", "wrong-token", "basic-scheme"],
)
def test_every_route_needs_the_bearer_token(
    server: EmbeddedServer, method: str, path: str, headers: dict[str, str]
) -> None:
    response = httpx.request(method, server.url + path, headers=headers, json={})
    (error,) = errors(response, 401)
    assert "token" in error["message"]
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/environments/us_env_nope", "environment"),
        ("GET", "/spaces/us_sp_nope", "space"),
        ("GET", "/workbooks/us_wb_nope", "workbook"),
        ("GET", "/sheets?workbookId=us_wb_nope", "workbook"),
        ("GET", "/sheets/us_sh_nope", "sheet"),
        ("GET", "/sheets/us_sh_nope/counts", "sheet"),
        ("GET", "/sheets/us_sh_nope/records", "sheet"),
        ("POST", "/sheets/us_sh_nope/records", "sheet"),
        ("GET", "/jobs/us_jb_nope", "job"),
        ("PATCH", "/jobs/us_jb_nope", "job"),
        ("DELETE", "/jobs/us_jb_nope", "job"),
        ("POST", "/jobs/us_jb_nope/execute", "job"),
        ("POST", "/jobs/us_jb_nope/ack", "job"),
        ("POST", "/jobs/us_jb_nope/complete", "job"),
        ("POST", "/jobs/us_jb_nope/fail", "job"),
        ("POST", "/jobs/us_jb_nope/cancel", "job"),
        ("POST", "/jobs/us_jb_nope/retry", "job"),
        ("POST", "/jobs/us_jb_nope/outcome/ack", "job"),
        ("GET", "/events/us_evt_nope", "event"),
        ("POST", "/events/us_evt_nope/ack", "event"),
    ],
)
def test_unknown_ids_are_404_naming_kind_and_id(
    http: httpx.Client, method: str, path: str, kind: str
) -> None:
    body = [] if path.endswith("/records") and method == "POST" else None
    (error,) = errors(http.request(method, path, json=body), 404)
    assert error["message"].startswith(f"{kind} ") and "_nope" in error["message"]


def test_split_of_an_unknown_job_is_404(http: httpx.Client) -> None:
    (error,) = errors(http.post("/jobs/us_jb_nope/split", json={"parts": 2}), 404)
    assert "us_jb_nope" in error["message"]


def test_jobs_on_unknown_sources_and_environments_are_404(http: httpx.Client) -> None:
    body = {"type": "sheet", "operation": "x", "source": "us_sh_nope"}
    assert errors(http.post("/jobs", json=body), 404)[0]["message"].startswith("sheet ")
    body = {"type": "file", "operation": "x", "source": "us_fl_1", "environmentId": "us_env_x"}
    assert errors(http.post("/jobs", json=body), 404)[0]["message"].startswith("environment ")
    body = {"name": "wb", "spaceId": "us_sp_nope"}
    assert errors(http.post("/workbooks", json=body), 404)[0]["message"].startswith("space ")
    assert errors(http.post("/spaces", json={"environmentId": "us_env_x"}), 404)


def test_unknown_routes_and_methods_keep_the_error_shape(http: httpx.Client) -> None:
    assert "not a route" in errors(http.get("/nothing-here"), 404)[0]["message"]
    errors(http.put("/jobs"), 405)


JOB = {"type": "sheet", "operation": "op", "source": "us_fl_1"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "key"),
    [
        ("POST", "/jobs", {"json": {"operation": "x", "source": "s"}}, "type"),
        ("POST", "/jobs", {"json": {**JOB, "progress": 101}}, "progress"),
        ("POST", "/jobs", {"json": {**JOB, "trigger": "sometimes"}}, "trigger"),
        ("POST", "/jobs", {"json": {**JOB, "input": "not an object"}}, "input"),
        ("POST", "/jobs", {"json": [1, 2]}, "body"),
        (
            "POST",
            "/jobs",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            "body",
        ),
        ("POST", "/jobs", {}, "body"),
        ("POST", "/spaces", {"json": {"name": 5}}, "name"),
        ("POST", "/workbooks", {"json": {"spaceId": "us_sp_1"}}, "name"),
        ("POST", "/workbooks", {"json": {"name": "wb"}}, "spaceId"),
        (
            "POST",
            "/workbooks",
            {
                "json": {
                    "name": "wb",
                    "spaceId": "s",
                    "sheets": [{"name": "s", "fields": [{"type": "string"}]}],
                }
            },
            "sheets.0.fields.0.key",
        ),
        (
            "POST",
            "/workbooks",
            {
                "json": {
                    "name": "wb",
                    "spaceId": "s",
                    "sheets": [{"name": "s", "fields": [{"key": "a", "type": "blob"}]}],
                }
            },
            "sheets.0.fields.0.type",
        ),
        (
            "POST",
            "/workbooks",
            {
                "json": {
                    "name": "wb",
                    "spaceId": "s",
                    "sheets": [{"name": "s", "fields": [{"key": "a", "type": "enum"}]}],
                }
            },
            "sheets.0.fields.0",
        ),
        (
            "POST",
            "/workbooks",
            {
                "json": {
                    "name": "wb",
                    "spaceId": "s",
                    "sheets": [{"name": "s", "fields": [{"key": "a", "type": "string"}] * 2}],
                }
            },
            "sheets.0",
        ),
        ("GET", "/sheets", {}, "workbookId"),
        ("GET", "/environments", {"params": {"pageSize": 0}}, "pageSize"),
        ("GET", "/jobs", {"params": {"pageSize": 10_001}}, "pageSize"),
        ("GET", "/jobs", {"params": {"pageNumber": 0}}, "pageNumber"),
        ("GET", "/jobs", {"params": {"pageNumber": "two"}}, "pageNumber"),
        ("GET", "/jobs", {"params": {"pageNumber": 2**40}}, "pageNumber"),
        ("GET", "/jobs", {"params": {"sortDirection": "sideways"}}, "sortDirection"),
        ("GET", "/events", {"params": {"pageSize": 1001}}, "pageSize"),
        ("GET", "/events", {"params": {"since": "yesterday"}}, "since"),
        ("GET", "/events", {"params": {"includeAcknowledged": "maybe"}}, "includeAcknowledged"),
    ],
)
def test_bad_bodies_and_queries_are_400_naming_the_field(
    http: httpx.Client, method: str, path: str, kwargs: dict, key: str
) -> None:
    found = errors(http.request(method, path, **kwargs), 400)
    assert key in [error["key"] for error in found], found
    assert all(
        error["message"].startswith(error["key"]) or error["key"] == "spaceId" for error in found
    )


@pytest.mark.parametrize(
    "body",
    [{}, {"parts": 0}, {"parts": -3}, {"parts": "4"}, {"parts": True}, {"parts": []},
     {"parts": [1, 2]}, {"parts": 2, "runInParallel": "often"}, {"parts": 1.5}],
)  # fmt: skip
def test_bad_split_bodies_are_400(server: EmbeddedServer, http: httpx.Client, body: dict) -> None:
    job = create_job(http, server.sheet_id or "", operation="badSplit")
    found = errors(http.post(f"/jobs/{job['id']}/split", json=body), 400)
    assert {error["key"] for error in found} <= {"parts", "runInParallel"}
    assert list_parts(http, job["id"]) == []


def _refused(response: httpx.Response, job_id: str, status: str, transition: str) -> None:
    (error,) = errors(response, 400)
    assert error["key"] == "transition"
    message = error["message"]
    assert job_id in message and repr(status) in message and f"cannot {transition}" in message


def test_refused_transitions_are_400_naming_job_status_and_transition(
    fresh_http: httpx.Client,
) -> None:
    sheet = create_sheet(fresh_http)
    post = fresh_http.post

    done = create_job(fresh_http, sheet["id"])
    data(post(f"/jobs/{done['id']}/complete"))
    _refused(post(f"/jobs/{done['id']}/complete"), done["id"], "complete", "complete")
    _refused(post(f"/jobs/{done['id']}/fail"), done["id"], "complete", "fail")
    _refused(post(f"/jobs/{done['id']}/cancel"), done["id"], "complete", "cancel")
    _refused(post(f"/jobs/{done['id']}/retry"), done["id"], "complete", "retry")
    _refused(post(f"/jobs/{done['id']}/split", json={"parts": 2}), done["id"], "complete", "split")

    canceled = create_job(fresh_http, sheet["id"])
    data(post(f"/jobs/{canceled['id']}/cancel"))
    _refused(post(f"/jobs/{canceled['id']}/ack"), canceled["id"], "canceled", "ack")

    running = create_job(fresh_http, sheet["id"])
    data(post(f"/jobs/{running['id']}/ack"))
    _refused(post(f"/jobs/{running['id']}/retry"), running["id"], "executing", "retry")
    _refused(post(f"/jobs/{running['id']}/execute"), running["id"], "executing", "execute")

    manual = create_job(fresh_http, sheet["id"], trigger="manual")
    _refused(
        post(f"/jobs/{manual['id']}/split", json={"parts": 2}), manual["id"], "created", "split"
    )

    parent = split_parent(fresh_http, sheet["id"], 2)
    _refused(
        post(f"/jobs/{parent['id']}/split", json={"parts": 2}), parent["id"], "executing", "split"
    )
    first, second = list_parts(fresh_http, parent["id"])
    _refused(post(f"/jobs/{first['id']}/split", json={"parts": 2}), first["id"], "ready", "split")
    _refused(fresh_http.delete(f"/jobs/{first['id']}"), first["id"], "ready", "delete")
    data(post(f"/jobs/{first['id']}/fail"))
    data(post(f"/jobs/{second['id']}/complete"))
    data(post(f"/jobs/{parent['id']}/fail"))  # the parent is settled: its parts stay ended
    _refused(post(f"/jobs/{first['id']}/retry"), first["id"], "failed", "retry")
    _refused(post(f"/jobs/{parent['id']}/retry"), parent["id"], "failed", "retry")

    sequential = split_parent(fresh_http, sheet["id"], 2, runInParallel=False)
    waiting = list_parts(fresh_http, sequential["id"])[1]
    _refused(post(f"/jobs/{waiting['id']}/ack"), waiting["id"], "waiting", "ack")
    patch = fresh_http.patch(f"/jobs/{done['id']}", json={"status": "executing"})
    _refused(patch, done["id"], "complete", "ack")


def test_no_request_gets_a_422(http: httpx.Client) -> None:
    for response in (
        http.post("/jobs", json={"type": 1}),
        http.get("/events", params={"pageNumber": "x"}),
        http.post("/sheets/us_sh_x/records", json="text"),
        http.post("/jobs/us_jb_x/ack", json={"progress": "lots"}),
    ):
        assert response.status_code == 400, response.text
