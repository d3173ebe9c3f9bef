"""Every request body passes the same checks before a route sees it (limits.BodyGuard):
a size limit (413), a nesting limit and finite numbers only (400 naming where)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import create_job, create_sheet, data, errors, list_parts

from splitkit.server import EmbeddedServer, ServerConfig
from splitkit.server.limits import MAX_JSON_DEPTH

JSON = {"content-type": "application/json"}


def _nested(levels: int) -> str:
    """A JSON object ``levels`` levels deep: {"a":{"a":...{}}}."""
    return '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)


def _executing_job(http: httpx.Client, source: str) -> dict[str, Any]:
    job = create_job(http, source)
    return data(http.post(f"/jobs/{job['id']}/ack"))  # type: ignore[no-any-return]


def _jobs_of(http: httpx.Client, sheet: dict[str, Any]) -> list[dict[str, Any]]:
    """The jobs of ``sheet``'s workbook (each test makes its own sheet on the shared server)."""
    params = {"workbookId": sheet["workbookId"], "pageSize": 1000}
    return data(http.get("/jobs", params=params))  # type: ignore[no-any-return]


# (method, path maker, field): the four free-form JSON fields of job bodies on each route
ROUTES: list[tuple[str, str, str]] = [
    ("POST", "create", "config"),
    ("POST", "create", "input"),
    ("POST", "create", "metadata"),
    ("POST", "create", "outcome"),
    ("PATCH", "update", "config"),
    ("PATCH", "update", "metadata"),
    ("POST", "complete", "outcome"),
    ("POST", "fail", "outcome"),
]


def _send(
    http: httpx.Client, source: str, method: str, route: str, field: str, value: str
) -> httpx.Response:
    if route == "create":
        head = f'{{"type":"sheet","operation":"op","source":"{source}","{field}":'
        return http.request(method, "/jobs", content=head + value + "}", headers=JSON)
    job = _executing_job(http, source)
    path = f"/jobs/{job['id']}" if route == "update" else f"/jobs/{job['id']}/{route}"
    return http.request(method, path, content=f'{{"{field}":{value}}}', headers=JSON)


@pytest.mark.parametrize("levels", [256, 5_000], ids=["256-levels", "beyond-parsers"])
def test_json_nested_too_deep_is_400_naming_field_and_limit(
    http: httpx.Client, levels: int
) -> None:
    sheet = create_sheet(http)
    for method, route, field in ROUTES:
        before = _jobs_of(http, sheet)
        response = _send(http, sheet["id"], method, route, field, _nested(levels))
        (error,) = errors(response, 400)
        assert error["key"] == field, (route, error)
        assert error["message"].startswith(f"{field}: JSON nested deeper than {MAX_JSON_DEPTH}")
        assert f"at {field}.a.a" in error["message"]
        assert f"the limit is {MAX_JSON_DEPTH} levels" in error["message"]
        # the refused request created or changed nothing (other routes made one job to change)
        after = _jobs_of(http, sheet)
        assert len(after) == len(before) + (0 if route == "create" else 1), route
        assert all(job.get(field) in ({}, None) for job in after), route
        assert all(job["status"] in ("executing", "complete") for job in after), route


def test_json_at_the_depth_limit_is_stored_and_read_back(fresh_http: httpx.Client) -> None:
    """The limit is one the server can keep: a body exactly MAX_JSON_DEPTH deep round-trips
    through the job, the jobs list and the job's events."""
    sheet = create_sheet(fresh_http)
    # the body is level 1, so its fields may be MAX_JSON_DEPTH - 1 deep
    deepest = _nested(MAX_JSON_DEPTH - 1)
    job = _executing_job(fresh_http, sheet["id"])
    body = f'{{"outcome":{deepest},"info":"deep"}}'
    done = data(fresh_http.post(f"/jobs/{job['id']}/complete", content=body, headers=JSON))
    assert done["status"] == "complete"
    stored = data(fresh_http.get(f"/jobs/{job['id']}"))["outcome"]
    depth = 1
    while stored:
        stored, depth = stored["a"], depth + 1
    assert depth == MAX_JSON_DEPTH - 1
    assert any(j["id"] == job["id"] for j in data(fresh_http.get("/jobs")))
    assert data(fresh_http.get("/events", params={"includeAcknowledged": "true"}))


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1E400"])
def test_non_finite_numbers_are_400_naming_where(http: httpx.Client, number: str) -> None:
    sheet = create_sheet(http)
    head = f'{{"type":"sheet","operation":"op","source":"{sheet["id"]}",'
    body = head + f'"config":{{"ok":1.5,"list":[1,{{"x":{number}}}]}}}}'
    (error,) = errors(http.post("/jobs", content=body, headers=JSON), 400)
    assert error["key"] == "config.list[1].x"
    assert error["message"].startswith(f"config.list[1].x: {number} is not a finite number")
    assert _jobs_of(http, sheet) == []

    job = _executing_job(http, sheet["id"])
    body = f'{{"outcome":{{"valid":{number}}}}}'
    (error,) = errors(http.post(f"/jobs/{job['id']}/complete", content=body, headers=JSON), 400)
    assert error["key"] == "outcome.valid"
    assert data(http.get(f"/jobs/{job['id']}"))["status"] == "executing"

    rows = f'[{{"name":"a","email":"a@x.io"}},{{"name":{{"value":{number}}}}}]'
    response = http.post(f"/sheets/{sheet['id']}/records", content=rows, headers=JSON)
    (error,) = errors(response, 400)
    assert error["key"] == "[1].name.value" and number in error["message"]
    assert data(http.get(f"/sheets/{sheet['id']}/counts"))["counts"]["total"] == 0


