"""HTML at a glance for the pipeline's objects: the plan, a run, the summary.

Three functions build the HTML (`plan_html`, `run_html`, `summary_html`). `RunHandle`
shows `run_html` as its `_repr_html_` without importing this module (the engine never
imports the notebook layer): `splitkit/__init__.py` registers it in the engine's
`notebook_views`. DataFrames keep pandas' own repr (no monkeypatching):
`show_plan(df)` / `show_summary(df)` wrap the HTML in an `Html` object a cell displays.

Every value that comes from data is escaped; the markup is inline-styled so it looks the
same in JupyterLab, classic Notebook, VS Code and a rendered .ipynb on a forge.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from splitkit._checks import instance_of
from splitkit.notebook.panel_view import STATUS_COLORS
from splitkit.statuses import SUMMARY_COUNTS, OutcomeStatus

if TYPE_CHECKING:
    from splitkit.engine.handle import RunHandle

__all__ = ["Html", "plan_html", "run_html", "show_plan", "show_summary", "summary_html"]

_BOX = (
    "font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;line-height:1.5;"
    "padding:6px 10px;border:1px solid #ddd;border-radius:4px;display:inline-block"
)
_TABLE = "border-collapse:collapse;font-variant-numeric:tabular-nums;margin-top:4px"
_CELL = "padding:1px 8px;text-align:right;border-bottom:1px solid #eee"
_PREVIEW_HEAD = 3  # plan rows shown before the ellipsis
_PREVIEW_TAIL = 2  # and after it: the short last part is usually the interesting one


class Html:
    """A piece of HTML a notebook cell displays as such (and prints as its source)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def _repr_html_(self) -> str:
        return self.source

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"Html({len(self.source)} chars)"


def show_plan(plan: pd.DataFrame) -> Html:
    """The plan from `plan_parts()`, as a short HTML card: sizes, then the first and last rows."""
    return Html(plan_html(plan))


def show_summary(summary: pd.DataFrame) -> Html:
    """The summary from `summarize()` (one row, or several concatenated), as an HTML card."""
    return Html(summary_html(summary))


# -- the plan ------------------------------------------------------------------------------
def plan_html(plan: pd.DataFrame) -> str:
    """One line of totals and a preview of the parts (first and last rows)."""
    instance_of("plan", plan, pd.DataFrame, "a pandas DataFrame")
    parts = len(plan)
    total = plan.attrs.get("total")
    if total is None and "records" in plan.columns:
        total = int(plan["records"].sum())
    batch = plan.attrs.get("batch_size")
    if batch is None and parts and "page_size" in plan.columns:
        batch = int(plan["page_size"].iloc[0])
    facts = [f"<b>{parts:,}</b> part{'s' if parts != 1 else ''}"]
    if total is not None:
        facts.append(f"<b>{int(total):,}</b> records")
    if batch is not None:
        facts.append(f"batch size <b>{int(batch):,}</b>")
    if parts and "records" in plan.columns:
        smallest, largest = int(plan["records"].min()), int(plan["records"].max())
        if smallest != largest:
            last = int(plan["records"].iloc[-1])
            facts.append(f"last part {last:,} record{'s' if last != 1 else ''}")
    head = f"<div><b>Plan</b> · {' · '.join(facts)}</div>"
    if not parts:
        body = "<div style='color:#777'>nothing to split: the sheet has no records</div>"
    else:
        body = _preview_table(plan)
    return f'<div class="splitkit-plan" style="{_BOX}">{head}{body}</div>'


def _preview_table(frame: pd.DataFrame) -> str:
    columns = [str(c) for c in frame.columns]
    header = "".join(f'<th style="{_CELL}">{html.escape(c)}</th>' for c in columns)
    rows: list[str] = []
    shown = _PREVIEW_HEAD + _PREVIEW_TAIL
    if len(frame) <= shown + 1:  # an ellipsis for one hidden row would hide nothing useful
        pieces: list[pd.DataFrame | None] = [frame]
    else:
        pieces = [frame.head(_PREVIEW_HEAD), None, frame.tail(_PREVIEW_TAIL)]
    for piece in pieces:
        if piece is None:
            rows.append(
                f'<tr><td colspan="{len(columns)}" style="{_CELL};text-align:center;color:#777">'
                f"… {len(frame) - shown:,} more …</td></tr>"
            )
            continue
        for values in piece.itertuples(index=False):
            cells = "".join(f'<td style="{_CELL}">{_cell(v)}</td>' for v in values)
            rows.append(f"<tr>{cells}</tr>")
    return f'<table style="{_TABLE}"><tr>{header}</tr>{"".join(rows)}</table>'


