"""Records: validity on insert, exact counts, paging, and the sample sheets."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from server_helpers import create_sheet, data, errors

from splitkit.server import EmbeddedServer, pages, samples
from splitkit.server.pages import PAGE_QUERY, VALID_PAGE_QUERY
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
    """Page k costs the same for every k: the plans search a key, they never skip rows."""
    Store(tmp_path / "plan.db").close()
    conn = sqlite3.connect(tmp_path / "plan.db")

    def plan(query: str, params: tuple[object, ...]) -> str:
        return " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", params))

    assert "USING PRIMARY KEY (sheet=? AND seq>? AND seq<?)" in plan(PAGE_QUERY, (1, 1, 2))
    valid_plan = plan(VALID_PAGE_QUERY, (1, 1, 1, 2))
    assert "USING INDEX records_valid (sheet=? AND valid=? AND vseq>? AND vseq<?)" in valid_plan
    conn.close()


def _vm_steps(store: Store, read: Callable[[], object]) -> int:
    """SQLite virtual-machine instructions ``read`` runs on this thread's connection:
    a measure of work that, unlike time, is exact and repeatable."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # 0: go on

    conn = store.connection()
    conn.set_progress_handler(count, 1)
    try:
        read()
    finally:
        conn.set_progress_handler(None, 1)
    return steps


@pytest.mark.parametrize(
    "selection",
    [pages.EVERY, pages.Selection("valid"), pages.Selection("error")],
    ids=["every", "valid", "error"],
)
def test_the_last_page_costs_what_the_first_does(
    tmp_path: Path, selection: pages.Selection
) -> None:
    """Measured on the real page(): the work of page k does not grow with k (an OFFSET or
    a scan of the skipped records would make the last page cost hundreds of times more)."""
    store = Store(tmp_path / "cost.db")
    try:
        sheet = samples.create_sample_sheet(store, records_count=6_000, seed=3)
        counts = pages.counts_of(store, sheet.sheet_id, selection)
        size = 10
        last = counts["total"] // size  # a full page

        def cost(number: int) -> int:
            return _vm_steps(
                store, lambda: pages.page(store, sheet.sheet_id, number, size, selection)
            )

        assert last >= 20  # far enough from page 1 that a scan would show
        first_cost, last_cost = cost(1), cost(last)
        assert first_cost > 0
        assert last_cost <= first_cost + 5, (first_cost, last_cost)
    finally:
        store.close()


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
    with pytest.raises(
        FileNotFoundError, match=r"sample 'nope' not found: the samples are 'contacts'"
    ):
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


# -- filter and ids -------------------------------------------------------------------------


def _mixed_sheet(http: httpx.Client, n: int = 40) -> tuple[str, list[dict]]:
    """A sheet of ``n`` records, every third one invalid (email missing); its records."""
    sheet = create_sheet(http)
    rows = [{"name": f"n{i}", **({} if i % 3 == 2 else {"email": f"e{i}@x.io"})} for i in range(n)]
    data(http.post(f"/sheets/{sheet['id']}/records", json=rows[:15]))  # two inserts: vseq
    data(http.post(f"/sheets/{sheet['id']}/records", json=rows[15:]))  # continues across
    return sheet["id"], _records(http, sheet["id"])


def _all_pages(http: httpx.Client, sheet_id: str, size: int, **params: object) -> list[dict]:
    """Every page of a query, checking that each page but the last is full."""
    found: list[dict] = []
    for number in range(1, 1_000):
        page = _records(http, sheet_id, pageSize=size, pageNumber=number, **params)
        found.extend(page)
        if len(page) < size:
            return found
    raise AssertionError("paging did not end")


def _counts_of(records: list[dict]) -> dict[str, int]:
    valid = sum(r["valid"] for r in records)
    return {"total": len(records), "valid": valid, "error": len(records) - valid}


def _names(records: list[dict]) -> list[str]:
    return [r["values"]["name"]["value"] for r in records]


@pytest.mark.parametrize("size", [3, 10_000])
def test_filter_pages_through_the_valid_or_the_invalid_records(
    http: httpx.Client, size: int
) -> None:
    sheet_id, every = _mixed_sheet(http)
    valid = [r for r in every if r["valid"]]
    invalid = [r for r in every if not r["valid"]]
    assert len(valid) == 27 and len(invalid) == 13
    for name, expected in (("valid", valid), ("error", invalid), ("all", every)):
        assert _names(_all_pages(http, sheet_id, size, filter=name)) == _names(expected), name
        response = data(http.get(f"/sheets/{sheet_id}/records", params={"filter": name}))
        assert response["counts"] == _counts_of(expected)
        counts = data(http.get(f"/sheets/{sheet_id}/counts", params={"filter": name}))["counts"]
        assert counts == _counts_of(expected)
    # a page past the end of a filter is empty, far past too
    assert _records(http, sheet_id, filter="error", pageSize=13, pageNumber=2) == []
    assert _records(http, sheet_id, filter="valid", pageSize=10, pageNumber=2**31 - 1) == []