def test_finite_extremes_and_strings_that_look_like_numbers_are_kept(
    http: httpx.Client,
) -> None:
    sheet = create_sheet(http)
    config = '{"big":1.7976931348623157e308,"tiny":1e-400,"text":"NaN","neg":-0.0}'
    body = f'{{"type":"sheet","operation":"op","source":"{sheet["id"]}","config":{config}}}'
    job = data(http.post("/jobs", content=body, headers=JSON))
    assert job["config"] == {"big": 1.7976931348623157e308, "tiny": 0.0, "text": "NaN", "neg": -0.0}


# -- the body size limit ------------------------------------------------------------------


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(db_path=tmp_path / "small.db", max_body_mb=1) as running:
        yield running


def _rows_body(size: int) -> bytes:
    """A records body of about ``size`` bytes (valid JSON, valid records)."""
    row = b'{"name":"' + b"x" * 90 + b'","email":"e@x.io"}'
    return b"[" + b",".join([row] * (size // (len(row) + 1))) + b"]"


def test_a_body_over_the_limit_is_413_and_the_server_answers_others(
    small_server: EmbeddedServer, client_for: Callable[..., httpx.Client]
) -> None:
    with client_for(small_server) as http:
        sheet = create_sheet(http)
        path = f"/sheets/{sheet['id']}/records"
        body = _rows_body(2 * 1024 * 1024)  # 2.0 MiB, Content-Length known
        response = http.post(path, content=body, headers=JSON)
        (error,) = errors(response, 413)
        assert error["message"] == ("request body is 2.0 MiB; the limit is 1 MiB (--max-body-mb)")

        def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
            for start in range(0, len(body), 64 * 1024):
                yield body[start : start + 64 * 1024]

        (error,) = errors(http.post(path, content=chunks(), headers=JSON), 413)
        assert error["message"] == (
            "request body is more than 1 MiB; the limit is 1 MiB (--max-body-mb)"
        )
        # nothing of either was stored, and a body under the limit still goes in
        assert data(http.get(f"/sheets/{sheet['id']}/counts"))["counts"]["total"] == 0
        under = _rows_body(900 * 1024)
        inserted = data(http.post(path, content=under, headers=JSON))
        assert inserted["counts"]["total"] == under.count(b'"name"')
        assert data(http.get("/environments"))


def test_a_body_streaming_in_does_not_stall_other_requests(
    small_server: EmbeddedServer, client_for: Callable[..., httpx.Client]
) -> None:
    """While one client is part-way through a chunked upload, others are answered; once it
    passes the limit it gets its 413 without sending the rest."""
    with client_for(small_server) as http:
        sheet = create_sheet(http)
        with socket.create_connection((small_server.host, small_server.port)) as upload:
            head = (
                f"POST /v1/sheets/{sheet['id']}/records HTTP/1.1\r\n"
                f"Host: {small_server.host}\r\nAuthorization: Bearer {small_server.token}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            upload.sendall(head.encode())
            chunk = b"[" + b" " * (256 * 1024 - 1)

            def send_chunk(payload: bytes) -> None:
                upload.sendall(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")

            for _ in range(3):  # 0.75 MiB in, the upload still open
                send_chunk(chunk)
                assert data(http.get("/environments"))
                assert data(http.get(f"/sheets/{sheet['id']}/counts"))["counts"]["total"] == 0
            send_chunk(b" " * (300 * 1024))  # now past 1 MiB
            upload.settimeout(30)  # a hang guard only: the answer comes at once
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                received = upload.recv(65536)
                if not received:
                    break
                answer += received
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 413"), answer
        assert b"request body is more than 1 MiB; the limit is 1 MiB" in rest
        assert data(http.get("/environments"))


@pytest.mark.parametrize("bad", [0, -1, True, "32", float("nan"), float("inf"), None])
def test_max_body_mb_must_be_a_positive_number(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match=r"max_body_mb must be a positive number of MiB"):
        ServerConfig(db_path=tmp_path / "x.db", max_body_mb=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"max_body_mb must be a positive number of MiB"):
        EmbeddedServer(db_path=tmp_path / "x.db", max_body_mb=bad)  # type: ignore[arg-type]


def test_the_default_limit_is_32_mib(tmp_path: Path) -> None:
    assert ServerConfig(db_path=tmp_path / "x.db").max_body_bytes == 32 * 1024 * 1024
    assert ServerConfig(db_path=tmp_path / "x.db", max_body_mb=0.5).max_body_bytes == 512 * 1024


def test_split_bodies_pass_the_same_checks(http: httpx.Client) -> None:
    """The check is not per route: the split body (parts data) is refused the same way."""
    sheet = create_sheet(http)
    job = _executing_job(http, sheet["id"])
    body = '{"parts":[{"x":NaN}]}'
    (error,) = errors(http.post(f"/jobs/{job['id']}/split", content=body, headers=JSON), 400)
    assert error["key"] == "parts[0].x"
    assert list_parts(http, job["id"]) == []
