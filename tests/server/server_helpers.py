"""Helpers for the server tests: build resources and read events over plain HTTP."""

from __future__ import annotations

from typing import Any

import httpx

CONTACT_FIELDS = [
    {"key": "name", "type": "string", "label": "Name"},
    {"key": "email", "type": "string", "label": "Email", "constraints": [{"type": "required"}]},
]


def data(response: httpx.Response, status: int = 200) -> Any:
    """The ``data`` member of a response that must have ``status``."""
    assert response.status_code == status, response.text
    return response.json()["data"]


def errors(response: httpx.Response, status: int) -> list[dict[str, str]]:
    """The ``errors`` of an error response that must have ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errors"} and body["errors"], body
    for error in body["errors"]:
        assert set(error) <= {"key", "message"} and error["message"], error
    return body["errors"]  # type: ignore[no-any-return]


def create_sheet(
    http: httpx.Client, fields: list[dict[str, Any]] | None = None, name: str = "Contacts"
) -> dict[str, Any]:
    """A space and a workbook with one sheet; returns the sheet."""
    space = data(http.post("/spaces", json={"name": "tests"}))
    workbook = data(
        http.post(
            "/workbooks",
            json={
                "name": "wb",
                "spaceId": space["id"],
                "sheets": [{"name": name, "fields": fields or CONTACT_FIELDS}],
            },
        )
    )
    return workbook["sheets"][0]  # type: ignore[no-any-return]


def create_job(
    http: httpx.Client,
    source: str,
    *,
    trigger: str = "immediate",
    operation: str = "submitLargeSheet",
    **fields: Any,
) -> dict[str, Any]:
    body = {"type": "sheet", "operation": operation, "source": source, "trigger": trigger}
    return data(http.post("/jobs", json={**body, **fields}))  # type: ignore[no-any-return]


def split_parent(http: httpx.Client, source: str, parts: Any, **body: Any) -> dict[str, Any]:
    """A new immediate job on ``source``, acked and split; returns the parent."""
    parent = create_job(http, source)
    data(http.post(f"/jobs/{parent['id']}/ack"))
    return data(http.post(f"/jobs/{parent['id']}/split", json={"parts": parts, **body}))  # type: ignore[no-any-return]


def list_parts(http: httpx.Client, parent_id: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    page = 1
    while True:
        body = http.get(
            "/jobs", params={"parentId": parent_id, "pageSize": 1000, "pageNumber": page}
        )
        batch = data(body)
        parts.extend(batch)
        if len(batch) < 1000:
            return parts
        page += 1


def all_events(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every event (acknowledged too) matching ``params``, all pages, in creation order."""
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        query = {"includeAcknowledged": "true", "pageSize": 1000, "pageNumber": page, **params}
        batch = data(http.get("/events", params=query))
        found.extend(batch)
        if len(batch) < 1000:
            return found
        page += 1


def events_of(http: httpx.Client, job_id: str, **params: Any) -> list[dict[str, Any]]:
    """The events whose context names ``job_id``, in creation order."""
    return [e for e in all_events(http, domain="job", **params) if e["context"]["jobId"] == job_id]


def topics(events: list[dict[str, Any]]) -> list[str]:
    return [event["topic"] for event in events]