# -- a run ---------------------------------------------------------------------------------
def run_html(handle: RunHandle) -> str:
    """The run's phase, a status bar, counts, records, throughput and the last error."""
    state = handle.state
    tally = state.tally()
    total = len(state.rows)
    ended = tally["completed"] + tally["failed"] + tally["canceled"]
    if handle.error is not None:
        phase = "stopped"
    elif handle.done:
        phase = "canceled" if tally["canceled"] else "done"
    elif handle.controls.cancelled:
        phase = "canceling"
    elif handle.controls.paused:
        phase = "paused"
    elif total == 0:
        phase = "starting"
    else:
        phase = "running"
    head = (
        f"<div><b>Run</b> of parent <code>{html.escape(handle.parent_id)}</code> · "
        f"<b>{phase}</b> · {ended:,}/{total:,} parts ended</div>"
    )
    facts = [
        f"{state.records_done:,}/{state.records_total:,} records",
        f"{state.records_per_s:,.0f} rec/s",
        f"{state.elapsed_s:,.1f} s",
        f"concurrency {handle.concurrency}",
    ]
    lines = [head, _status_bar(tally, total), _legend(tally), f"<div>{' · '.join(facts)}</div>"]
    error = (f"{type(handle.error).__name__}: {handle.error}" if handle.error else None) or (
        state.last_error
    )
    if error:
        lines.append(
            f'<div style="color:{STATUS_COLORS["failed"]}">last error: {html.escape(error)}</div>'
        )
    return f'<div class="splitkit-run" style="{_BOX}">{"".join(lines)}</div>'


# -- the summary ---------------------------------------------------------------------------
def summary_html(summary: pd.DataFrame) -> str:
    """Per run (row): a status bar, the counts, records processed, durations, throughput."""
    instance_of("summary", summary, pd.DataFrame, "a pandas DataFrame")
    missing = [c for c in ("total", "completed", "failed", "canceled") if c not in summary]
    if missing:
        raise ValueError(f"summary is missing column(s) {missing}; make it with summarize()")
    blocks = []
    many = len(summary) > 1
    for key, row in summary.iterrows():
        counts = {s.value: _int(row.get(s.value, 0)) for s in SUMMARY_COUNTS}
        total = _int(row["total"])
        title = f"<b>Summary</b>{f' · {html.escape(str(key))}' if many else ''}"
        verdict = (
            "all parts completed"
            if total and counts["completed"] == total
            else f"{counts['completed']:,} of {total:,} parts completed"
        )
        facts = []
        processed = row.get("records_processed")
        if _present(processed):
            facts.append(f"{_int(processed):,} records processed")
        if _present(row.get("wall_s")):
            facts.append(f"wall {float(row['wall_s']):,.2f} s")
        if _present(row.get("records_per_s")):
            facts.append(f"{float(row['records_per_s']):,.0f} rec/s")
        if _present(row.get("parts_per_s")):
            facts.append(f"{float(row['parts_per_s']):,.1f} parts/s")
        durations = [
            f"{name} {float(row[column]):,.3f} s"
            for name, column in (
                ("p50", "duration_p50_s"),
                ("p95", "duration_p95_s"),
                ("max", "duration_max_s"),
            )
            if _present(row.get(column))
        ]
        if durations:
            facts.append("part duration " + ", ".join(durations))
        blocks.append(
            f"<div>{title} · {verdict}</div>{_status_bar(counts, total)}{_legend(counts)}"
            + (f"<div>{' · '.join(facts)}</div>" if facts else "")
        )
    if not blocks:
        blocks.append("<div><b>Summary</b> · no runs</div>")
    sep = '<hr style="margin:4px 0;border:none;border-top:1px solid #eee">'
    return f'<div class="splitkit-summary" style="{_BOX}">{sep.join(blocks)}</div>'


# -- pieces --------------------------------------------------------------------------------
# Ended statuses first: the bar fills from the left as parts end.
_ORDER: Sequence[str] = tuple(
    status.value
    for status in (
        OutcomeStatus.COMPLETED,
        OutcomeStatus.FAILED,
        OutcomeStatus.CANCELED,
        OutcomeStatus.RUNNING,
        OutcomeStatus.PENDING,
    )
)


def _status_bar(counts: Mapping[str, int], total: int, width_px: int = 320) -> str:
    """A stacked bar, one segment per status, sized by its share of the parts."""
    segments = []
    for status in _ORDER:
        n = counts.get(status, 0)
        if n and total:
            pct = 100.0 * n / total
            segments.append(
                f'<div title="{status} {n:,}" style="width:{pct:.3f}%;'
                f'background:{STATUS_COLORS[status]}"></div>'
            )
    return (
        f'<div style="display:flex;width:{width_px}px;max-width:100%;height:10px;'
        f'background:#eee;border-radius:3px;overflow:hidden;margin:3px 0">'
        f"{''.join(segments)}</div>"
    )


def _legend(counts: Mapping[str, int]) -> str:
    cells = [
        f'<span style="color:{STATUS_COLORS[status]}">{status} <b>{counts[status]:,}</b></span>'
        for status in _ORDER
        if status in counts
    ]
    return f"<div>{' · '.join(cells)}</div>"


def _present(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _int(value: Any) -> int:
    return int(value) if _present(value) else 0


def _cell(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,}"
    try:
        return f"{int(value):,}" if float(value).is_integer() else html.escape(str(value))
    except (TypeError, ValueError):
        return html.escape(str(value))
