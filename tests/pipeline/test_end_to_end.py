"""plan → split → dispatch → outcomes → summary → settle, over real HTTP."""

from __future__ import annotations

import threading
import time

import pytest

from splitkit import Client, Part, dispatch, settle, summarize
from splitkit.api import Event

FAILING = {3, 17}
SLOW = {5, 25}


def parts_completed_events(job_events, parent_id: str) -> list[Event]:
    return [e for e in job_events("job:parts-completed") if e.context.get("jobId") == parent_id]


def test_mixed_outcomes_end_in_a_failed_parent(client: Client, split_job, job_events) -> None:
    parent_id, parts = split_job(batch_size=50, total=2000)  # 40 parts
    assert len(parts) == 40
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def handler(part: Part) -> str:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            assert len(part.records) == 50
            assert part.parent_id == parent_id
            if part.index in FAILING:
                raise RuntimeError(f"bad batch {part.index}")
            time.sleep(6.0 if part.index in SLOW else 0.05)
            return f"{len(part.records)} ok"
        finally:
            with lock:
                in_flight -= 1

    handle = dispatch(
        client,
        parent_id,
        handler,
        concurrency=16,
        # 30x a normal part's 50 ms: seen failing once at 0.5 s under a loaded machine.
        timeout=1.5,
        retries=0,
        progress=False,
        wait=True,
    )
    outcomes = handle.outcomes.set_index("part")
    assert len(outcomes) == 40
    assert peak <= 16
    for index in FAILING:
        assert outcomes.loc[index, "status"] == "failed"
        assert f"RuntimeError: bad batch {index}" in outcomes.loc[index, "error"]
        assert "Traceback" in outcomes.loc[index, "traceback"]
    for index in SLOW:
        assert outcomes.loc[index, "status"] == "failed"
        assert "timed out after 1.5 s" in outcomes.loc[index, "error"]
    completed = outcomes[outcomes["status"] == "completed"]
    assert len(completed) == 36
    assert (completed["message"] == "50 ok").all()
    assert (outcomes["attempts"] == 1).all()

    # Every part ended on the server as the frame says.
    server_status = {job.id: job.status for job in client.list_parts(parent_id)}
    for row in outcomes.itertuples():
        expected = {"completed": "complete", "failed": "failed"}[row.status]
        assert server_status[row.job_id] == expected

    summary = summarize(handle.outcomes)
    (event,) = parts_completed_events(job_events, parent_id)
    from_server = summarize(parts_completed=event.payload)
    for column in ("total", "completed", "failed", "canceled"):
        assert int(summary[column].iloc[0]) == int(from_server[column].iloc[0])
    assert int(summary["failed"].iloc[0]) == 4
    assert int(summary["records_processed"].iloc[0]) == 36 * 50

    result = settle(client, parent_id, summary)
    assert result.changed
    parent = client.get_job(parent_id)
    assert parent.status == "failed"
    assert "4 of 40 parts failed" in (result.message or "")


def test_a_handler_that_always_succeeds_completes_the_parent(
    client: Client, split_job, job_events
) -> None:
    parent_id, _ = split_job(batch_size=250, total=2000)

    async def handler(part: Part) -> dict[str, object]:
        return {"message": f"part {part.index}", "heading": "done"}

    handle = dispatch(client, parent_id, handler, concurrency=16, progress=False, wait=True)
    summary = summarize(handle.outcomes)
    assert int(summary["completed"].iloc[0]) == 8
    result = settle(client, parent_id, summary)
    assert client.get_job(parent_id).status == "complete"
    again = settle(client, parent_id, summary)
    assert result.changed and not again.changed
    assert len(parts_completed_events(job_events, parent_id)) == 1


def test_cancel_ends_pending_parts_canceled_on_the_server(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=100, total=2000)  # 20 parts
    started = threading.Event()

    def handler(part: Part) -> None:
        started.set()
        time.sleep(0.3)

    handle = dispatch(client, parent_id, handler, concurrency=2, progress=False, wait=False)
    assert started.wait(10)
    handle.cancel()
    outcomes = handle.wait(30)
    tally = outcomes["status"].value_counts().to_dict()
    assert tally.get("canceled", 0) >= 10
    assert tally.get("completed", 0) + tally.get("canceled", 0) == 20
    jobs = {job.id: job.status for job in client.list_parts(parent_id)}
    for row in outcomes.itertuples():
        assert jobs[row.job_id] == {"completed": "complete", "canceled": "canceled"}[row.status]
    summary = summarize(outcomes)
    assert int(summary["canceled"].iloc[0]) == tally["canceled"]
    result = settle(client, parent_id, summary)
    assert client.get_job(parent_id).status == "failed"
    assert "canceled" in (result.message or "")


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_executors_run_the_handler(client: Client, split_job, kind: str) -> None:
    from splitkit import ProcessExecutor, ThreadExecutor

    parent_id, _ = split_job(batch_size=500)
    executor = ThreadExecutor(4) if kind == "thread" else ProcessExecutor(2)
    handle = dispatch(
        client, parent_id, count_records, executor=executor, progress=False, wait=True
    )
    assert set(handle.outcomes["status"]) == {"completed"}
    assert set(handle.outcomes["message"]) == {"500 records"}


def count_records(part: Part) -> str:  # module level: picklable for the process pool
    return f"{len(part.records)} records"
