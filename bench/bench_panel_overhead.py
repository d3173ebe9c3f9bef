"""What watching a run costs: no progress, a tqdm bar, or the notebook control panel.

A 1,000-part dispatch with a no-op handler against the embedded server, three ways:

    none   progress=False, no observer
    tqdm   TqdmProgress writing to a StringIO (a terminal's cost without the terminal)
    panel  the ControlPanel as an observer, not displayed (widget state changes, no front end)

Runs are interleaved (none, tqdm, panel, none, ...) so drift of the machine hits all three
alike; each run gets a fresh parent job, split outside the timed region. Reported: median
wall time of each, its overhead against `none`, and the time spent inside the observer's
callbacks as a share of the run (a direct measure that machine noise does not blur).

    .venv/bin/python bench/bench_panel_overhead.py [--parts 1000] [--repeats 5]

Target: the panel costs at most 2 % of a run's wall time.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from typing import Any

from splitkit import Part, connect, dispatch, plan_parts, split_parent, start_parent_job
from splitkit.dispatch import RunObserver
from splitkit.dispatch.progress import TqdmProgress
from splitkit.dispatch.state import RunState
from splitkit.notebook import ControlPanel

RECORDS_PER_PART = 10


class Timed:
    """Wraps an observer and adds up the time spent in its callbacks."""

    def __init__(self, inner: RunObserver) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    def _timed(self, method: Callable[[RunState], None], state: RunState) -> None:
        began = time.perf_counter()
        method(state)
        self.seconds += time.perf_counter() - began
        self.calls += 1

    def run_started(self, state: RunState) -> None:
        self._timed(self.inner.run_started, state)

    def part_changed(self, state: RunState) -> None:
        self._timed(self.inner.part_changed, state)

    def run_finished(self, state: RunState) -> None:
        self._timed(self.inner.run_finished, state)


def noop(part: Part) -> None:
    return None


def observers_for(kind: str) -> list[Any]:
    if kind == "none":
        return []
    if kind == "tqdm":
        return [Timed(TqdmProgress(file=io.StringIO()))]
    if kind == "panel":
        panel = ControlPanel()
        timed = Timed(panel)
        # The panel's trailing redraws run from the loop, not from a callback: time them too.
        trailing = panel._trailing_draw

        def timed_trailing() -> None:
            began = time.perf_counter()
            trailing()
            timed.seconds += time.perf_counter() - began

        panel._trailing_draw = timed_trailing  # type: ignore[method-assign]
        return [timed]
    raise ValueError(f"kind must be none, tqdm or panel, got {kind!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    kinds = ("none", "tqdm", "panel")
    walls: dict[str, list[float]] = {k: [] for k in kinds}
    inside: dict[str, list[float]] = {k: [] for k in kinds}
    calls: dict[str, int] = dict.fromkeys(kinds, 0)
    records = args.parts * RECORDS_PER_PART
    plan = plan_parts(records, batch_size=RECORDS_PER_PART)

    def one_run(kind: str) -> None:
        # A fresh server each run: a database grown by earlier runs would slow later ones.
        with connect(env={}, records=records) as conn:
            client, sheet_id = conn.client, conn.sheet_id
            assert sheet_id is not None
            parent = start_parent_job(client, sheet_id)
            split_parent(client, parent.id, plan)
            observers = observers_for(kind)
            began = time.perf_counter()
            handle = dispatch(
                client,
                parent.id,
                noop,
                concurrency=args.concurrency,
                progress=False,
                panel=False,
                observers=observers,
                wait=True,
            )
            wall = time.perf_counter() - began
        assert (handle.outcomes["status"] == "completed").all()
        walls[kind].append(wall)
        if observers:
            inside[kind].append(observers[0].seconds / wall)
            calls[kind] = observers[0].calls

    one_run("none")  # warm-up: imports, first connections; not counted
    walls["none"].clear()
    for repeat in range(args.repeats):
        # Rotate the order too, so no kind always runs right after the same other one.
        order = kinds[repeat % 3 :] + kinds[: repeat % 3]
        for kind in order:
            one_run(kind)
        print(
            f"repeat {repeat + 1}/{args.repeats}: "
            + ", ".join(f"{k} {walls[k][-1]:.3f} s" for k in kinds),
            flush=True,
        )

    base = statistics.median(walls["none"])
    print()
    print(
        f"{args.parts} parts x {RECORDS_PER_PART} records, no-op handler, "
        f"concurrency {args.concurrency}, {args.repeats} interleaved repeats"
    )
    print(
        f"{'observer':<8} {'median s':>9} {'vs none':>8} {'min s':>7} {'vs none':>8} "
        f"{'in callbacks':>13} {'calls':>6}"
    )
    best = min(walls["none"])
    for kind in kinds:
        median, fastest = statistics.median(walls[kind]), min(walls[kind])
        share = f"{100.0 * statistics.median(inside[kind]):.3f} %" if inside[kind] else "-"
        print(
            f"{kind:<8} {median:>9.3f} {100.0 * (median - base) / base:>+7.2f}% "
            f"{fastest:>7.3f} {100.0 * (fastest - best) / best:>+7.2f}% "
            f"{share:>13} {calls[kind]:>6}"
        )


if __name__ == "__main__":
    main()
