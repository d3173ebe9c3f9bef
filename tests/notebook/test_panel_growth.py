"""The panel and the tqdm bar do the same work per refresh at 100,000 parts done as at 100.

Work is counted, not timed: every Python call a refresh makes (``sys.setprofile``), the
panel driven in-process with a run state of N parts, all but a few ended. A refresh that
walked the rows (a sum over them, a rebuilt frame, a timeline) would make calls in
proportion to N, and the counts at the two sizes would differ (a loop entirely in C, such
as ``list.count``, makes one call: this test does not see it).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any

from splitkit.engine.progress import TqdmProgress
from splitkit.engine.state import PartRow, RunState
from splitkit.notebook import ControlPanel


def ended_state(parts: int) -> RunState:
    """A run of `parts` parts, every one but the last three ended (one of them failed)."""
    state = RunState(parent_id="us_jb_growth")
    state.add(PartRow(part=i, job_id=f"us_jb_{i}", records=1) for i in range(parts))
    for row in state.rows[: parts - 4]:
        state.move(row, "completed")
    state.move(state.rows[parts - 4], "failed", error="boom")
    state.move(state.rows[parts - 3], "running")
    return state


def calls_of(refresh: Callable[[], Any]) -> int:
    """How many Python (and C) function calls `refresh()` makes."""
    calls = 0

    def profile(_frame: Any, event: str, _arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    try:
        refresh()
    finally:
        sys.setprofile(None)
    return calls


def panel_refresh_calls(parts: int) -> int:
    panel = ControlPanel(redraw_interval_s=0)  # every change redraws
    state = ended_state(parts)
    panel.run_started(state)
    panel.part_changed(state)  # warm: first-time caches (widgets' trait notifiers)
    row = state.rows[parts - 3]

    def refresh() -> None:
        state.move(row, "completed")  # one more part done, and the panel told
        panel.part_changed(state)

    return calls_of(refresh)


def tqdm_refresh_calls(parts: int) -> int:
    bar = TqdmProgress(file=io.StringIO(), mininterval=0)  # every change redraws
    state = ended_state(parts)
    bar.run_started(state)
    bar.part_changed(state)
    row = state.rows[parts - 3]

    def refresh() -> None:
        state.move(row, "completed")
        bar.part_changed(state)

    return calls_of(refresh)


def test_panel_refresh_work_does_not_grow_with_parts_done() -> None:
    small, large = panel_refresh_calls(100), panel_refresh_calls(100_000)
    assert small > 0
    # Equal up to a little slack for number formatting (more digits, commas); a walk over
    # the rows would make ~100,000 more.
    assert large <= small * 1.25, f"a refresh makes {small} calls at 100 parts, {large} at 100k"


def test_tqdm_refresh_work_does_not_grow_with_parts_done() -> None:
    small, large = tqdm_refresh_calls(100), tqdm_refresh_calls(100_000)
    assert small > 0
    assert large <= small * 1.25, f"a refresh makes {small} calls at 100 parts, {large} at 100k"
