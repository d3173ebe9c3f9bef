"""What watching a run costs: no progress, a tqdm bar, or the notebook control panel.

A 1,000-part dispatch with a no-op handler against the embedded server, three ways:

    none   progress=False, no observer
    tqdm   TqdmProgress writing to a StringIO (a terminal's cost without the terminal)
    panel  the ControlPanel as an observer, not displayed (widget state changes, no front end)

Runs are interleaved (none, tqdm, panel, tqdm, panel, none, ...) so drift of the machine hits
all three alike; each run gets a fresh embedded server and parent job, set up outside the
timed region. Reported, as medians: wall time; CPU time of this process (engine and server
together, less blurred by other processes on the machine); and the share of the run's wall
time spent inside the observer's callbacks, with the cost of one call. That last one is the
direct measure: wall-time differences of a few percent drown in the noise of a shared
machine, the time spent in the observer does not.

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
from splitkit.engine import RunObserver
from splitkit.engine.progress import TqdmProgress
from splitkit.engine.state import RunState
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
    cpus: dict[str, list[float]] = {k: [] for k in kinds}  # this process: engine + server
    inside: dict[str, list[float]] = {k: [] for k in kinds}
    calls: dict[str, int] = dict.fromkeys(kinds, 0)
    per_call: dict[str, list[float]] = {k: [] for k in kinds}
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
            began, began_cpu = time.perf_counter(), time.process_time()
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
            cpu = time.process_time() - began_cpu
        assert (handle.outcomes["status"] == "completed").all()
        walls[kind].append(wall)
        cpus[kind].append(cpu)
        if observers:
            inside[kind].append(observers[0].seconds / wall)
            calls[kind] = observers[0].calls
            per_call[kind].append(observers[0].seconds / max(observers[0].calls, 1))

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
        f"{'observer':<8} {'wall s':>7} {'vs none':>8} {'cpu s':>7} {'vs none':>8} "
        f"{'in callbacks':>13} {'us/call':>8} {'calls':>6}"
    )
    base_cpu = statistics.median(cpus["none"])
    for kind in kinds:
        wall, cpu = statistics.median(walls[kind]), statistics.median(cpus[kind])
        share = f"{100.0 * statistics.median(inside[kind]):.3f} %" if inside[kind] else "-"
        micro = f"{1e6 * statistics.median(per_call[kind]):.1f}" if per_call[kind] else "-"
        print(
            f"{kind:<8} {wall:>7.3f} {100.0 * (wall - base) / base:>+7.2f}% "
            f"{cpu:>7.3f} {100.0 * (cpu - base_cpu) / base_cpu:>+7.2f}% "
            f"{share:>13} {micro:>8} {calls[kind]:>6}"
        )
    print(
        "\nwall and cpu are medians (cpu: this process, engine and embedded server together);"
        "\n'in callbacks' is the median share of a run's wall time spent in the observer."
    )


if __name__ == "__main__":
    main()
