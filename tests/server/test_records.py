"""Records: validity on insert, exact counts, paging, and the sample sheets."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from server_helpers import create_sheet, data, errors

from splitkit.server import EmbeddedServer, samples
from splitkit.server.records import PAGE_QUERY
from splitkit.server.store import Store

REQUIRED_SOURCE = "required-constraint"


def _records(http: httpx.Client, sheet_id: str, **params: object) -> list[dict]:
    return data(http.get(f"/sheets/{sheet_id}/records", params=params))["records"]  # type: ignore[no-any-return]


def test_insert_keeps_cells_and_applies_required(fresh_http: httpx.Client) -> None:
    sheet = create_sheet(fresh_http)
    flagged = {"type": "error", "message": "looks fake", "source": "custom-logic"}
    body = [
        {"name": "Ada", "email": "ada@example.com"},  # plain values
        {"name": {"value": "Bob"}, "email": {"value": "bob@example.com", "valid": True}},
        {"name": {"value": "Cy", "valid": False, "messages": [flagged]}, "email": "cy@x.io"},
        {"name": "Di"},  # required email missing
        {"name": "Ed", "email": {"value": "   "}},  # required email blank
        {"name": "Fay", "email": None, "tags": ["a", "b"], "age": 41, "vip": True},
    ]
    inserted = data(fresh_http.post(f"/sheets/{sheet['id']}/records", json=body))
    assert inserted["success"] is True and len(inserted["records"]) == 6
    assert inserted["counts"] == {"total": 6, "valid": 2, "error": 4}

    records = _records(fresh_http, sheet["id"])
    assert records == inserted["records"]
    assert [r["valid"] for r in records] == [True, True, False, False, False, False]
    assert all(r["id"].startswith("us_rc_") for r in records)
    assert records[0]["values"]["name"] == {"value": "Ada", "valid": True, "messages": []}
    assert records[2]["values"]["name"] == {"value": "Cy", "valid": False, "messages": [flagged]}
    for record in records[3:]:
        email = record["values"]["email"]
        assert email["valid"] is False
        (message,) = email["messages"]
        assert message["source"] == REQUIRED_SOURCE and message["type"] == "error"
        assert message["field"] == "email" and "Email" in message["message"]
    assert records[5]["values"]["tags"]["value"] == ["a", "b"]
    assert records[5]["values"]["age"]["value"] == 41

    counts = data(fresh_http.get(f"/sheets/{sheet['id']}/counts"))["counts"]
    assert counts == {"total": 6, "valid": 2, "error": 4}
    assert data(fresh_http.get(f"/sheets/{sheet['id']}"))["recordCounts"] == counts
    data(fresh_http.post(f"/sheets/{sheet['id']}/records", json=[]))  # nothing to add is fine
    data(fresh_http.post(f"/sheets/{sheet['id']}/records", json=body[:1]))
    counts = data(fresh_http.get(f"/sheets/{sheet['id']}/counts"))["counts"]
    assert counts == {"total": 7, "valid": 3, "error": 4}


def test_pages_are_in_insertion_order(fresh_http: httpx.Client) -> None:
    sheet = create_sheet(fresh_http)
    rows = [{"name": f"n{i}", "email": f"e{i}@x.io"} for i in range(25)]
    data(fresh_http.post(f"/sheets/{sheet['id']}/records", json=rows[:10]))
    data(fresh_http.post(f"/sheets/{sheet['id']}/records", json=rows[10:]))
    names = [r["values"]["name"]["value"] for r in _records(fresh_http, sheet["id"])]
    assert names == [f"n{i}" for i in range(25)]  # the default page size is 10,000
    page = _records(fresh_http, sheet["id"], pageSize=10, pageNumber=3, **{"for": "us_evt_x"})
    assert [r["values"]["name"]["value"] for r in page] == [f"n{i}" for i in range(20, 25)]
    assert _records(fresh_http, sheet["id"], pageSize=10, pageNumber=4) == []
    assert _records(fresh_http, sheet["id"], pageSize=10, pageNumber=2**31 - 1) == []
    assert len(_records(fresh_http, sheet["id"], pageSize=10_000)) == 25


def test_the_session_sheet_has_valid_and_invalid_records(
    server: EmbeddedServer, http: httpx.Client
) -> None:
    counts = data(http.get(f"/sheets/{server.sheet_id}/counts"))["counts"]
    assert counts["total"] == 2_000 and counts["error"] > 0 and counts["valid"] > 0
    assert counts["valid"] + counts["error"] == 2_000
    records = [
        r
        for page in (1, 2)
        for r in _records(http, server.sheet_id or "", pageSize=1000, pageNumber=page)
    ]
    assert len(records) == 2_000 and len({r["id"] for r in records}) == 2_000
    assert sum(not r["valid"] for r in records) == counts["error"]


def test_a_page_is_a_primary_key_range_scan(tmp_path: Path) -> None:
    """Page k costs the same for every k: the plan searches the key, it never skips rows."""
    Store(tmp_path / "plan.db").close()
    conn = sqlite3.connect(tmp_path / "plan.db")
    plan = " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {PAGE_QUERY}", (1, 1, 2)))
    conn.close()
    assert "USING PRIMARY KEY (sheet=? AND seq>? AND seq<?)" in plan, plan
    assert "OFFSET" not in PAGE_QUERY.upper()


def test_the_contacts_sample_loads_from_data_samples(
    tmp_path: Path, client_for: Callable[..., httpx.Client]
) -> None:
    server = EmbeddedServer(db_path=tmp_path / "contacts.db", sample="contacts")
    with server, client_for(server) as http:
        counts = data(http.get(f"/sheets/{server.sheet_id}/counts"))["counts"]
        sheet = data(http.get(f"/sheets/{server.sheet_id}"))
    assert counts["total"] == 3_000 and 0 < counts["error"] < 500
    assert [f["key"] for f in sheet["config"]["fields"]] == list(samples.COLUMNS)


def test_generated_records_are_deterministic() -> None:
    first = list(samples.generate_records(300, seed=7))
    assert first == list(samples.generate_records(300, seed=7))
    assert first != list(samples.generate_records(300, seed=8))
    invalid = [
        r for r in first if not r["lastName"] or not r["email"] or isinstance(r["email"], dict)
    ]
    assert 0 < len(invalid) < 60


def test_a_missing_sample_fails_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"sample 'nope' not found: .*data/samples"):
        EmbeddedServer(db_path=tmp_path / "x.db", sample="nope").start()


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"name": "x"}, "body"),
        (["not an object"], "0"),
        ([{"name": {"value": {"nested": 1}}}], "[0].name.value"),
        ([{"name": {"value": "x", "color": "red"}}], "[0].name"),
        ([{"name": {"value": "x", "valid": "yes"}}], "[0].name.valid"),
        ([{"name": {"value": "x", "messages": "oops"}}], "[0].name.messages"),
        ([{"name": [1, 2]}], "[0].name"),
        ([{"name": 2**70}], "[0].name"),
    ],
)
def test_bad_records_are_refused_naming_the_field(
    fresh_http: httpx.Client, body: object, key: str
) -> None:
    sheet = create_sheet(fresh_http)
    (error,) = errors(fresh_http.post(f"/sheets/{sheet['id']}/records", json=body), 400)
    assert error["key"] == key and key in error["message"]
    counts = data(fresh_http.get(f"/sheets/{sheet['id']}/counts"))["counts"]
    assert counts["total"] == 0  # nothing of a refused insert is kept
