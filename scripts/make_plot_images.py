"""Draw the four plots of the docs from real runs on the embedded server.

    .venv/bin/python scripts/make_plot_images.py [--out docs/images]

One run of 20,000 generated records in 200 parts at concurrency 4 (a few parts fail, a few
are slow) gives the timeline, durations and throughput; short runs at three batch sizes,
compared with what_if() fitted to them, give the what-if chart. Takes about 15 s.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import pandas as pd

from splitkit import (
    Client,
    Part,
    dispatch,
    plan_parts,
    settle,
    split_parent,
    start_parent_job,
    summarize,
    what_if,
)
from splitkit.connection import connect
from splitkit.notebook import (
    plot_durations,
    plot_throughput,
    plot_timeline,
    plot_what_if,
)

DPI = 100
FAILING = frozenset({23, 88, 151})


def handler(part: Part) -> str:
    """A handler with a realistic shape: mostly quick, some stragglers, a few failures."""
    if part.index in FAILING:
        raise ValueError(f"part {part.index}: downstream system rejected the batch")
    slow = part.index % 17 == 5
    time.sleep(0.12 if slow else 0.02 + 0.01 * (part.index % 3))
    return f"{len(part.records)} records"


def run(
    client: Client,
    sheet_id: str,
    total: int,
    batch_size: int,
    concurrency: int,
    work: Callable[[Part], str] = handler,
) -> pd.DataFrame:
    plan = plan_parts(total, batch_size=batch_size)
    parent = start_parent_job(client, sheet_id)
    split_parent(client, parent.id, plan)
    handle = dispatch(
        client, parent.id, work, concurrency=concurrency, retries=0, progress=False, wait=True
    )
    outcomes = handle.outcomes
    settle(client, parent.id, summarize(outcomes))
    return outcomes


def cost_model(part: Part) -> str:
    time.sleep(0.03 + 0.00002 * len(part.records))
    return "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    with connect(records=20_000) as conn:
        client, sheet_id = conn.client, conn.sheet_id
        assert sheet_id is not None
        total = client.get_counts(sheet_id).total
        outcomes = run(client, sheet_id, total, batch_size=100, concurrency=4)

        measured_runs = {
            b: run(client, sheet_id, total, b, 4, cost_model) for b in (200, 1_000, 5_000)
        }

    measured = pd.DataFrame(
        [
            {"batch_size": b, "concurrency": 4, "wall_s": float(summarize(o)["wall_s"].iloc[0])}
            for b, o in measured_runs.items()
        ]
    )
    fitted = what_if(
        total,
        batch_sizes=[100, 200, 500, 1_000, 2_000, 5_000, 10_000],
        concurrencies=[1, 2, 4, 8],
        outcomes=pd.concat(measured_runs.values(), ignore_index=True),
    )

    drawings = {
        "timeline.png": (lambda ax: plot_timeline(outcomes, ax=ax), (10, 3.6)),
        "durations.png": (lambda ax: plot_durations(outcomes, ax=ax), (8, 4)),
        "throughput.png": (lambda ax: plot_throughput(outcomes, ax=ax), (8, 3.6)),
        "what_if.png": (lambda ax: plot_what_if(fitted, measured=measured, ax=ax), (8, 4.5)),
    }
    for name, (draw, size) in drawings.items():
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        draw(ax)
        fig.savefig(args.out / name, dpi=DPI)
        plt.close(fig)
        print(args.out / name)


if __name__ == "__main__":
    main()
