"""Listing every part of a parent, and paging events, cost linear time in total (issue 10).

With OFFSET, page k makes SQLite step over the k - 1 pages before it again: reading all
pages costs N²/2 rows. The cost is counted in SQLite virtual-machine steps (a progress
handler on the store's connection), not in time: page 20 of a 20,000-part listing must
cost about what page 1 costs. Over HTTP, the pages must hold exactly what OFFSET paging
held: every part once, in order, both directions; events as OFFSET gives them even when
an acknowledgement between two pages changes which events an earlier page selects.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from server_helpers import create_job, create_sheet, data, split_parent

from splitkit.server import EmbeddedServer, events, jobs, parts
from splitkit.server.store import Store

PARTS = 20_000
PAGE = 1_000


@pytest.fixture(scope="module")
def big_parent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str, str]]:
    """A store with a parent of PARTS parts and one of PAGE parts: (store, big, small)."""
    store = Store(tmp_path_factory.mktemp("linear") / "linear.db", durable=False)
    ids = []
    for count in (PARTS, PAGE):
        parent = jobs.create(store, {"type": "sheet", "operation": "x", "source": "file-1",
                                     "trigger": "immediate"})  # fmt: skip
        parts.split(store, parent["id"], count, True, PARTS)
        ids.append(parent["id"])
    yield store, ids[0], ids[1]
    store.close()


def steps_of(conn: sqlite3.Connection, read: Callable[[], object]) -> int:
    """SQLite VM steps (in units of 10) spent in ``read()`` on ``conn``."""
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0  # go on

    conn.set_progress_handler(tick, 10)
    try:
        read()
    finally:
        conn.set_progress_handler(None, 10)
    return count


@pytest.mark.parametrize("descending", [False, True])
def test_the_last_page_of_a_parents_parts_costs_what_the_first_costs(
    big_parent: tuple[Store, str, str], descending: bool
) -> None:
    store, big, small = big_parent

    def page(number: int, parent_id: str = big, parts: int = PARTS) -> Callable[[], object]:
        def read() -> object:
            items, total = jobs.list_jobs(
                store, page_number=number, page_size=PAGE, descending=descending,
                parent_id=parent_id,
            )  # fmt: skip
            assert total == parts and len(items) == PAGE
            first = (number - 1) * PAGE
            expected = parts - 1 - first if descending else first
            assert items[0]["partData"]["part"] == expected
            return items

        return read

    conn = store.connection()
    first, last = steps_of(conn, page(1)), steps_of(conn, page(PARTS // PAGE))
    assert last < 1.5 * first, f"page {PARTS // PAGE} cost {last} x10 VM steps, page 1 {first}"
    # and a page does not cost more because the parent has more parts (no COUNT(*))
    alone = steps_of(conn, page(1, small, PAGE))
    assert first < 1.5 * alone, (
        f"page 1 of {PARTS:,} parts: {first} x10 VM steps; of {PAGE:,}: {alone}"
    )


def test_paging_all_events_in_order_costs_the_same_per_page(
    big_parent: tuple[Store, str, str],
) -> None:
    store, _, _ = big_parent  # the splits wrote 2 events per part
    conn = store.connection()
    costs = []
    for number in range(1, 2 * (PARTS + PAGE) // PAGE + 1):
        query = events.EventFilter(
            environment_id=store.environment_id, page_number=number, page_size=PAGE
        )
        costs.append(steps_of(conn, lambda q=query: events.list_events(store, q)))
    assert costs[-1] < 1.5 * costs[0], f"last page {costs[-1]} x10 VM steps, first {costs[0]}"


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    path: Path = tmp_path_factory.mktemp("linear-http") / "db.sqlite"
    with EmbeddedServer(db_path=path) as server, httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, trust_env=False
    ) as client:  # fmt: skip
        yield client


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_every_part_is_listed_once_in_order_over_http(
    http_server: httpx.Client, direction: str
) -> None:
    sheet = create_sheet(http_server)
    parent = split_parent(http_server, sheet["id"], 25)
    seen = []
    for number in range(1, 6):  # 25 parts in pages of 7: 7, 7, 7, 4, then none
        body = http_server.get(
            "/jobs",
            params={
                "parentId": parent["id"],
                "pageSize": 7,
                "pageNumber": number,
                "sortDirection": direction,
            },
        )
        assert body.status_code == 200, body.text
        assert body.json()["pagination"] == {"currentPage": number, "pageCount": 4,
                                             "totalCount": 25}  # fmt: skip
        seen += [job["partData"]["part"] for job in body.json()["data"]]
    assert seen == (list(range(25)) if direction == "asc" else list(range(24, -1, -1)))
    other = data(http_server.get("/jobs", params={"parentId": parent["id"], "spaceId": "none"}))
    assert other == []


def test_an_ack_between_pages_gives_what_offset_paging_gives(http_server: httpx.Client) -> None:
    sheet = create_sheet(http_server)
    source = {"topic": "job:ready", "domain": "job"}

    def page(number: int) -> list[str]:
        params = {**source, "pageSize": 5, "pageNumber": number}
        return [event["id"] for event in data(http_server.get("/events", params=params))]

    for _ in range(10):  # each an immediate job: one job:ready each
        create_job(http_server, sheet["id"])
    everything = page(1) + page(2) + page(3) + page(4)
    first = page(1)
    # acknowledged events leave the listing: OFFSET's page 2 now starts one event later
    data(http_server.post(f"/events/{first[0]}/ack"))
    assert page(2) == [e for e in everything if e != first[0]][5:10]
