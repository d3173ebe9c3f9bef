"""What the control panel shows, as HTML, apart from its widgets: the phase, the label
(parts, records, throughput, ETA), the counts by status, the error line, and the static
final view that replaces the widgets when a run ends.

The final view carries the live widgets' class names (`splitkit-panel`, `splitkit-bar`,
`splitkit-label`, ...), so what reads the page reads both alike. Pure HTML: importing
this module does not load ipywidgets.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

from splitkit.notebook import pace
from splitkit.statuses import OutcomeStatus

if TYPE_CHECKING:
    from splitkit.engine.controls import Controls
    from splitkit.engine.state import RunState

__all__ = [
    "STATUS_COLORS",
    "bar_style",
    "counts_html",
    "error_html",
    "final_html",
    "label_html",
    "phase",
    "plain_text",
]

# Status colours shared by the panel and the HTML reprs (reprs.py), so a run looks the same
# everywhere (plots.py keeps a copy of the ended ones; a test keeps them equal).
STATUS_COLORS: dict[str, str] = {
    OutcomeStatus.PENDING: "#9e9e9e",
    OutcomeStatus.RUNNING: "#1e88e5",
    OutcomeStatus.COMPLETED: "#43a047",
    OutcomeStatus.FAILED: "#e53935",
    OutcomeStatus.CANCELED: "#fb8c00",
}
# The progress bar's colour in the static final view, by the live bar's `bar_style`.
_BAR_COLORS = {
    "success": STATUS_COLORS["completed"],
    "danger": STATUS_COLORS["failed"],
    "warning": STATUS_COLORS["canceled"],
    "info": STATUS_COLORS["running"],
    "": STATUS_COLORS["running"],
}


def phase(
    tally: dict[str, int] | None,
    controls: Controls | None,
    *,
    started: bool,
    finished: bool,
    run_error: str | None,
) -> str:
    """One word for where the run is: starting, running, paused, ..., done."""
    stopped = controls is not None and controls.stopped
    if finished:
        if run_error:
            return "stopped"
        if tally and tally["canceled"]:
            return "canceled"
        if stopped and tally and tally["pending"]:
            return "stopped"  # stopped here: the rest stay open for the next run
        return "done"
    if controls is not None and controls.cancelled:
        return "canceling"
    if stopped:
        return "stopping"
    if controls is not None and controls.paused:
        return "paused"
    return "running" if started else "starting"


def bar_style(tally: dict[str, int], *, finished: bool) -> str:
    """The progress bar's `bar_style`: red on a failure, orange on a cancel, ..."""
    if tally["failed"]:
        return "danger"
    if tally["canceled"]:
        return "warning"
    if finished:
        return "warning" if tally["pending"] else "success"
    return "info"


def label_html(
    phase: str,
    state: RunState,
    tally: dict[str, int],
    ended: int,
    total: int,
    *,
    active_s: float,
    ended_before: int,
) -> str:
    """Phase · parts · records · throughput · ETA. `ended_before` parts ended in earlier
    runs (not this run's pace); `active_s` is this run's time less its pauses."""
    parts = f"<b>{ended:,}</b>/{total:,} parts"
    records = f"{state.records_done:,}/{state.records_total:,} records"
    rate = pace.throughput(state.records_done - state.records_done_before, active_s)
    eta = _eta(phase, tally, ended - ended_before, active_s)
    workers = "" if state.workers is None else f" · {state.workers:,} workers"
    return f"<b>{phase}</b> · {parts} · {records} · {rate} · ETA {eta}{workers}"


def _eta(phase: str, tally: dict[str, int], done_now: int, active_s: float) -> str:
    if phase in {"done", "canceled", "stopped"}:
        return "0s"
    if phase in {"paused", "canceling", "stopping"}:
        return phase
    # Parts, not records: failed and canceled parts count as progress too.
    return pace.eta(tally["pending"] + tally["running"], done_now, active_s)


def counts_html(tally: dict[str, int]) -> str:
    cells = [
        f'<span class="splitkit-count-{status}" style="color:{color}">'
        f"{status} <b>{tally[status]:,}</b></span>"
        for status, color in STATUS_COLORS.items()
    ]
    return " · ".join(cells)


def error_html(last_error: str | None) -> str:
    if not last_error:
        return ""
    return (
        f'<span style="color:{STATUS_COLORS["failed"]}">last error: '
        f"{html.escape(last_error)}</span>"
    )


def final_html(
    *, value: int, max_value: int, bar_style: str, label: str, counts: str, error: str
) -> str:
    """The panel's drawn state as static HTML: the bar (`value` of `max_value`, coloured by
    `bar_style`), and the label, counts and error HTML as the widgets show them."""
    fraction = value / max(max_value, 1)
    color = _BAR_COLORS.get(bar_style, STATUS_COLORS["running"])
    bar = (
        '<div class="splitkit-bar" title="parts" style="display:inline-block;width:12em;'
        'height:0.9em;background:#e0e0e0;border-radius:2px;vertical-align:middle">'
        f'<div style="width:{fraction:.1%};height:100%;background:{color};'
        'border-radius:2px"></div></div>'
    )
    return (
        '<div class="splitkit-panel splitkit-panel-final" style="line-height:1.8">'
        f'<div>{bar} <span class="splitkit-label">{label}</span></div>'
        f'<div class="splitkit-counts">{counts}</div>'
        f'<div class="splitkit-error">{error}</div>'
        "</div>"
    )


def plain_text(label_html: str) -> str:
    """The label without its tags, for a text-only front end."""
    return html.unescape(re.sub(r"<[^>]+>", "", label_html))
