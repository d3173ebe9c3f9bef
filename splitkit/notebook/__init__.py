"""splitkit in a notebook: the run's control panel, HTML views, and plots of a run.

`dispatch()` shows a `ControlPanel` by itself in a notebook. DataFrames keep pandas' repr;
`show_plan(plan)` and `show_summary(summary)` give a compact HTML card instead. The plots
import matplotlib (the `plot` extra) only when one is drawn.
"""

from splitkit.notebook.panel import ControlPanel
from splitkit.notebook.plots import plot_durations, plot_throughput, plot_timeline, plot_what_if
from splitkit.notebook.reprs import (
    Html,
    plan_html,
    run_html,
    show_plan,
    show_summary,
    summary_html,
)

__all__ = [
    "ControlPanel",
    "Html",
    "plan_html",
    "plot_durations",
    "plot_throughput",
    "plot_timeline",
    "plot_what_if",
    "run_html",
    "show_plan",
    "show_summary",
    "summary_html",
]
