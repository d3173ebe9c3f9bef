"""retry_failed(): the failed parts of a finished run, run again on the real embedded server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
import pytest

from splitkit import (
    Client,
    Part,
    dispatch,
    plan_parts,
    settle,
    split_parent,
    start_parent_job,
    summarize,
)
from splitkit.api import Event
from splitkit.api.errors import InvalidTransitionError
from splitkit.retry import retry_failed, retryable_parts

PARTS = 12
BATCH = 50
FAILING = frozenset({2, 5, 9})


@pytest.fixture
def client(server) -> Iterator[Client]:
    with Client(server.url, server.token, environment_id=server.environment_id) as c:
        yield c


@pytest.fixture
def split_job(server, client: Client) -> Callable[[], str]:
    """A parent on the session's sheet, split into PARTS parts: returns its id."""

    def make() -> str:
        parent = start_parent_job(client, server.sheet_id)
        plan = plan_parts(PARTS * BATCH, batch_size=BATCH)  # part of the sheet, on purpose
        split_parent(client, parent.id, plan, check_counts=False)
        return parent.id

    return make


def parts_completed(client: Client, parent_id: str) -> list[Event]:
    events = client.list_events(
        topic="job:parts-completed", include_acknowledged=True, page_size=1000
    )
    return [event for event in events if event.job_id == parent_id]


def flaky(part: Part) -> str:
    if part.index in FAILING:
        raise RuntimeError(f"downstream refused part {part.index}")
    return "ok"


def fixed(part: Part) -> str:
    return f"ok on retry ({len(part.records)} records)"


def run(client: Client, parent_id: str, handler: Callable[[Part], str]) -> pd.DataFrame:
    handle = dispatch(client, parent_id, handler, retries=0, progress=False, wait=True)
    return handle.outcomes


def test_retry_runs_only_the_failed_parts_then_the_parent_completes(
    client: Client, split_job: Callable[[], str]
) -> None:
    parent_id = split_job()
    first = run(client, parent_id, flaky)
    assert set(first.loc[first["status"] == "failed", "part"]) == FAILING
    (round_one,) = parts_completed(client, parent_id)
    assert round_one.payload["parts"]["failed"] == len(FAILING)
    failed_ids = set(first.loc[first["status"] == "failed", "job_id"])

    seen: list[int] = []

    def fixed_and_counted(part: Part) -> str:
        seen.append(part.index)
        return fixed(part)

    handle = retry_failed(client, parent_id, fixed_and_counted, progress=False, wait=True)
    assert handle is not None
    outcomes = handle.outcomes
    assert sorted(seen) == sorted(FAILING)  # nothing else ran again
    assert (outcomes["status"] == "completed").all()
    assert len(outcomes) == PARTS
    # The same part jobs were retried: no new job, ids unchanged.
    assert set(outcomes["job_id"]) == set(first["job_id"])
    retried = outcomes[outcomes["job_id"].isin(failed_ids)]
    assert set(retried["part"]) == FAILING
    assert not retried["previous_run"].any()
    assert outcomes.loc[~outcomes["job_id"].isin(failed_ids), "previous_run"].all()
    assert retried["message"].str.startswith("ok on retry").all()
    assert len(client.list_parts(parent_id)) == PARTS

    # Exactly one new job:parts-completed, for the new round, with the new counts.
    events = parts_completed(client, parent_id)
    assert len(events) == 2
    assert events[0].id == round_one.id
    assert events[1].payload["parts"] == {
        "total": PARTS,
        "completed": PARTS,
        "failed": 0,
        "canceled": 0,
    }

    summary = summarize(outcomes)
    assert int(summary["completed"].iloc[0]) == PARTS
    assert int(summary["records_processed"].iloc[0]) == PARTS * BATCH
    result = settle(client, parent_id, summary)
    assert result.changed
    assert client.get_job(parent_id).status == "complete"
    assert len(parts_completed(client, parent_id)) == 2  # settling emits none


def test_nothing_to_retry_returns_none_and_changes_nothing(
    client: Client, split_job: Callable[[], str]
) -> None:
    parent_id = split_job()
    run(client, parent_id, fixed)
    before = {job.id: (job.status, job.updated_at) for job in client.list_parts(parent_id)}
    assert retryable_parts(client, parent_id) == []
    assert retry_failed(client, parent_id, fixed, progress=False) is None
    after = {job.id: (job.status, job.updated_at) for job in client.list_parts(parent_id)}
    assert after == before
    assert len(parts_completed(client, parent_id)) == 1


