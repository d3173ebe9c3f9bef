"""Every client method against the real embedded server over loopback HTTP.

Each test runs twice: on ``Client``, and on ``AsyncClient`` driven from a private
event loop (``api`` fixture), so both send loops are covered by one test body.
The tests make their own workbooks and jobs, so they do not depend on what the
``server`` fixture seeded, and they share it without stepping on each other.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from splitkit.api import (
    AsyncClient,
    AuthError,
    BadRequestError,
    Client,
    InvalidTransitionError,
    NotFoundError,
    RecordCounts,
)

FIELDS = [
    {"key": "name", "type": "string", "label": "Name", "constraints": [{"type": "required"}]},
    {"key": "age", "type": "number", "label": "Age"},
    {"key": "vip", "type": "boolean", "label": "VIP"},
]


class _Awaited:
    """An AsyncClient seen through synchronous calls on one event loop of its own."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(attribute(*args, **kwargs))

        return call

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


@pytest.fixture(params=["Client", "AsyncClient"])
def api(request: pytest.FixtureRequest, server: Any) -> Iterator[Any]:
    args = (server.url, server.token)
    if request.param == "Client":
        with Client(*args, environment_id=server.environment_id) as client:
            yield client
    else:
        awaited = _Awaited(AsyncClient(*args, environment_id=server.environment_id))
        yield awaited
        awaited.close()


def _new_sheet(api: Any, name: str = "people") -> str:
    space = api.create_space(name=f"{name} space")
    workbook = api.create_workbook(
        f"{name} wb", [{"name": name, "slug": name, "fields": FIELDS}], space_id=space["id"]
    )
    return str(workbook["sheets"][0]["id"])


# -- environments, spaces, workbooks, sheets --------------------------------------------------


def test_resources(api: Any, server: Any) -> None:
    environments = api.list_environments()
    assert server.environment_id in [e["id"] for e in environments]

    space = api.create_space(name="round trip", metadata={"from": "test"})
    assert space["id"].startswith("us_sp_")
    assert space["environmentId"] == server.environment_id  # taken from the client's config

    sheet_config = {"name": "People", "slug": "people", "fields": FIELDS}
    workbook = api.create_workbook("wb", [sheet_config], space_id=space["id"], labels=["t"])
    assert workbook["id"].startswith("us_wb_") and workbook["spaceId"] == space["id"]
    assert api.get_workbook(workbook["id"])["name"] == "wb"

    sheets = api.list_sheets(workbook["id"])
    assert [s["slug"] for s in sheets] == ["people"]
    sheet = api.get_sheet(sheets[0]["id"])
    assert [f["key"] for f in sheet["config"]["fields"]] == ["name", "age", "vip"]


# -- records --------------------------------------------------------------------------------


def test_records_round_trip(api: Any) -> None:
    sheet_id = _new_sheet(api)
    assert api.get_counts(sheet_id) == RecordCounts(0, 0, 0)
    empty = api.get_records(sheet_id)
    assert list(empty.columns) == ["_id", "_valid"] and len(empty) == 0

    inserted = api.insert_records(
        sheet_id,
        [
            {"name": "Ada", "age": 36, "vip": True},
            {"name": "", "age": 41},  # required name missing: invalid
            {"name": {"value": "Cy", "valid": False, "messages": [{"message": "no"}]}},
            {"name": "Di", "age": 2.5, "vip": False},
        ],
    )
    assert inserted == 4
    assert api.get_counts(sheet_id) == RecordCounts(total=4, valid=2, error=2)

    frame = api.get_records(sheet_id)
    assert list(frame.columns) == ["_id", "_valid", "name", "age", "vip"]
    assert frame["_id"].str.startswith("us_rc_").all()
    assert frame["_valid"].tolist() == [True, False, False, True]
    assert frame["name"].tolist() == ["Ada", "", "Cy", "Di"]
    assert frame["age"].tolist()[:2] == [36, 41] and frame["age"].tolist()[3] == 2.5
    assert frame["vip"].tolist()[0] is True

    page_two = api.get_records(sheet_id, page_number=2, page_size=3)
    assert page_two["name"].tolist() == ["Di"]
    assert api.get_records(sheet_id, page_number=3, page_size=3).empty


