"""The lab's charts (matplotlib, the optional ``plot`` extra, imported when drawn).

- `plot_tuning`: what `tune()` predicts per batch size (one line per concurrency, its
  interval shaded), the pick starred, the choices your limits rule out crossed, and
  measured runs as dots;
- `plot_history`: runs of `splitkit.history()` as wall time against batch size, one
  marker per server, to compare runs across sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes


class Tuned(Protocol):
    """What `plot_tuning` draws: a `splitkit.lab.Tuning` (its table and recommendation)."""

    table: pd.DataFrame
    recommendation: pd.DataFrame


__all__ = ["plot_history", "plot_tuning"]


def _axes(ax: Axes | None) -> Axes:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("splitkit's plots need matplotlib: pip install 'splitkit[plot]'") from exc
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=(7, 4), layout="constrained")
    return new


def _batch_axis(ax: Axes, sizes: pd.Series) -> None:
    """A log axis of batch sizes, ticked at the sizes shown, written as plain numbers."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_xticks(sorted(int(s) for s in sizes.unique()))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("batch size (records per part)")


def _check(frame: object, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; it needs {list(columns)}")
    return frame


def plot_tuning(
    tuning: Tuned, *, measured: pd.DataFrame | None = None, ax: Axes | None = None
) -> Axes:
    """The prediction per batch size and concurrency, the pick, and measured runs."""
    ax = _axes(ax)
    table = tuning.table.sort_values("batch_size")
    colors: dict[int, Any] = {}
    for key, rows in table.groupby("concurrency", sort=True):
        workers = int(cast(int, key))
        (line,) = ax.plot(
            rows["batch_size"], rows["wall_s"], marker="o", ms=3, label=f"concurrency {workers}"
        )
        colors[workers] = line.get_color()
        ax.fill_between(
            rows["batch_size"],
            rows["wall_low_s"],
            rows["wall_high_s"],
            alpha=0.15,
            color=line.get_color(),
            linewidth=0,
        )
        out = rows[~rows["allowed"]]
        if not out.empty:
            ax.scatter(
                out["batch_size"],
                out["wall_s"],
                marker="x",
                s=60,
                color="#e53935",
                zorder=3,
                label=None,
            )
    if (~table["allowed"]).any():
        ax.scatter([], [], marker="x", color="#e53935", label="ruled out by your limits")
    if measured is not None:
        frame = _check(measured, "measured", ("batch_size", "wall_s"))
        for index in range(len(frame)):
            row = frame.iloc[index]
            ran_at = int(row["concurrency"]) if "concurrency" in frame.columns else 0
            ax.scatter(
                row["batch_size"],
                row["wall_s"],
                s=30,
                edgecolor="black",
                zorder=4,
                color=colors.get(ran_at, "#757575"),
            )
        ax.scatter([], [], s=30, edgecolor="black", color="#9e9e9e", label="measured")
    best = tuning.recommendation.iloc[0]
    ax.scatter(
        [best["batch_size"]],
        [best["wall_s"]],
        marker="*",
        s=260,
        color="#fdd835",
        edgecolor="black",
        zorder=5,
        label=f"pick: {int(best['batch_size']):,} × {int(best['concurrency'])} ({best['binding']})",
    )
    _batch_axis(ax, table["batch_size"])
    ax.set_ylabel("wall time of the whole job (s)")
    ax.set_title(f"tune: {int(table.attrs.get('total', 0)):,} records, 90% interval shaded")
    ax.legend(fontsize="small")
    return ax


def plot_history(history: pd.DataFrame, *, ax: Axes | None = None, by: str = "server") -> Axes:
    """Past runs (`splitkit.history()`): wall time against batch size, one series per
    value of `by` (the server by default; any history column, e.g. ``concurrency``)."""
    frame = _check(history, "history", ("batch_size", "wall_s", by))
    ax = _axes(ax)
    for key, rows in frame.groupby(by, sort=True):
        ax.scatter(rows["batch_size"], rows["wall_s"], s=30, label=f"{by} {key}")
    _batch_axis(ax, frame["batch_size"])
    ax.set_ylabel("wall time of the run (s)")
    ax.set_title(f"run history: {len(frame)} runs")
    ax.legend(fontsize="small")
    return ax