def test_canceled_parts_are_retried_only_when_asked(
    client: Client, split_job: Callable[[], str]
) -> None:
    parent_id = split_job()
    parts = {job.part: job for job in client.list_parts(parent_id)}
    client.cancel_job(parts[4].id, info="not now")  # ends before the run: never started
    first = run(client, parent_id, flaky)
    assert first.set_index("part").loc[4, "status"] == "canceled"

    # Only failed parts by default; canceled ones with include_canceled=True.
    assert [job.part for job in retryable_parts(client, parent_id)] == sorted(FAILING)
    with_canceled = retryable_parts(client, parent_id, include_canceled=True)
    assert [job.part for job in with_canceled] == sorted({*FAILING, 4})

    seen: list[int] = []

    def record(part: Part) -> str:
        seen.append(part.index)
        return "ok"

    handle = retry_failed(
        client, parent_id, record, include_canceled=True, progress=False, wait=True
    )
    assert handle is not None
    assert sorted(seen) == sorted({*FAILING, 4})
    assert (handle.outcomes["status"] == "completed").all()
    assert parts_completed(client, parent_id)[-1].payload["parts"]["completed"] == PARTS


def test_a_settled_parent_cannot_be_retried(client: Client, split_job: Callable[[], str]) -> None:
    parent_id = split_job()
    outcomes = run(client, parent_id, flaky)
    settle(client, parent_id, summarize(outcomes))
    assert client.get_job(parent_id).status == "failed"
    message = f"parent {parent_id} is already failed: retry needs an unsettled parent"
    with pytest.raises(ValueError, match=message):
        retry_failed(client, parent_id, fixed, progress=False)
    # And the server itself refuses a part of a settled parent (what the message stands for).
    failed_part = outcomes.loc[outcomes["status"] == "failed", "job_id"].iloc[0]
    with pytest.raises(InvalidTransitionError, match="400") as refused:
        client.retry_job(failed_part)
    assert refused.value.job_id == failed_part


def test_retry_again_after_a_second_failure(client: Client, split_job: Callable[[], str]) -> None:
    parent_id = split_job()
    run(client, parent_id, flaky)
    still_failing = min(FAILING)

    def half_fixed(part: Part) -> str:
        if part.index == still_failing:
            raise RuntimeError("still broken")
        return "ok"

    second = retry_failed(client, parent_id, half_fixed, progress=False, wait=True)
    assert second is not None
    assert list(second.outcomes.loc[second.outcomes["status"] == "failed", "part"]) == [
        still_failing
    ]
    third = retry_failed(client, parent_id, fixed, progress=False, wait=True)
    assert third is not None
    assert (third.outcomes["status"] == "completed").all()
    rounds = parts_completed(client, parent_id)
    assert [event.payload["parts"]["failed"] for event in rounds] == [len(FAILING), 1, 0]


def test_bad_arguments(client: Client, split_job: Callable[[], str]) -> None:
    parent_id = split_job()
    run(client, parent_id, flaky)
    with pytest.raises(TypeError, match="handler must be callable"):
        retry_failed(client, parent_id, "handler")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a splitkit Client"):
        retry_failed(client.config, parent_id, fixed)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="parent_job_id must be a job id string"):
        retry_failed(client, "", fixed)
    with pytest.raises(ValueError, match="include_canceled must be True or False"):
        retry_failed(client, parent_id, fixed, include_canceled="yes")  # type: ignore[arg-type]
    part = client.list_parts(parent_id)[0]
    with pytest.raises(ValueError, match=f"job {part.id} is a part of {parent_id}"):
        retry_failed(client, part.id, fixed)
    # A bad dispatch argument is found after the parts went back to ready: the error says
    # how to run them, and a plain dispatch() does.
    with pytest.raises(ValueError, match="concurrency") as info:
        retry_failed(client, parent_id, fixed, concurrency=0)
    assert any("moved back to ready" in note for note in info.value.__notes__)
    outcomes = run(client, parent_id, fixed)
    assert (outcomes["status"] == "completed").all()
    # None were lost, and nothing is failed any more.
    assert retry_failed(client, parent_id, fixed) is None
