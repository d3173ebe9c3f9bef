"""split_parent against the embedded server: a split whose answer is lost or is a 502,
and split_parent called twice, reconcile from the parts the server lists."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from answer_faults import AnswerFaults, Fault, posts_to

from splitkit import Client, plan_parts, split_parent, start_parent_job
from splitkit.api import RetryPolicy
from splitkit.api.errors import ConnectionFailedError, InvalidTransitionError, ServerError
from splitkit.pipeline import SplitMismatchError, part_data_for


def _plan(client: Client, server, parts: int) -> pd.DataFrame:
    return plan_parts(client.get_counts(server.sheet_id).total, parts=parts)


def _lossy_client(server, faults: AnswerFaults, attempts: int = 1) -> Client:
    return Client(
        server.url,
        server.token,
        environment_id=server.environment_id,
        retry=RetryPolicy(attempts=attempts, initial=0.0, jitter=0.0),
        transport=faults,
    )


@pytest.fixture
def parent_id(server, client: Client) -> Iterator[str]:
    yield start_parent_job(client, server.sheet_id).id


def _assert_split_as_planned(client: Client, parent_id: str, plan: pd.DataFrame) -> None:
    parts = client.list_parts(parent_id)
    assert len(parts) == len(plan)
    stored = [
        {key: part.part_data[key] for key in ("pageNumber", "pageSize", "firstRecord", "records")}
        for part in sorted(parts, key=lambda p: p.part or 0)
        if part.part_data is not None
    ]
    assert stored == part_data_for(plan)


# attempts=4: today's client resends a POST after a 502, and the resend is refused as
# "already split"; attempts=1: the first 502 or lost answer reaches split_parent itself.
@pytest.mark.parametrize("attempts", [1, 4])
@pytest.mark.parametrize("fault", ["502 after", "lost"])
def test_split_whose_answer_is_lost_returns_the_parts(
    server, client: Client, parent_id: str, fault: Fault, attempts: int
) -> None:
    plan = _plan(client, server, 5)
    faults = AnswerFaults(posts_to(f"/jobs/{parent_id}/split"), fault)
    with _lossy_client(server, faults, attempts) as lossy:
        parts = split_parent(lossy, parent_id, plan)
    assert faults.spoiled == 1
    assert len(parts) == 5
    assert parts["job_id"].notna().all()
    assert parts["part"].tolist() == plan["part"].tolist()
    _assert_split_as_planned(client, parent_id, plan)  # exactly 5 parts on the server
    assert set(parts["job_id"]) == {part.id for part in client.list_parts(parent_id)}


def test_split_that_never_reached_the_server_raises_its_error(
    server, client: Client, parent_id: str
) -> None:
    plan = _plan(client, server, 3)
    faults = AnswerFaults(posts_to(f"/jobs/{parent_id}/split"), "502 before")
    with _lossy_client(server, faults) as lossy, pytest.raises(ServerError, match="502"):
        split_parent(lossy, parent_id, plan)
    assert client.list_parts(parent_id) == []
    # Nothing happened, so it can simply be split now.
    assert len(split_parent(client, parent_id, plan)) == 3


def test_split_twice_with_the_same_plan_returns_the_same_parts(
    server, client: Client, parent_id: str
) -> None:
    plan = _plan(client, server, 4)
    first = split_parent(client, parent_id, plan)
    second = split_parent(client, parent_id, plan)
    pd.testing.assert_frame_equal(first, second)
    _assert_split_as_planned(client, parent_id, plan)


@pytest.mark.parametrize(
    ("parts", "fewer_records", "message"),
    [
        (6, 0, "is already split into 4 parts, not the 6 parts of the plan"),
        # As many parts, other pages: the second plan covers 10 records less.
        (4, 10, "is already split into 4 parts that differ from the plan's: part 0 on the server"),
    ],
)
def test_split_twice_with_another_plan_is_a_clear_error(
    server, client: Client, parent_id: str, parts: int, fewer_records: int, message: str
) -> None:
    total = client.get_counts(server.sheet_id).total
    plan = plan_parts(total, parts=4)
    split_parent(client, parent_id, plan)
    other = plan_parts(total - fewer_records, parts=parts)
    with pytest.raises(SplitMismatchError, match=message) as refused:
        split_parent(client, parent_id, other, check_counts=False)  # another plan, on purpose
    assert isinstance(refused.value, ValueError)
    assert isinstance(refused.value.__cause__, InvalidTransitionError)
    if parts == 4:
        # Both sides are named: the server's part and the plan's.
        assert str(part_data_for(plan)[0]) in str(refused.value)
        assert str(part_data_for(other)[0]) in str(refused.value)
    _assert_split_as_planned(client, parent_id, plan)  # unchanged


def test_split_of_another_execution_mode_is_a_clear_error(
    server, client: Client, parent_id: str
) -> None:
    plan = _plan(client, server, 2)
    split_parent(client, parent_id, plan, run_in_parallel=False)
    with pytest.raises(SplitMismatchError, match=r"\(sequential\), the plan's is .* \(parallel\)"):
        split_parent(client, parent_id, plan)


def test_refused_split_of_a_parent_without_parts_raises_the_refusal(server, client: Client) -> None:
    job = client.create_job("sheet", "submitLargeSheet", source=server.sheet_id)
    client.complete_job(job.id)  # ended: it cannot split, and has no parts
    with pytest.raises(InvalidTransitionError):
        split_parent(client, job.id, _plan(client, server, 2))


def test_lost_answer_to_a_split_refused_for_another_reason(server, client: Client) -> None:
    # A lost answer on a parent that cannot split: no parts, so the lost answer is raised.
    job = client.create_job("sheet", "submitLargeSheet", source=server.sheet_id)
    client.complete_job(job.id)
    faults = AnswerFaults(posts_to(f"/jobs/{job.id}/split"), "lost")
    with _lossy_client(server, faults) as lossy, pytest.raises(ConnectionFailedError):
        split_parent(lossy, job.id, _plan(client, server, 2))


# -- the plan against the sheet's counts -------------------------------------------------------


@pytest.mark.parametrize("extra", [1_000, -500])
def test_a_plan_that_does_not_cover_the_sheet_is_refused_before_splitting(
    server, client: Client, parent_id: str, extra: int
) -> None:
    total = client.get_counts(server.sheet_id).total
    plan = plan_parts(total + extra, batch_size=500)
    with pytest.raises(ValueError) as info:
        split_parent(client, parent_id, plan)
    message = str(info.value)
    assert f"plan covers {total + extra:,} records" in message
    assert f"sheet {server.sheet_id} has {total:,}" in message
    assert "check_counts=False" in message  # the way to split as planned anyway
    assert client.list_parts(parent_id) == []  # nothing was split


def test_check_counts_false_splits_as_planned(server, client: Client, parent_id: str) -> None:
    total = client.get_counts(server.sheet_id).total
    parts = split_parent(
        client, parent_id, plan_parts(total // 2, batch_size=500), check_counts=False
    )
    assert len(parts) == len(plan_parts(total // 2, batch_size=500))
