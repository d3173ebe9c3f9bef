"""Observers of a run: the tqdm progress bar here; the notebook panel lives in `notebook/`.

An observer is told when the run starts, when any part changes, and when the run ends,
always on the engine's thread. Redraws are throttled (tqdm's `mininterval`), so a run with
thousands of fast parts does not spend its time drawing.
"""

from __future__ import annotations

from typing import Any, Protocol

from splitkit.engine.state import RunState

REDRAW_INTERVAL_S = 0.1  # about ten redraws a second, in a terminal and a notebook alike


class RunObserver(Protocol):
    def run_started(self, state: RunState) -> None: ...

    def part_changed(self, state: RunState) -> None: ...

    def run_finished(self, state: RunState) -> None: ...


class TqdmProgress:
    """One aggregate bar: parts done of total, with records and throughput in the postfix."""

    def __init__(self, tqdm_class: Any = None, **tqdm_kwargs: Any) -> None:
        if tqdm_class is None:
            from tqdm.auto import tqdm

            tqdm_class = tqdm
        self._tqdm_class = tqdm_class
        self._kwargs = {"mininterval": REDRAW_INTERVAL_S, "unit": "part", **tqdm_kwargs}
        self._bar: Any = None
        self._shown = 0

    def run_started(self, state: RunState) -> None:
        self._shown = state.ended
        self._bar = self._tqdm_class(
            total=len(state.rows), initial=self._shown, desc="parts", **self._kwargs
        )
        self._postfix(state)

    def part_changed(self, state: RunState) -> None:
        ended = state.ended
        if self._bar is None or ended == self._shown:
            return
        self._postfix(state)
        self._bar.update(ended - self._shown)  # redraws at most every mininterval
        self._shown = ended

    def run_finished(self, state: RunState) -> None:
        if self._bar is None:
            return
        self.part_changed(state)
        self._postfix(state)
        self._bar.refresh()
        self._bar.close()

    def _postfix(self, state: RunState) -> None:
        tally = state.tally()
        postfix = {
            "records": f"{state.records_done:,}/{state.records_total:,}",
            "rec/s": f"{state.records_per_s:,.0f}",
        }
        if state.workers is not None:
            postfix["workers"] = str(state.workers)
        if tally["failed"]:
            postfix["failed"] = str(tally["failed"])
        if tally["canceled"]:
            postfix["canceled"] = str(tally["canceled"])
        self._bar.set_postfix(postfix, refresh=False)
