"""Plots of a run, one call each on a frame: timeline, durations, throughput, what-if.

Every function takes a DataFrame (an outcome frame from dispatch, or a `what_if()` frame),
draws on `ax=` (or a new figure) and returns the matplotlib Axes, so a notebook shows the
figure and a script can `ax.figure.savefig(...)`.

matplotlib is the optional `plot` extra: it is imported when a plot is drawn, never when
splitkit (or `splitkit.notebook`, which dispatch loads for its panel) is imported.

Time on the x axis is *seconds since the run's first start*, not wall-clock timestamps:
runs last seconds to minutes, and "12 s in" reads better than "14:03:12.4". The origin
is written in the axis label.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd

from splitkit.statuses import ALIASES, OutcomeStatus

if TYPE_CHECKING:  # only for annotations: importing matplotlib here would make it required
    from matplotlib.axes import Axes

__all__ = ["plot_durations", "plot_throughput", "plot_timeline", "plot_what_if"]

# One colour per ended status, the same in every plot and as in the control panel and the
# HTML reprs (splitkit.notebook.panel_view.STATUS_COLORS; a test keeps them equal), so a run looks
# the same everywhere. Copied, not imported: plots should not load ipywidgets.
STATUS_COLORS: dict[str, str] = {
    OutcomeStatus.COMPLETED: "#43a047",
    OutcomeStatus.FAILED: "#e53935",
    OutcomeStatus.CANCELED: "#fb8c00",
}
ENDED_STATUSES = tuple(map(str, STATUS_COLORS))  # plain strings, as labels
_OTHER_COLOR = "#1e88e5"  # running (the panel's blue), or a status splitkit does not know
# Spellings met in frames built by hand or from the wire (the server says "complete").
_STATUS_ALIASES = {alias: status.value for alias, status in ALIASES.items()}


# -- shared helpers -----------------------------------------------------------------------


def _pyplot() -> Any:
    """matplotlib.pyplot, imported on first use with a message that says how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "splitkit's plots need matplotlib, which is not installed: "
            "pip install 'splitkit[plot]' (or pip install matplotlib)"
        ) from exc
    return plt


def _check_frame(frame: object, name: str, required: Sequence[str], hint: str) -> pd.DataFrame:
    """The frame, or a TypeError/ValueError that names what is wrong and how to fix it."""
    if not isinstance(frame, pd.DataFrame):
        got = type(frame).__name__
        extra = "; pass handle.outcomes" if got == "RunHandle" else ""
        raise TypeError(f"{name} must be a pandas DataFrame ({hint}), got {got}{extra}")
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} is missing column(s) {missing}; expected {hint} with columns {list(required)}"
        )
    return frame


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    plt = _pyplot()
    if ax is not None:
        return ax
    _, new_ax = plt.subplots(figsize=figsize, layout="constrained")
    return cast("Axes", new_ax)


