"""Chaos figures: dispatch and settle through a fault-injecting proxy (issue 7).

The scenario of ``tests/chaos`` (``chaos_scenario.run_dispatch_scenario``): a parent of
``--parts`` parts (``--batch`` records each) on an embedded server (file database), split
directly; dispatched through ``tests/faultproxy.py`` in random mode with every fault kind
(latency, 429 + Retry-After, 500, 503, 502 after forwarding, answer lost after
processing, reset) at ``--rate`` of the requests, ``dispatch()`` again until no part is
open, then settled through the proxy. Counts are read from the server directly.

Prints one Markdown table (paste into BENCHMARKS.md): per seed, the parts, the faults
injected by kind, handlers run twice within a run, records and part jobs duplicated,
parts lost (not complete at the end, or complete without their handler having run),
parts left open after run 1 (their ack or page could not get through; the next run
takes them), handlers run in more than one run, the runs needed (and how many of them
raised, e.g. when the claim could not be written), and wall time.

    .venv/bin/python bench/bench_chaos.py                      # 240 parts, 10%, 3 seeds
    .venv/bin/python bench/bench_chaos.py --parts 480 --seeds 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests" / "chaos"), str(HERE.parent / "tests")]

from chaos_scenario import (  # noqa: E402  (tests/chaos holds the shared scenario)
    BATCH,
    PARTS,
    RATE,
    SEEDS,
    DispatchScenario,
    run_dispatch_scenario,
)
from faultproxy import KINDS  # noqa: E402

from splitkit.server import EmbeddedServer  # noqa: E402


def row(result: DispatchScenario) -> dict[str, object]:
    twice = len(result.calls.twice_within_a_run())
    return {
        "seed": result.seed,
        "parts": result.planned_parts,
        **{kind: result.injected.get(kind, 0) for kind in KINDS},
        "handlers twice in a run": twice,
        "handlers in 2+ runs": sum(
            n > 1 for n in Counter(job for _, job in result.calls.calls).values()
        ),
        "records dup.": result.records_on_server - result.records,
        "jobs dup.": result.part_jobs - result.planned_parts,
        "parts lost": len(result.lost()),
        "open after run 1": result.left_open_after_first_run(),
        "runs": len(result.runs),
        "runs raised": sum(run.error is not None for run in result.runs),
        "wall s": f"{result.wall_s:.1f}",
    }


def markdown(rows: list[dict[str, object]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", type=int, default=PARTS)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--rate", type=float, default=RATE, help="of each fault kind")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args()
    if not 0 < args.rate * len(KINDS) <= 1:
        parser.error(f"--rate times {len(KINDS)} kinds must be in (0, 1], got {args.rate}")

    records = args.parts * args.batch - args.batch // 2  # the last part is a short one
    rates = dict.fromkeys(KINDS, args.rate)
    rows = []
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedServer(db_path=Path(tmp) / "chaos.db", records=records) as server,
    ):
        assert server.sheet_id is not None
        for seed in args.seeds:
            result = run_dispatch_scenario(
                server.url, server.token, server.sheet_id, seed, rates=rates, batch=args.batch
            )
            rows.append(row(result))
            print(f"seed {seed}: {result.wall_s:.1f} s", file=sys.stderr)
            for run in result.runs:
                if run.error is not None:
                    print(f"  {run.label} raised: {run.error}", file=sys.stderr)
    print(
        f"Chaos: {args.parts} parts of <= {args.batch} records, each of the {len(KINDS)} fault "
        f"kinds at {args.rate:.0%} of the requests through the proxy, seeds {args.seeds} "
        f"({time.monotonic() - began:.0f} s in all)\n"
    )
    print(markdown(rows))


if __name__ == "__main__":
    main()
