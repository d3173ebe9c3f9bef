"""What the outcome frame tells the user: the handler's own frames first in `traceback`,
one part numbering in every message, export to Parquet and CSV; and a handler a
ProcessExecutor cannot take is refused before the run starts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from splitkit import Client, DaskExecutor, Part, ProcessExecutor, ThreadExecutor, dispatch


def _fails_deep_inside(part: Part) -> None:
    _reject(part)


def _reject(part: Part) -> None:
    raise ValueError(f"bad batch {part.index}")


@pytest.mark.parametrize("executor", [None, "thread", "process", "dask"])
def test_the_traceback_starts_with_the_handlers_frames(
    client: Client, split_job, executor: str | None
) -> None:
    """Also from another process: pickle drops a traceback (the pool's worker writes the
    user's frames down first; Dask's worker sends its traceback with tblib)."""
    parent_id, _ = split_job(batch_size=1000, total=1000)
    runners = {
        "thread": lambda: ThreadExecutor(1),
        "process": lambda: ProcessExecutor(1),
        "dask": lambda: DaskExecutor(n_workers=1),
    }
    runner = runners[executor]() if executor else None
    try:
        handle = dispatch(
            client, parent_id, _fails_deep_inside, executor=runner, progress=False, wait=True
        )
    finally:
        if runner is not None:
            runner.close()
    trace = handle.outcomes["traceback"].iloc[0]
    mine, _, full = trace.partition("-- full traceback --")
    frames = [line.strip() for line in mine.splitlines() if line.strip().startswith("File ")]
    # First the user's code, outermost first: the handler, then what it called; nothing of
    # splitkit, tenacity, asyncio or concurrent.futures in between.
    assert [f.rsplit(" in ", 1)[1] for f in frames] == ["_fails_deep_inside", "_reject"]
    assert all(__file__ in f for f in frames)
    assert mine.rstrip().endswith("ValueError: bad batch 0")
    # The whole chain is kept after it.
    assert "Traceback (most recent call last)" in full
    assert "splitkit" in full and "_reject" in full


def _returns_none(part: Part) -> None:
    return None


def test_messages_number_parts_as_the_part_column(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=500, total=1000)
    outcomes = dispatch(client, parent_id, _returns_none, progress=False, wait=True).outcomes
    for row in outcomes.itertuples():
        assert row.message == f"Part {row.part} processed"
    infos = {job.part: job.info for job in client.list_parts(parent_id)}
    # the part jobs' info, written when each part started, uses the same numbering
    assert all(info is None or f"part {part}" in info for part, info in infos.items())


def test_an_outcome_frame_exports_to_parquet_and_csv(
    client: Client, split_job, tmp_path: Path
) -> None:
    parent_id, _ = split_job(batch_size=500, total=1000)
    outcomes = dispatch(client, parent_id, _fails_deep_inside, progress=False, wait=True).outcomes
    outcomes.to_parquet(tmp_path / "outcomes.parquet")
    back = pd.read_parquet(tmp_path / "outcomes.parquet")
    pd.testing.assert_frame_equal(back, outcomes, check_dtype=False)
    outcomes.to_csv(tmp_path / "outcomes.csv", index=False)
    read = pd.read_csv(tmp_path / "outcomes.csv")
    assert read["job_id"].tolist() == outcomes["job_id"].tolist()
    assert read["error"].tolist() == outcomes["error"].tolist()


# -- handlers a process pool cannot take ------------------------------------------------------


def _statuses(client: Client, parent_id: str) -> list[str]:
    return [job.status for job in sorted(client.list_parts(parent_id), key=lambda j: j.part or 0)]


def test_a_handler_that_cannot_be_pickled_is_refused_before_the_run(
    client: Client, split_job
) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)
    before = _statuses(client, parent_id)

    def nested(part: Part) -> None:
        return None

    executor = ProcessExecutor(1)
    try:
        for handler in (lambda part: None, nested):
            with pytest.raises(TypeError) as info:
                dispatch(client, parent_id, handler, executor=executor, progress=False)
            message = str(info.value)
            assert "ProcessExecutor" in message
            assert "cannot be pickled" in message
            assert "module level" in message  # what to do instead
            assert "ThreadExecutor" in message
    finally:
        executor.close()
    assert _statuses(client, parent_id) == before  # no part was started
