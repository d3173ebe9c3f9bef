"""The plots, drawn (Agg) from a real run's outcome frame: the artists they must have, and
clear errors for frames they cannot draw."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle

from splitkit import Client, Part, dispatch, plan_parts, split_parent, start_parent_job, what_if
from splitkit.notebook import plot_durations, plot_throughput, plot_timeline, plot_what_if
from splitkit.notebook import plots as plots_module

PARTS = 24
BATCH = 50
FAILING = frozenset({3, 11})
CANCELED_WHILE_RUNNING = frozenset({7})


@pytest.fixture(scope="module")
def module_client(server) -> Iterator[Client]:
    with Client(server.url, server.token, environment_id=server.environment_id) as client:
        yield client


@pytest.fixture(scope="module")
def run_outcomes(server, module_client: Client) -> pd.DataFrame:
    """The outcome frame of a real run: completed, failed and canceled parts, 4 workers.

    One part is canceled on the server while its handler runs, so a canceled part has a
    start and an end too (a part canceled before it starts has no bar to draw).
    """
    client = module_client
    plan = plan_parts(PARTS * BATCH, batch_size=BATCH)
    parent = start_parent_job(client, server.sheet_id)
    split_parent(client, parent.id, plan, check_counts=False)

    def handler(part: Part) -> str:
        if part.index in FAILING:
            raise ValueError(f"part {part.index} rejected on purpose")
        if part.index in CANCELED_WHILE_RUNNING:
            with Client(server.url, server.token) as other:
                other.cancel_job(part.job_id, info="canceled by the test")
        # Uneven durations, so the histogram and the timeline have some shape.
        time.sleep(0.01 + 0.01 * (part.index % 5))
        return f"{len(part.records)} ok"

    handle = dispatch(
        client, parent.id, handler, concurrency=4, retries=0, progress=False, wait=True
    )
    outcomes = handle.outcomes
    assert len(outcomes) == PARTS
    return outcomes


def legend_labels(ax) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None, "the plot has no legend"
    return [text.get_text() for text in legend.get_texts()]


def bars(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


# -- the run the plots draw ---------------------------------------------------------------


def test_the_run_has_every_ended_status(run_outcomes: pd.DataFrame) -> None:
    status = run_outcomes.set_index("part")["status"]
    assert set(status[list(FAILING)]) == {"failed"}
    assert set(status[list(CANCELED_WHILE_RUNNING)]) == {"canceled"}
    assert (status.drop([*FAILING, *CANCELED_WHILE_RUNNING]) == "completed").all()
    assert run_outcomes["started_at"].notna().all()
    assert run_outcomes["worker"].notna().all()


# -- timeline ---------------------------------------------------------------------------------


def test_timeline_has_one_bar_per_part_in_worker_lanes(run_outcomes: pd.DataFrame) -> None:
    ax = plot_timeline(run_outcomes)
    drawn = bars(ax)
    assert len(drawn) == PARTS
    assert legend_labels(ax) == ["completed", "failed", "canceled"]
    assert ax.get_ylabel() == "worker slot"
    lanes = {round(bar.get_y() + bar.get_height() / 2) for bar in drawn}
    assert lanes == set(run_outcomes["worker"].astype(int))
    assert lanes <= {0, 1, 2, 3}
    # Each bar spans its part's duration (clamped to a visible sliver for instant parts).
    widths = sorted(bar.get_width() for bar in drawn)
    durations = sorted(np.maximum(run_outcomes["duration_s"].to_numpy(), 1e-3))
    assert widths == pytest.approx(durations, abs=1e-6)
    assert min(bar.get_x() for bar in drawn) == pytest.approx(0.0)
    assert ax.get_xlabel().startswith("seconds since ")


def test_timeline_colours_match_the_control_panel() -> None:
    from splitkit.notebook.panel_view import STATUS_COLORS as PANEL_COLORS

    for status, color in plots_module.STATUS_COLORS.items():
        assert PANEL_COLORS[status] == color


def test_timeline_falls_back_to_part_lanes(run_outcomes: pd.DataFrame) -> None:
    without_workers = run_outcomes.drop(columns=["worker"])
    ax = plot_timeline(without_workers)
    assert ax.get_ylabel() == "part"
    lanes = sorted(round(bar.get_y() + bar.get_height() / 2) for bar in bars(ax))
    assert lanes == list(range(PARTS))

    # Parts ended by an earlier run have no worker: auto switches to part lanes, and
    # asking for worker lanes says why it cannot.
    mixed = run_outcomes.copy()
    mixed["worker"] = mixed["worker"].astype("Int64")
    mixed.loc[:5, "worker"] = pd.NA
    mixed["previous_run"] = mixed["worker"].isna()
    ax = plot_timeline(mixed)
    assert ax.get_ylabel() == "part"
    assert len(bars(ax)) == PARTS
    assert any("earlier run" in label for label in legend_labels(ax))
    with pytest.raises(ValueError, match="lanes='worker' needs a worker"):
        plot_timeline(mixed, lanes="worker")
    with pytest.raises(ValueError, match="lanes must be"):
        plot_timeline(run_outcomes, lanes="slot")  # type: ignore[arg-type]


def test_timeline_leaves_out_parts_that_never_ran(run_outcomes: pd.DataFrame) -> None:
    frame = run_outcomes.copy()
    frame.loc[[0, 1], "started_at"] = pd.NaT  # canceled before they started
    frame.loc[[0, 1], "status"] = "canceled"
    frame.loc[2, "finished_at"] = pd.NaT  # still running
    frame.loc[2, "status"] = "running"
    assert len(bars(plot_timeline(frame))) == PARTS - 3


def test_plots_draw_on_the_given_axes(run_outcomes: pd.DataFrame) -> None:
    fig, axes = plt.subplots(2, 2)
    assert plot_timeline(run_outcomes, ax=axes[0, 0]) is axes[0, 0]
    assert plot_durations(run_outcomes, ax=axes[0, 1]) is axes[0, 1]
    assert plot_throughput(run_outcomes, ax=axes[1, 0]) is axes[1, 0]
    frame = what_if(
        1_000, batch_sizes=[10, 100], concurrencies=2, per_part_overhead_s=0.1, per_record_s=0.001
    )
    assert plot_what_if(frame, ax=axes[1, 1]) is axes[1, 1]
    assert len(fig.axes) == 4


# -- durations --------------------------------------------------------------------------------


def test_durations_histogram_by_status_with_percentiles(run_outcomes: pd.DataFrame) -> None:
    ax = plot_durations(run_outcomes, bins=10)
    labels = legend_labels(ax)
    assert labels[:3] == ["completed", "failed", "canceled"]
    durations = run_outcomes["duration_s"].to_numpy()
    p50, p95 = np.percentile(durations, [50, 95])
    assert labels[3] == f"p50 {p50:.3g} s"
    assert labels[4] == f"p95 {p95:.3g} s"
    vertical = [line.get_xdata()[0] for line in ax.get_lines()]
    assert vertical == pytest.approx([p50, p95])
    # Stacked: 10 bins per status, and the top of each stack counts every part once.
    assert len(bars(ax)) == 3 * 10
    top_layer = bars(ax)[-10:]
    assert sum(bar.get_y() + bar.get_height() for bar in top_layer) == PARTS


# -- throughput -------------------------------------------------------------------------------


def test_throughput_bins_add_up_to_completed_records(run_outcomes: pd.DataFrame) -> None:
    ax = plot_throughput(run_outcomes, freq="100ms")
    step, mean = ax.get_lines()
    rates = step.get_ydata()[:-1]  # the last point repeats the last bin to close the step
    completed = run_outcomes.loc[run_outcomes["status"] == "completed", "records"].sum()
    assert rates.sum() * 0.1 == pytest.approx(completed)
    assert mean.get_ydata()[0] > 0
    assert legend_labels(ax)[0] == "records/s per 100 ms"
    assert ax.get_ylim()[0] == 0


def test_throughput_picks_a_readable_bin_width(run_outcomes: pd.DataFrame) -> None:
    label = legend_labels(plot_throughput(run_outcomes))[0]
    value = label.removeprefix("records/s per ").split()[0]
    assert value[0] in "125"  # the 1-2-5 ladder
    assert plots_module._auto_width(40.0) == pd.Timedelta("1s")
    assert plots_module._auto_width(41.0) == pd.Timedelta("2s")
    assert plots_module._auto_width(0.0) == pd.Timedelta("10ms")
    for bad in ("soon", "-1s", 0):
        with pytest.raises(ValueError, match="freq must be"):
            plot_throughput(run_outcomes, freq=bad)  # type: ignore[arg-type]


# -- what-if ----------------------------------------------------------------------------------


def test_what_if_one_line_per_concurrency_with_measured_points() -> None:
    frame = what_if(
        20_000,
        batch_sizes=[100, 250, 500, 1_000, 2_000],
        concurrencies=[1, 4, 8],
        per_part_overhead_s=0.05,
        per_record_s=0.0001,
    )
    measured = pd.DataFrame(
        {"batch_size": [250, 1_000], "concurrency": [4, 4], "wall_s": [1.2, 0.9]}
    )
    ax = plot_what_if(frame, measured=measured)
    lines = ax.get_lines()
    assert len(lines) == 3
    assert ax.get_xscale() == "log"
    for line, concurrency in zip(lines, (1, 4, 8), strict=True):
        expected = frame[frame["concurrency"] == concurrency]
        assert list(line.get_xdata()) == expected["batch_size"].tolist()
        assert list(line.get_ydata()) == pytest.approx(expected["wall_s"].tolist())
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert points.get_offsets().tolist() == [[250, 1.2], [1_000, 0.9]]
    # A measured point takes its concurrency's colour.
    assert tuple(points.get_facecolor()[0][:3]) == pytest.approx(
        plt.matplotlib.colors.to_rgb(lines[1].get_color())
    )
    assert legend_labels(ax) == [
        "expected, concurrency 1",
        "expected, concurrency 4",
        "expected, concurrency 8",
        "measured, concurrency 4",
    ]
    assert "20,000 records" in ax.get_title()

    ax = plot_what_if(frame, measured=measured.drop(columns=["concurrency"]))
    assert legend_labels(ax)[-1] == "measured"


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plot", "missing"),
    [
        (plot_timeline, ["started_at", "finished_at"]),
        (plot_durations, ["duration_s"]),
        (plot_throughput, ["records", "finished_at"]),
    ],
)
def test_missing_columns_are_named(plot, missing: list[str]) -> None:
    frame = pd.DataFrame({"status": ["completed"], "part": [0]})
    with pytest.raises(ValueError, match="missing column") as info:
        plot(frame)
    for column in missing:
        assert repr(column) in str(info.value)


def test_what_if_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match=r"what_if_frame is missing column\(s\) \['wall_s'\]"):
        plot_what_if(pd.DataFrame({"batch_size": [1], "concurrency": [1]}))
    frame = what_if(100, batch_sizes=10, concurrencies=1, per_part_overhead_s=0, per_record_s=0.01)
    with pytest.raises(ValueError, match=r"measured is missing column\(s\) \['wall_s'\]"):
        plot_what_if(frame, measured=pd.DataFrame({"batch_size": [10]}))


def test_not_a_frame_is_a_type_error() -> None:
    class RunHandle:  # what a user may pass by mistake
        pass

    with pytest.raises(TypeError, match=r"pass handle\.outcomes"):
        plot_timeline(RunHandle())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        plot_what_if([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        plot_durations(pd.DataFrame({"status": [], "duration_s": []}), bins=0)


def test_empty_frames_give_an_empty_plot_with_a_note() -> None:
    from splitkit.outcomes import empty_outcomes

    empty = empty_outcomes()
    for plot, note in (
        (plot_timeline, "no ended part"),
        (plot_durations, "no part with a duration"),
        (plot_throughput, "no completed part"),
    ):
        ax = plot(empty)
        assert not bars(ax) and not ax.get_lines()
        assert note in ax.texts[0].get_text()
    ax = plot_what_if(
        what_if(10, batch_sizes=1, concurrencies=1, per_part_overhead_s=0, per_record_s=0).iloc[0:0]
    )
    assert "empty" in ax.texts[0].get_text()


def test_a_run_with_only_failures_has_no_throughput() -> None:
    now = datetime.now(UTC)
    frame = pd.DataFrame(
        {
            "status": ["failed"],
            "records": [10],
            "started_at": [now],
            "finished_at": [now + timedelta(seconds=1)],
            "duration_s": [1.0],
        }
    )
    assert "no completed part" in plot_throughput(frame).texts[0].get_text()
    assert legend_labels(plot_durations(frame))[0] == "failed"


# -- matplotlib is optional ---------------------------------------------------------------------


def test_splitkit_imports_without_loading_matplotlib() -> None:
    code = (
        "import sys, splitkit, splitkit.notebook, splitkit.retry; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_plot_without_matplotlib_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, run_outcomes: pd.DataFrame
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # import now fails
    with pytest.raises(ImportError, match=r"pip install 'splitkit\[plot\]'"):
        plot_timeline(run_outcomes)