def test_ids_alone_select_those_records_in_sheet_order(http: httpx.Client) -> None:
    sheet_id, every = _mixed_sheet(http)
    other_id, other = _mixed_sheet(http, 3)
    wanted = [every[30], every[2], every[7]]  # asked out of order, one invalid
    ids = [r["id"] for r in wanted] + ["us_rc_unknown", other[0]["id"], every[7]["id"]]
    found = _records(http, sheet_id, ids=ids)
    assert [r["id"] for r in found] == [every[2]["id"], every[7]["id"], every[30]["id"]]
    assert found == [every[2], every[7], every[30]]  # the stored records, unchanged
    response = data(http.get(f"/sheets/{sheet_id}/records", params={"ids": ids}))
    assert response["counts"] == {"total": 3, "valid": 2, "error": 1}
    counts = data(http.get(f"/sheets/{sheet_id}/counts", params={"ids": ids}))["counts"]
    assert counts == {"total": 3, "valid": 2, "error": 1}
    assert _names(_all_pages(http, sheet_id, 2, ids=ids)) == ["n2", "n7", "n30"]
    assert _records(http, sheet_id, ids=["us_rc_unknown"]) == []
    assert _records(http, other_id, ids=[every[0]["id"]]) == []  # another sheet's record


@pytest.mark.parametrize("size", [1, 4, 10_000])
def test_ids_with_a_filter_leave_those_records_out(http: httpx.Client, size: int) -> None:
    sheet_id, every = _mixed_sheet(http)
    # left out: the first records, runs of neighbours, the last ones, and an invalid one
    left_out = {every[i]["id"] for i in (0, 1, 3, 4, 5, 2, 20, 21, 38, 39)}
    ids = [*sorted(left_out), "us_rc_unknown"]
    for name in ("valid", "error", "all"):
        expected = [
            r
            for r in every
            if r["id"] not in left_out and (name == "all" or r["valid"] == (name == "valid"))
        ]
        paged = _all_pages(http, sheet_id, size, filter=name, ids=ids)
        assert _names(paged) == _names(expected), (name, size)
        counts = data(http.get(f"/sheets/{sheet_id}/counts", params={"filter": name, "ids": ids}))
        assert counts["counts"] == _counts_of(expected), name


def test_more_than_100_ids_are_refused(http: httpx.Client) -> None:
    sheet_id, _ = _mixed_sheet(http, 1)
    ids = [f"us_rc_{i:016x}" for i in range(101)]
    for path in ("records", "counts"):
        (error,) = errors(http.get(f"/sheets/{sheet_id}/{path}", params={"ids": ids}), 400)
        assert error["key"] == "ids" and "100" in error["message"]
    assert _records(http, sheet_id, ids=ids[:100]) == []


UNSUPPORTED = [
    "q", "sortField", "sortDirection", "searchValue", "searchField", "filterField",
    "commitId", "sinceCommitId", "versionId", "sinceVersionId", "fields", "byField",
]  # fmt: skip


@pytest.mark.parametrize("name", UNSUPPORTED)
@pytest.mark.parametrize("path", ["records", "counts"])
def test_unimplemented_record_parameters_are_refused_by_name(
    server: EmbeddedServer, http: httpx.Client, name: str, path: str
) -> None:
    url = f"/sheets/{server.sheet_id}/{path}"
    (error,) = errors(http.get(url, params={name: "x", "pageSize": 5}), 400)
    assert error["key"] == name
    assert error["message"].startswith(f"{name}: this server does not implement")


@pytest.mark.parametrize(
    ("value", "says"), [("none", "'none' is not supported"), ("VALID", "filter"), ("", "filter")]
)
def test_filter_none_and_unknown_filters_are_refused(
    server: EmbeddedServer, http: httpx.Client, value: str, says: str
) -> None:
    for path in ("records", "counts"):
        url = f"/sheets/{server.sheet_id}/{path}"
        (error,) = errors(http.get(url, params={"filter": value}), 400)
        assert error["key"] == "filter" and says in error["message"]


def test_an_older_database_file_gains_filter_and_ids(
    tmp_path: Path, client_for: Callable[..., httpx.Client]
) -> None:
    """A file written before the validity numbering and record-id columns existed: opening
    it fills them in, and filter / ids then work on its records."""
    path = tmp_path / "old.db"
    store = Store(path)
    sheet = samples.create_sample_sheet(store, records_count=300, seed=5)
    store.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP INDEX records_valid; DROP INDEX records_id;"
        "ALTER TABLE records DROP COLUMN valid; ALTER TABLE records DROP COLUMN vseq;"
        "ALTER TABLE records DROP COLUMN rid;"
    )
    conn.close()
    server = EmbeddedServer(db_path=path, records=300, seed=5)
    with server, client_for(server) as http:
        assert server.sheet_id == sheet.sheet_id
        every = _records(http, sheet.sheet_id)
        invalid = [r for r in every if not r["valid"]]
        assert 0 < len(invalid) < 300
        assert _all_pages(http, sheet.sheet_id, 7, filter="error") == invalid
        assert _records(http, sheet.sheet_id, ids=[invalid[-1]["id"]]) == [invalid[-1]]
        # records inserted after the upgrade continue the numbering
        data(http.post(f"/sheets/{sheet.sheet_id}/records", json=[{"firstName": "x"}]))
        invalid = [r for r in _records(http, sheet.sheet_id) if not r["valid"]]
        assert _all_pages(http, sheet.sheet_id, 7, filter="error") == invalid
