"""Growth to 100,000 parts (issue 10.3): does a part cost the same at 100k as at 1k?

1-record parts, no-op handler, the embedded server in a child process (its CPU is measured
apart, with psutil). For each size (``--sizes``, default 1,000 / 10,000 / 100,000 parts),
on a fresh parent, the four client phases are timed one by one:

- ``split``: ``split_parent(client, parent, plan)`` (the split request, then every part
  listed and joined to the plan);
- ``dispatch``: ``dispatch(config, parent, noop, concurrency=C, wait=True)`` with its tqdm
  bar drawing to ``/dev/null`` (the bar is part of what is measured);
- ``summarize``: ``summarize(outcomes)``;
- ``settle``: ``settle(client, parent, summary)`` (reads the parent's parts to check them).

For each phase: wall ms per part, client CPU ms per part (this process, every thread) and
server CPU ms per part (the child), medians over ``--rounds`` interleaved rounds (sizes in
a rotated order each round; the largest size runs ``--big-rounds`` times), and the ratio
of the largest size to the smallest.

Memory, per part, above the outcome frame's own (``DataFrame.memory_usage(deep=True)``):

- in every timed run, the RSS growth from before the split to after settle (the handle
  and the frame still held), and the peak RSS of that stretch (Linux ``VmHWM``, reset
  through ``/proc/self/clear_refs``);
- in one extra run of ``--trace-parts`` parts under ``tracemalloc`` (slower, so not
  timed): the peak of traced memory during dispatch, and what the finished run still
  keeps (handle, engine, observers) after the frame is dropped; with the top allocation
  sites of the peak.

    .venv/bin/python bench/bench_growth.py            # 1k, 10k, 100k (~15 min today)
    .venv/bin/python bench/bench_growth.py --quick    # 1k and 10k, one round (~2-3 min)
    .venv/bin/python bench/bench_growth.py --sizes 1000,20000 --rounds 3 --trace-parts 5000
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
from tqdm import tqdm

from splitkit import (
    Client,
    dispatch,
    plan_parts,
    settle,
    split_parent,
    start_parent_job,
    summarize,
)
from splitkit.api import ClientConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dispatch import ServerInfo, noop, running_server

PHASES = ("split", "dispatch", "summarize", "settle")


# -- memory ---------------------------------------------------------------------------------


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak RSS of this process (Linux 4.0+); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def frame_bytes(frame: pd.DataFrame) -> int:
    return int(frame.memory_usage(deep=True).sum())


# -- one run ----------------------------------------------------------------------------------


@dataclass
class Run:
    parts: int
    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    server: dict[str, float] = field(default_factory=dict)
    rss_growth: int = 0
    rss_peak: int | None = None
    frame: int = 0


def timed(run: Run, info: ServerInfo, phase: str, call: Callable[[], Any]) -> Any:
    server_from = info.cpu_s()
    wall_from, cpu_from = time.perf_counter(), time.process_time()
    result = call()
    run.wall[phase] = time.perf_counter() - wall_from
    run.cpu[phase] = time.process_time() - cpu_from
    run.server[phase] = info.cpu_s() - server_from
    return result


def one_run(client: Client, info: ServerInfo, parts: int, concurrency: int) -> Run:
    config = ClientConfig(info.url, info.token, info.environment_id)
    plan = plan_parts(parts, batch_size=1)
    parent = start_parent_job(client, info.sheet_id)
    run = Run(parts)
    gc.collect()
    before = rss()
    peak_known = reset_peak_rss()
    timed(run, info, "split", lambda: split_parent(client, parent.id, plan, check_counts=False))
    with open(os.devnull, "w") as devnull:
        handle = timed(
            run,
            info,
            "dispatch",
            lambda: dispatch(
                config,
                parent.id,
                noop,
                concurrency=concurrency,
                tqdm_class=lambda **kw: tqdm(file=devnull, **kw),
                wait=True,
            ),
        )
    outcomes = handle.wait()
    done = int((outcomes["status"] == "completed").sum())
    if done != parts:
        raise RuntimeError(f"{done} of {parts} parts completed")
    summary = timed(run, info, "summarize", lambda: summarize(outcomes))
    result = timed(run, info, "settle", lambda: settle(client, parent.id, summary))
    if result.status != "complete":
        raise RuntimeError(f"settle left the parent {result.status}")
    gc.collect()
    run.frame = frame_bytes(outcomes)
    run.rss_growth = rss() - before
    peak = peak_rss() if peak_known else None
    run.rss_peak = None if peak is None else peak - before
    return run


@dataclass
class Traced:
    parts: int
    peak: int
    kept: int
    frame: int
    top: list[str]


def traced_run(client: Client, info: ServerInfo, parts: int, concurrency: int) -> Traced:
    """One dispatch under tracemalloc: its peak, and what the ended run keeps past the frame."""
    config = ClientConfig(info.url, info.token, info.environment_id)
    plan = plan_parts(parts, batch_size=1)
    parent = start_parent_job(client, info.sheet_id)
    split_parent(client, parent.id, plan, check_counts=False)
    gc.collect()
    tracemalloc.start(10)
    base = tracemalloc.get_traced_memory()[0]
    with open(os.devnull, "w") as devnull:
        handle = dispatch(
            config,
            parent.id,
            noop,
            concurrency=concurrency,
            tqdm_class=lambda **kw: tqdm(file=devnull, **kw),
            wait=True,
        )
    outcomes = handle.wait()
    peak = tracemalloc.get_traced_memory()[1] - base
    frame = frame_bytes(outcomes)
    del outcomes
    # RunHandle's future holds the frame it returned: drop the handle's result too, so only
    # what the engine, its state and observers keep is counted.
    handle._future = None  # type: ignore[assignment]
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - base
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    top = [
        f"{stat.size / parts:,.0f} B/part {stat.traceback[0]}"
        for stat in snapshot.statistics("lineno")[:6]
    ]
    del handle
    settle(client, parent.id, summarize(_outcomes_of_server(client, parent.id)))
    return Traced(parts, peak, kept, frame, top)


def _outcomes_of_server(client: Client, parent_id: str) -> pd.DataFrame:
    """A summary-ready frame from the server's parts (the traced run's frame was dropped)."""
    statuses = [job.status for job in client.list_parts(parent_id)]
    frame = pd.DataFrame(
        {"status": ["completed" if s == "complete" else s for s in statuses], "records": 1}
    )
    frame.attrs["parent_id"] = parent_id
    return frame


# -- report ---------------------------------------------------------------------------------


def report(args: argparse.Namespace, runs: dict[int, list[Run]], traced: Traced | None) -> None:
    sizes = sorted(runs)
    small, big = sizes[0], sizes[-1]
    print(
        f"\n### Growth: 1-record parts, no-op handler, C={args.concurrency}, server in a "
        f"child process\n\nMedians of {args.rounds} interleaved rounds "
        f"({args.big_rounds} for {big:,} parts). ms per part: wall, client CPU (this "
        "process), server CPU (the child). Ratio: largest size / smallest, per part.\n"
    )
    head = "| phase | " + " | ".join(f"{n:,} parts wall / cpu / server" for n in sizes)
    print(head + f" | {big:,}/{small:,} wall | cpu |")
    print("|---|" + "---:|" * (len(sizes) + 2))

    def med(n: int, what: str, phase: str) -> float:
        return statistics.median(getattr(r, what)[phase] for r in runs[n]) * 1000 / n

    for phase in (*PHASES, "total"):
        cells, walls, cpus = [], {}, {}
        for n in sizes:
            if phase == "total":
                wall = statistics.median(sum(r.wall.values()) for r in runs[n]) * 1000 / n
                cpu = statistics.median(sum(r.cpu.values()) for r in runs[n]) * 1000 / n
                server = statistics.median(sum(r.server.values()) for r in runs[n]) * 1000 / n
            else:
                wall, cpu, server = (med(n, w, phase) for w in ("wall", "cpu", "server"))
            walls[n], cpus[n] = wall, cpu
            cells.append(f"{wall:,.3f} / {cpu:,.3f} / {server:,.3f}")
        print(
            f"| {phase} | " + " | ".join(cells) + f" | {walls[big] / walls[small]:.2f}x "
            f"| {cpus[big] / cpus[small]:.2f}x |"
        )
    print(
        "\nParts per second, dispatch alone: "
        + ", ".join(f"{n:,}: {1000 / med(n, 'wall', 'dispatch'):,.0f}" for n in sizes)
    )
    print("\n| parts | frame B/part | RSS growth - frame, B/part | peak RSS - frame, B/part |")
    print("|---:|---:|---:|---:|")
    for n in sizes:
        frame = statistics.median(r.frame for r in runs[n]) / n
        growth = statistics.median(r.rss_growth - r.frame for r in runs[n]) / n
        peaks = [r.rss_peak - r.frame for r in runs[n] if r.rss_peak is not None]
        peak = f"{statistics.median(peaks) / n:,.0f}" if peaks else "n/a"
        print(f"| {n:,} | {frame:,.0f} | {growth:,.0f} | {peak} |")
    if traced is not None:
        n = traced.parts
        print(
            f"\ntracemalloc, one dispatch of {n:,} parts: peak during the run "
            f"{traced.peak / n:,.0f} B/part (frame {traced.frame / n:,.0f} B/part included); "
            f"kept by the ended run past its frame {traced.kept / n:,.0f} B/part "
            f"(target <= 2,048). Top sites of what is kept:\n"
        )
        for line in traced.top:
            print(f"- `{line}`")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="part counts, commas")
    parser.add_argument("--quick", action="store_true", help="1k and 10k parts, one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the smaller sizes")
    parser.add_argument("--big-rounds", type=int, default=1, help="rounds of the largest size")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--trace-parts", type=int, default=10_000, help="tracemalloc run size (0: none)"
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.rounds, args.big_rounds = "1000,10000", 1, 1
        args.trace_parts = min(args.trace_parts, 5_000)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    records = max([*sizes, args.trace_parts])
    runs: dict[int, list[Run]] = {n: [] for n in sizes}
    began = time.perf_counter()
    with (
        running_server(records, "process") as info,
        Client(info.url, info.token, environment_id=info.environment_id) as client,
    ):
        one_run(client, info, min(200, sizes[0]), args.concurrency)  # warm-up
        for round_ in range(max(args.rounds, args.big_rounds)):
            order = [
                n for n in sizes if round_ < (args.big_rounds if n == sizes[-1] else args.rounds)
            ]
            shift = round_ % len(order)
            for n in order[shift:] + order[:shift]:
                run = one_run(client, info, n, args.concurrency)
                runs[n].append(run)
                print(
                    f"  round {round_ + 1}: {n:,} parts "
                    + ", ".join(f"{p} {run.wall[p]:.2f} s" for p in PHASES),
                    flush=True,
                )
        traced = (
            traced_run(client, info, args.trace_parts, args.concurrency)
            if args.trace_parts
            else None
        )
    report(args, runs, traced)
    print(f"\n({time.perf_counter() - began:,.0f} s in all)")


if __name__ == "__main__":
    main()