def _note(ax: Axes, text: str) -> Axes:
    """An empty plot that says why it is empty (a live run may have nothing ended yet)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _statuses(frame: pd.DataFrame) -> pd.Series:
    status = frame["status"].astype("string").str.lower().fillna("unknown")
    return status.replace(_STATUS_ALIASES)


def _status_order(present: Iterable[str]) -> list[str]:
    """Ended statuses first, in the usual order, then anything else alphabetically."""
    seen = set(present)
    return [s for s in ENDED_STATUSES if s in seen] + sorted(seen - set(ENDED_STATUSES))


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce")


def _origin_label(origin: pd.Timestamp) -> str:
    return f"seconds since {origin.strftime('%Y-%m-%d %H:%M:%S')} UTC"


# -- timeline -------------------------------------------------------------------------------


def plot_timeline(
    outcomes: pd.DataFrame,
    *,
    lanes: Literal["auto", "worker", "dask_worker", "part"] = "auto",
    ax: Axes | None = None,
) -> Axes:
    """Each part as a horizontal bar from its start to its end, coloured by status.

    `lanes="dask_worker"` gives each Dask worker a lane (column `dask_worker`, written by
    runs on a `DaskExecutor`), labelled with its address; `"auto"` takes it when every
    drawn part has one.

    The y axis is the worker slot (column `worker`: which of the `concurrency` slots ran
    the part), so gaps show idle slots and long bars show stragglers. With `lanes="auto"`
    it falls back to the part index when the frame has no `worker` column or some ended
    part has none (parts ended by an earlier run: their slots are not known, and mixing
    slots and part indexes on one axis would mislead). Parts that ended in an earlier run
    (`previous_run`) are drawn paler. Parts that have not ended are left out.

    Needs columns `status`, `started_at`, `finished_at` (and `part` for part lanes).
    """
    frame = _check_frame(
        outcomes, "outcomes", ["status", "started_at", "finished_at"], "an outcome frame"
    )
    if lanes not in ("auto", "worker", "dask_worker", "part"):
        raise ValueError(f"lanes must be auto, worker, dask_worker or part, got {lanes!r}")
    start, end = _utc(frame["started_at"]), _utc(frame["finished_at"])
    drawn = start.notna() & end.notna()
    axes = _axes(ax, (9, 4))
    if not drawn.any():
        return _note(axes, "no ended part to draw yet")

    frame, start, end = frame[drawn], start[drawn], end[drawn]
    lane_column = _lane_column(frame, lanes)
    hosts: list[str] = []
    if lane_column == "dask_worker":
        hosts = sorted(frame["dask_worker"].astype(str).unique())
        lane = frame["dask_worker"].astype(str).map(hosts.index).to_numpy(dtype=float)
    else:
        lane = (
            pd.to_numeric(frame[lane_column], errors="coerce")
            if lane_column
            else pd.Series(np.arange(len(frame)), index=frame.index)
        ).to_numpy(dtype=float)
    origin = start.min()
    left = (start - origin).dt.total_seconds().to_numpy()
    # A part that ended in the same millisecond it started would be invisible; give it a
    # sliver so the bar count always equals the part count.
    width = np.maximum((end - start).dt.total_seconds().to_numpy(), 1e-3)
    previous = (
        frame["previous_run"].fillna(False).astype(bool).to_numpy()
        if "previous_run" in frame.columns
        else np.zeros(len(frame), dtype=bool)
    )
    status = _statuses(frame).to_numpy()
    for name in _status_order(status):
        chosen = status == name
        color = STATUS_COLORS.get(name, _OTHER_COLOR)
        for earlier in (False, True):
            rows = chosen & (previous == earlier)
            if not rows.any():
                continue
            axes.barh(
                lane[rows],
                width[rows],
                left=left[rows],
                height=0.8,
                color=color,
                alpha=0.35 if earlier else 0.9,
                edgecolor="white",
                linewidth=0.3,
                # One legend entry per status; the paler "earlier run" bars share it.
                label=name if not earlier or not (chosen & ~previous).any() else "_nolegend_",
            )
    axes.set_xlabel(_origin_label(origin))
    axes.set_ylabel(_LANE_LABELS.get(lane_column or "part", "part"))
    axes.set_title(f"Timeline of {len(frame):,} parts")
    if lane_column == "worker" and np.nanmax(lane) < 40:
        axes.set_yticks(np.unique(lane[~np.isnan(lane)]))
    if hosts:
        axes.set_yticks(np.arange(len(hosts)), hosts, fontsize="small")
    axes.invert_yaxis()  # slot 0 / part 0 on top, like a Gantt chart
    handles, labels = axes.get_legend_handles_labels()
    if previous.any():
        from matplotlib.patches import Patch

        handles.append(Patch(facecolor="0.5", alpha=0.35))
        labels.append("pale: ended in an earlier run")
    # Outside the axes: inside, it would hide the bars of the first lanes.
    axes.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize="small",
        frameon=False,
    )
    return axes


_LANE_LABELS = {"worker": "worker slot", "dask_worker": "Dask worker", "part": "part"}
_LANE_NEEDS = {"worker": "a worker slot", "dask_worker": "the Dask worker (DaskExecutor runs)"}


def _lane_column(frame: pd.DataFrame, lanes: str) -> str | None:
    for column in ("dask_worker", "worker"):
        has = column in frame.columns and bool(frame[column].notna().all())
        if lanes == column and not has:
            raise ValueError(
                f"lanes={column!r} needs {_LANE_NEEDS[column]} for every ended part (column "
                f"{column!r}); use lanes='part' for parts ended by an earlier run"
            )
        if lanes == column or (lanes == "auto" and has):
            return column
    return "part" if "part" in frame.columns else None


# -- durations ------------------------------------------------------------------------------


def plot_durations(outcomes: pd.DataFrame, *, bins: int = 30, ax: Axes | None = None) -> Axes:
    """A histogram of part durations, stacked by status, with the p50 and p95 marked.

    The percentiles are over every part with a known duration, as in `summarize()`.
    Needs columns `status`, `duration_s`.
    """
    frame = _check_frame(outcomes, "outcomes", ["status", "duration_s"], "an outcome frame")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    duration = pd.to_numeric(frame["duration_s"], errors="coerce").to_numpy(dtype=float)
    known = np.isfinite(duration)
    axes = _axes(ax, (8, 4))
    if not known.any():
        return _note(axes, "no part with a duration yet")

    status = _statuses(frame).to_numpy()[known]
    duration = duration[known]
    order = _status_order(status)
    # Shared bin edges over all statuses, so the stacked bars line up.
    edges = np.histogram_bin_edges(duration, bins=bins)
    axes.hist(
        [duration[status == name] for name in order],
        bins=edges.tolist(),
        stacked=True,
        color=[STATUS_COLORS.get(name, _OTHER_COLOR) for name in order],
        label=order,
        edgecolor="white",
        linewidth=0.3,
    )
    p50, p95 = np.percentile(duration, [50, 95])
    axes.axvline(p50, color="0.2", linestyle="--", linewidth=1.2, label=f"p50 {_secs(p50)}")
    axes.axvline(p95, color="0.2", linestyle=":", linewidth=1.5, label=f"p95 {_secs(p95)}")
    axes.set_xlabel("part duration (s)")
    axes.set_ylabel("parts")
    axes.set_title(f"Durations of {duration.size:,} parts")
    axes.legend(fontsize="small")
    return axes


def _secs(value: float) -> str:
    return f"{value:.3g} s"


# -- throughput -----------------------------------------------------------------------------


def plot_throughput(
    outcomes: pd.DataFrame, *, freq: str | pd.Timedelta | None = None, ax: Axes | None = None
) -> Axes:
    """Records per second over the run: completed parts' records, binned by `finished_at`.

    `freq` is the bin width, a time width like `"1s"` or `"500ms"` (anything
    `pd.Timedelta` reads); by default about 40 bins over the run, rounded to a readable
    width. A dotted line shows the run's mean rate. Bins start at the run's first start
    (`started_at`), so a slow start shows as empty bins. Needs columns `status`, `records`,
    `finished_at`.
    """
    frame = _check_frame(
        outcomes, "outcomes", ["status", "records", "finished_at"], "an outcome frame"
    )
    width = _freq(freq)
    finished = _utc(frame["finished_at"])
    done = (_statuses(frame) == "completed").to_numpy() & finished.notna().to_numpy()
    axes = _axes(ax, (8, 3.5))
    if not done.any():
        return _note(axes, "no completed part yet")

    start = _utc(frame["started_at"]) if "started_at" in frame.columns else finished
    # The earliest known instant; min() skips NaT (a part without a recorded start).
    origin = pd.concat([start[done], finished[done]]).min()
    span_s = (finished[done].max() - origin).total_seconds()
    if width is None:
        width = _auto_width(span_s)
    records = pd.to_numeric(frame["records"], errors="coerce").fillna(0).to_numpy()[done]
    # Bins counted from the run's first start (not from the first completion, as resample
    # would), so a slow start shows as the empty bins it was.
    step_s = width.total_seconds()
    offset_s = (finished[done] - origin).dt.total_seconds().to_numpy()
    binned = np.bincount((offset_s // step_s).astype(np.int64), weights=records)
    rate = binned / step_s
    edges = np.arange(binned.size + 1) * step_s
    heights = np.append(rate, rate[-1])  # the last bin repeated: closes the last step
    color = STATUS_COLORS["completed"]
    axes.step(
        edges,
        heights,
        where="post",
        color=color,
        linewidth=1.5,
        label=f"records/s per {_width_label(width)}",
    )
    axes.fill_between(edges, heights, step="post", color=color, alpha=0.15, linewidth=0)
    mean = records.sum() / max(span_s, 1e-9)
    axes.axhline(mean, color="0.3", linestyle=":", linewidth=1.2, label=f"mean {mean:,.0f}/s")
    axes.set_xlabel(_origin_label(origin))
    axes.set_ylabel("records / s")
    axes.yaxis.set_major_formatter("{x:,.0f}")  # 35,000 reads faster than 35000
    axes.set_ylim(bottom=0)
    axes.set_title(f"Throughput: {int(records.sum()):,} records completed")
    axes.legend(fontsize="small")
    return axes


def _freq(freq: str | pd.Timedelta | None) -> pd.Timedelta | None:
    if freq is None:
        return None
    try:
        width = pd.Timedelta(freq)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"freq must be a time width like '1s' or '250ms', got {freq!r}") from exc
    if pd.isna(width) or width <= pd.Timedelta(0):
        raise ValueError(f"freq must be a positive time width like '1s', got {freq!r}")
    return width


def _auto_width(span_s: float) -> pd.Timedelta:
    """About 40 bins over the span, on a 1-2-5 ladder (0.1 s, 0.2 s, 0.5 s, 1 s, ...)."""
    target = max(span_s / 40, 0.01)
    exponent = math.floor(math.log10(target))
    for step in (1, 2, 5, 10):
        width = step * 10.0**exponent
        if width >= target:
            break
    # Whole milliseconds: a label like "200 ms", not "200.0000001 ms".
    return pd.Timedelta(milliseconds=max(round(width * 1000), 10))


def _width_label(width: pd.Timedelta) -> str:
    seconds = width.total_seconds()
    return f"{seconds:g} s" if seconds >= 1 else f"{seconds * 1000:g} ms"


# -- what-if --------------------------------------------------------------------------------


def plot_what_if(
    what_if_frame: pd.DataFrame,
    *,
    measured: pd.DataFrame | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Expected wall time against batch size, one line per concurrency (log x axis).

    `what_if_frame` comes from `splitkit.what_if()` (columns `batch_size`, `concurrency`,
    `wall_s`). `measured` overlays real runs: a frame with `batch_size` and `wall_s`, and
    optionally `concurrency` (then each point takes its concurrency's colour), so model
    and measurement can be compared on one chart.
    """
    frame = _check_frame(
        what_if_frame,
        "what_if_frame",
        ["batch_size", "concurrency", "wall_s"],
        "a frame from what_if()",
    )
    if measured is not None:
        measured = _check_frame(
            measured, "measured", ["batch_size", "wall_s"], "a frame of measured runs"
        )
    axes = _axes(ax, (8, 4.5))
    if frame.empty:
        return _note(axes, "the what_if frame is empty")

    colors = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    color_of: dict[Any, str] = {}
    for i, (concurrency, rows) in enumerate(frame.sort_values("batch_size").groupby("concurrency")):
        color_of[concurrency] = colors[i % len(colors)]
        axes.plot(
            rows["batch_size"].to_numpy(),
            rows["wall_s"].to_numpy(),
            marker="o",
            markersize=3,
            color=color_of[concurrency],
            label=f"expected, concurrency {concurrency}",
        )
    if measured is not None and not measured.empty:
        _overlay_measured(axes, measured, color_of)
    axes.set_xscale("log")
    axes.set_xlabel("batch size (records per part)")
    axes.set_ylabel("wall time (s)")
    axes.set_ylim(bottom=0)
    total = frame.attrs.get("total")
    axes.set_title(
        f"Expected wall time for {total:,} records" if isinstance(total, int) else "What if"
    )
    axes.grid(True, which="both", alpha=0.25)
    axes.legend(fontsize="small")
    return axes


def _overlay_measured(axes: Axes, measured: pd.DataFrame, color_of: dict[Any, str]) -> None:
    if "concurrency" in measured.columns:
        for concurrency, rows in measured.groupby("concurrency"):
            axes.scatter(
                rows["batch_size"].to_numpy(),
                rows["wall_s"].to_numpy(),
                s=60,
                marker="X",
                color=color_of.get(concurrency, "black"),
                edgecolor="black",
                linewidth=0.6,
                zorder=3,
                label=f"measured, concurrency {concurrency}",
            )
        return
    axes.scatter(
        measured["batch_size"].to_numpy(),
        measured["wall_s"].to_numpy(),
        s=60,
        marker="X",
        color="black",
        zorder=3,
        label="measured",
    )