def test_the_seeded_sheet_page_by_page(api: Any, server: Any) -> None:
    counts = api.get_counts(server.sheet_id)
    assert counts.total == counts.valid + counts.error and counts.error > 0
    pages = [
        api.get_records(server.sheet_id, page_number=n, page_size=750)
        for n in range(1, -(-counts.total // 750) + 2)
    ]
    assert [len(p) for p in pages[:-2]] == [750] * (len(pages) - 2) and pages[-1].empty
    frame = pd.concat(pages[:-1], ignore_index=True)
    assert len(frame) == counts.total and frame["_id"].is_unique
    assert int(frame["_valid"].sum()) == counts.valid
    assert {"_id", "_valid", "email", "lastName"} <= set(frame.columns)


def test_a_fresh_server_starts_empty(fresh_server: Any) -> None:
    with Client(fresh_server.url, fresh_server.token) as client:
        assert [e["id"] for e in client.list_environments()] == [fresh_server.environment_id]
        assert client.list_jobs() == []
        assert client.list_events(include_acknowledged=True) == []


def test_a_records_frame_inserts_back(api: Any) -> None:
    source = _new_sheet(api, "source")
    api.insert_records(source, [{"name": f"n{i}", "age": i} for i in range(25)])
    frame = api.get_records(source)

    target = _new_sheet(api, "target")
    assert api.insert_records(target, frame) == 25
    copied = api.get_records(target)
    pd.testing.assert_frame_equal(
        copied.drop(columns="_id"), frame.drop(columns="_id"), check_dtype=False
    )
    assert set(copied["_id"]).isdisjoint(frame["_id"])


# -- jobs -----------------------------------------------------------------------------------


def test_job_lifecycle(api: Any, server: Any) -> None:
    sheet_id = _new_sheet(api)
    job = api.create_job("sheet", "lifecycle", sheet_id, trigger="manual", info="queued")
    assert (job.status, job.type, job.operation, job.source) == (
        "created", "sheet", "lifecycle", sheet_id
    )  # fmt: skip
    assert job.environment_id == server.environment_id and not job.is_part

    assert api.execute_job(job.id) is None
    assert api.get_job(job.id).status == "ready"

    acked = api.ack_job(job.id, info="started", progress=10)
    assert acked.status == "executing" and acked.progress == 10 and acked.started_at is not None
    assert api.ack_job(job.id).status == "executing"  # a second ack, without a body

    updated = api.update_job(job.id, progress=50, metadata={"step": 2})
    assert updated.progress == 50 and updated.metadata["step"] == 2

    done = api.complete_job(job.id, message="all good", outcome={"acknowledge": True})
    assert done.status == "complete" and done.is_terminal and done.finished_at is not None
    assert done.outcome is not None and done.outcome["message"] == "all good"

    with pytest.raises(InvalidTransitionError) as refused:
        api.complete_job(job.id)
    error = refused.value
    assert error.status == 400 and error.key == "transition" and error.job_id == job.id
    assert str(error).startswith(f"POST /jobs/{job.id}/complete → 400: ")
    assert job.id in error.message


def test_fail_and_cancel(api: Any) -> None:
    sheet_id = _new_sheet(api)
    failing = api.create_job("sheet", "failing", sheet_id)
    assert failing.status == "ready"  # trigger "immediate" by default
    failed = api.fail_job(failing.id, message="boom", info="it broke")
    assert failed.status == "failed" and failed.info == "it broke"
    assert failed.outcome is not None and failed.outcome["message"] == "boom"

    canceled = api.cancel_job(api.create_job("sheet", "cancel", sheet_id).id, info="not needed")
    assert canceled.status == "canceled" and canceled.is_terminal
    with pytest.raises(InvalidTransitionError):
        api.ack_job(canceled.id)


def test_split_list_parts_and_retry(api: Any) -> None:
    sheet_id = _new_sheet(api)
    parent = api.create_job("sheet", "split", sheet_id)
    returned = api.split_job(parent.id, 5, run_in_parallel=True)
    assert returned.id == parent.id

    parts = api.list_parts(parent.id, page_size=2)  # three pages
    assert [p.part for p in parts] == [0, 1, 2, 3, 4]
    assert all(p.is_part and p.parent_id == parent.id and p.status == "ready" for p in parts)
    assert parts[3].part_data == {"part": 3, "total": 5}
    assert parts[0].part_execution == "parallel"
    assert [p.id for p in api.list_jobs(parent_id=parent.id, page_size=2, page_number=3)] == [
        parts[4].id
    ]

    with pytest.raises(InvalidTransitionError):
        api.split_job(parent.id, 2)  # split twice
    with pytest.raises(InvalidTransitionError):
        api.split_job(parts[0].id, 2)  # split a part

    api.fail_job(parts[1].id, message="flaky")
    retried = api.retry_job(parts[1].id)
    assert retried.status == "ready" and retried.metadata.get("attempt") == 2


def test_split_with_part_data_sequential(api: Any) -> None:
    parent = api.create_job("sheet", "seq", _new_sheet(api))
    api.split_job(parent.id, [{"page": 1}, {"page": 2}], run_in_parallel=False)
    first, second = api.list_parts(parent.id)
    assert first.part_data == {"page": 1, "part": 0, "total": 2}
    assert first.status == "ready" and second.status != "ready"  # waits for part 0
    assert first.part_execution == "sequential"


def test_list_jobs_filters(api: Any) -> None:
    parent = api.create_job("sheet", "listing", _new_sheet(api))
    api.split_job(parent.id, 3)
    top_level = api.list_jobs(exclude_child_jobs=True, page_size=10_000)
    ids = {j.id for j in top_level}
    assert parent.id in ids and not any(j.is_part for j in top_level)
    newest = api.list_jobs(sort_direction="desc", page_size=1)
    assert len(newest) == 1


# -- events ---------------------------------------------------------------------------------


def test_events(api: Any) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    sheet_id = _new_sheet(api)
    job = api.create_job("sheet", "events", sheet_id)
    ready = [
        e
        for e in api.list_events(topic="job:ready", since=before, page_size=1000)
        if e.job_id == job.id
    ]
    assert len(ready) == 1
    event = ready[0]
    assert event.domain == "job" and event.payload["job"] == "sheet:events"
    assert event.payload["isPart"] is False
    assert event.data_url is not None and sheet_id in event.data_url
    assert event.acknowledged_at is None

    assert api.get_event(event.id).id == event.id
    assert api.ack_event(event.id) is None
    assert api.get_event(event.id).acknowledged_at is not None
    assert event.id not in {e.id for e in api.list_events(since=before, page_size=1000)}
    seen = api.list_events(since=before, include_acknowledged=True, page_size=1000)
    assert event.id in {e.id for e in seen}
    created = api.list_events(since=event.created_at, domain="job", page_size=1000)
    assert event.id not in {e.id for e in created}  # since is exclusive


# -- errors ---------------------------------------------------------------------------------


def test_wrong_token(server: Any) -> None:
    token = "sk_wrong_but_secret_1234"
    with Client(server.url, token) as client, pytest.raises(AuthError) as info:
        client.get_job("us_jb_nope")
    assert info.value.status == 401
    assert token not in str(info.value) and token not in repr(info.value)

    async def run() -> None:
        async with AsyncClient(server.url, token) as client:
            await client.list_environments()

    with pytest.raises(AuthError) as async_info:
        asyncio.run(run())
    assert token not in str(async_info.value) and server.token not in str(async_info.value)


def test_unknown_ids(api: Any) -> None:
    with pytest.raises(NotFoundError) as info:
        api.get_job("us_jb_doesnotexist")
    assert str(info.value).startswith("GET /jobs/us_jb_doesnotexist → 404: ")
    for call, arg in [
        (api.get_sheet, "us_sh_nope"),
        (api.get_records, "us_sh_nope"),
        (api.get_counts, "us_sh_nope"),
        (api.get_workbook, "us_wb_nope"),
        (api.get_event, "us_evt_nope"),
        (api.ack_event, "us_evt_nope"),
        (api.retry_job, "us_jb_nope"),
    ]:
        with pytest.raises(NotFoundError):
            call(arg)


def test_server_side_bad_request(api: Any) -> None:
    parent = api.create_job("sheet", "too-many", _new_sheet(api))
    with pytest.raises(BadRequestError) as info:
        api.split_job(parent.id, 10**9)  # the client allows any count; the server bounds it
    assert not isinstance(info.value, InvalidTransitionError)
    with pytest.raises(BadRequestError):
        api.insert_records(_new_sheet(api), [{"name": {"value": "x", "colour": "red"}}])


def test_bad_arguments_fail_before_sending(api: Any) -> None:
    with pytest.raises(ValueError, match="page_size must be an integer between 1 and 10,000"):
        api.get_records("us_sh_x", page_size=0)
    with pytest.raises(ValueError, match="job_id must be a non-empty string"):
        api.complete_job("")
    with pytest.raises(ValueError, match="parts must be a positive integer"):
        api.split_job("us_jb_x", -3)
    with pytest.raises(ValueError, match="progress must be an integer between 0 and 100"):
        api.ack_job("us_jb_x", progress=150)


# -- the async client under concurrency ------------------------------------------------------


def test_async_client_runs_parts_concurrently(server: Any) -> None:
    async def run() -> tuple[list[str], list[Any]]:
        async with AsyncClient(
            server.url, server.token, environment_id=server.environment_id
        ) as client:
            space = await client.create_space(name="concurrent")
            workbook = await client.create_workbook(
                "wb", [{"name": "s", "fields": FIELDS}], space_id=space["id"]
            )
            parent = await client.create_job("sheet", "burst", workbook["sheets"][0]["id"])
            await client.split_job(parent.id, 60)
            parts = await client.list_parts(parent.id)

            async def run_part(part_id: str) -> str:
                await client.ack_job(part_id, progress=0)
                return (await client.complete_job(part_id, message="ok")).status

            statuses = await asyncio.gather(*(run_part(p.id) for p in parts))
            events = await client.list_events(
                topic="job:parts-completed", include_acknowledged=True, page_size=1000
            )
            return statuses, [e for e in events if e.job_id == parent.id]

    statuses, completed = asyncio.run(run())
    assert statuses == ["complete"] * 60
    assert len(completed) == 1
    assert completed[0].payload["parts"]["completed"] == 60
