"""The official Flatfile Python SDK drives the whole multi-part flow against the server.

Every response goes through the SDK's pydantic models, so a missing required field (or a
wrong type) in any of our responses fails here.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from flatfile import Flatfile
from flatfile.jobs import JobAckDetails, JobCompleteDetails
from flatfile.property import Constraint_Required, Property_String
from flatfile.sheets import SheetConfig

from splitkit.server import EmbeddedServer

RECORDS, BATCH = 250, 60


def test_the_sdk_runs_the_seed_flow(fresh_server: EmbeddedServer) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    sdk = Flatfile(token=fresh_server.token, base_url=fresh_server.url)

    (environment,) = sdk.environments.list().data
    assert environment.id == fresh_server.environment_id
    assert sdk.environments.get(environment.id).data.id == environment.id
    space = sdk.spaces.create(name="SDK contract", environment_id=environment.id).data
    assert sdk.spaces.get(space.id).data.name == "SDK contract"
    workbook = sdk.workbooks.create(
        name="Contacts",
        space_id=space.id,
        environment_id=environment.id,
        sheets=[
            SheetConfig(
                name="Contacts",
                slug="contacts",
                fields=[
                    Property_String(key="name", label="Name"),
                    Property_String(
                        key="email", label="Email", constraints=[Constraint_Required()]
                    ),
                ],
            )
        ],
    ).data
    assert sdk.workbooks.get(workbook.id).data.id == workbook.id
    sheet_id = workbook.sheets[0].id  # type: ignore[index]
    assert [s.id for s in sdk.sheets.list(workbook_id=workbook.id).data] == [sheet_id]
    assert sdk.sheets.get(sheet_id).data.slug == "contacts"

    rows = [
        {"name": {"value": f"n{i}"}, "email": {"value": "" if i % 50 == 0 else f"e{i}@x.io"}}
        for i in range(RECORDS)
    ]
    inserted = sdk.records.insert(sheet_id, request=rows).data  # type: ignore[arg-type]
    assert inserted.success and len(inserted.records or []) == RECORDS
    counts = sdk.sheets.get_record_counts(sheet_id).data.counts
    assert (counts.total, counts.valid, counts.error) == (RECORDS, RECORDS - 5, 5)

    # the parent job: created ready, acked, split into parts
    parent = sdk.jobs.create(
        type="sheet", operation="submitLargeSheet", source=sheet_id, trigger="immediate"
    ).data
    assert parent.status == "ready"
    sdk.jobs.ack(parent.id, request=JobAckDetails(info="Splitting Job", progress=10))
    total_parts = math.ceil(counts.total / BATCH)
    split = sdk.jobs.split(parent.id, parts=total_parts).data
    assert split.id == parent.id
    sdk.jobs.ack(parent.id, request=JobAckDetails(info=f"Split into {total_parts}", progress=20))

    parts = sdk.jobs.list(parent_id=parent.id, page_size=100)
    assert parts.pagination is not None and parts.pagination.total_count == total_parts
    seen = 0
    for part in parts.data:
        assert part.parent_id == parent.id and part.part_data is not None
        sdk.jobs.ack(part.id)
        job = sdk.jobs.get(part.id).data
        assert job.status == "executing"
        page = sdk.records.get(
            sheet_id,
            page_size=BATCH,
            page_number=job.part_data["part"] + 1,
            for_="us_evt_x",  # type: ignore[index]
        ).data
        seen += len(page.records)
        sdk.jobs.complete(
            part.id, request=JobCompleteDetails(outcome={"message": "This part is done."})
        )
    assert seen == RECORDS

    ready = sdk.events.list(topic="job:ready", since=started, page_size=100).data
    assert any(e.context.job_id == parent.id and e.payload["isPart"] is False for e in ready)
    completed = sdk.events.list(topic="job:parts-completed", since=started, page_size=100).data
    (event,) = [e for e in completed if e.context.job_id == parent.id]
    assert event.payload["parts"] == {
        "total": total_parts, "completed": total_parts, "failed": 0, "canceled": 0,
    }  # fmt: skip
    assert sdk.events.get(event.id).data.id == event.id
    assert sdk.events.ack(event.id).data.success  # type: ignore[union-attr]

    done = sdk.jobs.complete(
        parent.id, request=JobCompleteDetails(outcome={"message": "This job is now complete."})
    ).data
    assert done.status == "complete" and done.finished_at is not None


def test_the_sdk_reads_every_other_job_response(server: EmbeddedServer) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    sdk = Flatfile(token=server.token, base_url=server.url)
    source = server.sheet_id or ""
    manual = sdk.jobs.create(type="sheet", operation="sdkOther", source=source).data
    assert manual.status == "created"
    assert sdk.jobs.execute(manual.id).data.success  # type: ignore[union-attr]
    updated = sdk.jobs.update(manual.id, info="patched", progress=5).data
    assert (updated.info, updated.progress) == ("patched", 5)
    parent = sdk.jobs.split(manual.id, parts=[{"a": 1}, {"a": 2}], run_in_parallel=False).data
    first, second = sdk.jobs.list(parent_id=parent.id).data
    assert second.predecessor_ids == [first.id] and second.status == "waiting"
    failed = sdk.jobs.fail(first.id, request=JobCompleteDetails(info="boom")).data
    assert failed.status == "failed"
    assert sdk.jobs.retry(first.id).data.metadata == {"attempt": 2}
    assert sdk.jobs.cancel(first.id).data.status == "canceled"
    sdk.jobs.complete(second.id)
    acked = sdk.jobs.ack_outcome(parent.id).data
    assert acked.outcome_acknowledged_at is not None
    assert sdk.jobs.delete(parent.id).data.success  # type: ignore[union-attr]
    events = sdk.events.list(since=started, page_size=1000, include_acknowledged=True).data
    assert {"job:deleted", "job:outcome-acknowledged", "job:parts-completed"} <= {
        e.topic for e in events
    }
