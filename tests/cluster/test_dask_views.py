"""What a run on Dask shows, without a cluster: the outcome frame's `dask_worker` column,
the timeline's lanes per Dask worker, and the worker count in tqdm and the panel's label."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import matplotlib

matplotlib.use("Agg")

import pytest
from tqdm import tqdm

from splitkit.engine.progress import TqdmProgress
from splitkit.engine.state import PartRow, RunState
from splitkit.notebook import plot_timeline
from splitkit.notebook.panel_view import label_html

HOSTS = ("tcp://127.0.0.1:4001", "tcp://127.0.0.1:4002")


def dask_run(placed: bool = True) -> RunState:
    state = RunState(parent_id="us_jb_parent")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [PartRow(part=i, job_id=f"us_jb_{i}", records=10) for i in range(6)]
    state.add(rows)
    for row in rows:
        state.move(
            row, "completed",
            started_at=start + timedelta(seconds=row.part),
            finished_at=start + timedelta(seconds=row.part + 1),
            worker=row.part % 3,
            placed=HOSTS[row.part % 2] if placed else None,
        )  # fmt: skip
    state.workers = 2
    return state


def test_the_outcome_frame_names_the_dask_worker_of_each_part() -> None:
    frame = dask_run().frame()
    assert list(frame["dask_worker"]) == [HOSTS[i % 2] for i in range(6)]
    # A Dask run has the column even when no part reached a worker; other runs do not.
    assert dask_run(placed=False).frame()["dask_worker"].isna().all()
    local = dask_run(placed=False)
    local.workers = None
    assert "dask_worker" not in local.frame().columns


def test_the_timeline_lays_parts_out_by_dask_worker() -> None:
    ax = plot_timeline(dask_run().frame())  # auto: a Dask worker for every part
    lanes = {round(bar.get_y() + bar.get_height() / 2) for bar in ax.patches}
    assert lanes == {0, 1}
    assert [t.get_text() for t in ax.get_yticklabels()] == list(HOSTS)
    assert ax.get_ylabel() == "Dask worker"
    slots = plot_timeline(dask_run(placed=False).frame())
    assert slots.get_ylabel() == "worker slot"
    with pytest.raises(ValueError, match="lanes='dask_worker' needs the Dask worker"):
        plot_timeline(dask_run(placed=False).frame(), lanes="dask_worker")


def test_tqdm_and_the_panel_show_the_worker_count() -> None:
    out = io.StringIO()

    class Bar(tqdm):  # type: ignore[type-arg]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, file=out, **kwargs)  # type: ignore[misc]

    state = dask_run()
    progress = TqdmProgress(Bar)
    progress.run_started(state)
    progress.run_finished(state)
    assert "workers=2" in out.getvalue()
    label = label_html("done", state, state.tally(), 6, 6, active_s=1.0, ended_before=0)
    assert "2 workers" in label
    state.workers = None  # an executor without a count: nothing shown
    assert "workers" not in label_html(
        "done", state, state.tally(), 6, 6, active_s=1.0, ended_before=0
    )
