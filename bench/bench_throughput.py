"""Parts per second on the embedded server: 1-record parts, no-op handler (issue 10).

Two clients, each on a freshly split parent of ``--parts`` 1-record parts, concurrency
``--concurrency``: splitkit's ``dispatch()`` and the raw floor (httpx on aiohttp: POST
ack, GET the page, POST complete; ``bench_dispatch.py``'s helpers). Two server placements:
in this process (``thread``, the notebook case) and in a child process (``process``).
Rounds are interleaved (order rotated each round); medians are reported, with the client's
and the server's CPU per part apart: in ``thread`` mode the server's is the CPU of its
threads (uvicorn's loop and the thread pool), read per thread with psutil.

``--before SRC`` adds a child-process server run from another checkout (e.g. the main
branch before this change) beside the current one, so before and after are side by side.

Then one profiled run in this process (each thread under its own cProfile) prints the top
functions by own time, per part, for the server's threads and for the client's.

    .venv/bin/python bench/bench_throughput.py                  # ~2-3 min on 2 cores
    .venv/bin/python bench/bench_throughput.py --before /path/to/main --rounds 5
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dispatch import (
    ServerInfo,
    fresh_parent,
    machine_info,
    positive,
    run_floor,
    run_splitkit,
    running_server,
)

from splitkit import Client, plan_parts

SERVER_THREADS = ("splitkit-server", "AnyIO worker thread")


def server_cpu_s(info: ServerInfo) -> float:
    """CPU seconds of the server so far: its process, or (in this process) its threads."""
    if info.pid is not None:
        return info.cpu_s()
    names = {t.native_id: t.name for t in threading.enumerate()}
    return sum(
        t.user_time + t.system_time
        for t in psutil.Process().threads()
        if names.get(t.id, "").startswith(SERVER_THREADS)
    )


@contextmanager
def server_at(mode: str, records: int, before: str | None) -> Iterator[ServerInfo]:
    """The server in ``mode``; ``before``: a child process importing splitkit from there."""
    if mode != "before":
        with running_server(records, mode) as info:
            yield info
        return
    assert before is not None
    with ExitStack() as stack:
        old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = before  # read once, when the child starts
        try:
            info = stack.enter_context(running_server(records, "process"))
        finally:
            os.environ.pop("PYTHONPATH") if old is None else os.environ.update(PYTHONPATH=old)
        yield info


def run_once(
    kind: str, info: ServerInfo, client: Client, parts: int, concurrency: int
) -> tuple[float, float, float]:
    """(wall s, client CPU s, server CPU s) of one run of ``kind`` on a fresh parent."""
    parent_id = fresh_parent(client, info.sheet_id, plan_parts(parts, batch_size=1))
    gc.collect()
    server_from, cpu_from = server_cpu_s(info), time.process_time()
    wall_from = time.perf_counter()
    if kind == "splitkit":
        run_splitkit(info, parent_id, concurrency, parts)
    else:
        run_floor(info, parent_id, 1, concurrency, parts, parse=False)
    wall = time.perf_counter() - wall_from
    server = server_cpu_s(info) - server_from
    client_cpu = time.process_time() - cpu_from - (server if info.pid is None else 0.0)
    return wall, client_cpu, server


def bench(args: argparse.Namespace) -> None:
    modes = ["thread", "process"] + (["before"] if args.before else [])
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    with ExitStack() as stack:  # every server up at once: rounds interleave across them
        servers = {}
        for mode in modes:
            info = stack.enter_context(server_at(mode, args.parts + 10, args.before))
            client = stack.enter_context(
                Client(info.url, info.token, environment_id=info.environment_id)
            )
            servers[mode] = info, client
            for kind in ("splitkit", "floor"):  # warm-up: imports, connections, caches
                run_once(kind, info, client, 20, args.concurrency)
        steps = [(mode, kind) for mode in modes for kind in ("splitkit", "floor")]
        for round_ in range(args.rounds):
            shift = round_ % len(steps)  # rotated, so no step always follows the same one
            said = []
            for mode, kind in steps[shift:] + steps[:shift]:
                info, client = servers[mode]
                result = run_once(kind, info, client, args.parts, args.concurrency)
                results.setdefault((mode, kind), []).append(result)
                said.append(f"{mode} {kind} {result[0]:.1f} s")
            print(f"  round {round_ + 1}/{args.rounds}: " + ", ".join(said), flush=True)
    print(
        f"\n### Throughput: {args.parts:,} parts x 1 record, no-op handler, "
        f"C={args.concurrency}\n\nMedian of {args.rounds} interleaved rounds; "
        "CPU per part of the client (this process, less the server's threads in `thread` "
        "mode) and of the server (its process, or its threads).\n"
    )
    print("| server | client | parts/s | ms/part | client CPU ms/part | server CPU ms/part |")
    print("|---|---|---:|---:|---:|---:|")
    where = {"thread": "in-process (thread)", "process": "own process",
             "before": "own process, `--before`"}  # fmt: skip
    for (mode, kind), rows in results.items():
        wall = statistics.median(r[0] for r in rows)
        client_cpu = statistics.median(r[1] for r in rows)
        server = statistics.median(r[2] for r in rows)
        print(
            f"| {where[mode]} | {kind} | {args.parts / wall:,.0f} | {1000 * wall / args.parts:.2f} "
            f"| {1000 * client_cpu / args.parts:.2f} | {1000 * server / args.parts:.2f} |"
        )


# -- the profile --------------------------------------------------------------------------


@contextmanager
def profiled_threads() -> Iterator[dict[str, list[cProfile.Profile]]]:
    """Every thread started inside runs under its own cProfile, grouped server / client."""
    profiles: dict[str, list[cProfile.Profile]] = {"server": [], "client": []}
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)  # CPU of this thread: idle waits left out
        side = "server" if self.name.startswith(SERVER_THREADS) else "client"
        profiles[side].append(profile)
        profile.runcall(original, self)

    threading.Thread.run = run  # type: ignore[method-assign]
    try:
        yield profiles
    finally:
        threading.Thread.run = original  # type: ignore[method-assign]


def top(profiles: list[cProfile.Profile], parts: int, n: int) -> str:
    stats = pstats.Stats(profiles[0], stream=io.StringIO())
    for profile in profiles[1:]:
        stats.add(profile)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:n]  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    head = f"| own ms/part | calls/part | function (all: {1000 * total / parts:.2f} ms/part) |"
    lines = [head, "|---:|---:|---|"]
    for (path, line, name), (_, calls, own, _, _) in rows:
        short = "/".join(Path(path).parts[-2:]) if path != "~" else ""
        lines.append(
            f"| {1000 * own / parts:.3f} | {calls / parts:.1f} | `{short}:{line} {name}` |"
        )
    return "\n".join(lines)


def profile(args: argparse.Namespace) -> None:
    with ExitStack() as stack:
        profiles = stack.enter_context(profiled_threads())
        info = stack.enter_context(running_server(args.parts + 10, "thread"))
        client = stack.enter_context(
            Client(info.url, info.token, environment_id=info.environment_id)
        )
        parent_id = fresh_parent(client, info.sheet_id, plan_parts(args.parts, batch_size=1))
        run_splitkit(info, parent_id, args.concurrency, args.parts)
    print(
        f"\n### Profile: splitkit `dispatch()`, server in-process, {args.parts:,} parts "
        "(cProfile per thread, timed in thread CPU time; its own overhead inflates every row)\n"
    )
    for side in ("server", "client"):
        print(f"{side.capitalize()} threads, top {args.top} by own time:\n")
        print(top(profiles[side], args.parts, args.top) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--parts", type=positive, default=300, help="parts per run")
    parser.add_argument("--concurrency", type=positive, default=8)
    parser.add_argument("--rounds", type=positive, default=3, help="interleaved rounds")
    parser.add_argument("--top", type=positive, default=12, help="profile rows per side")
    parser.add_argument("--before", help="a checkout whose server runs as a third placement")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    began = time.perf_counter()
    machine_info()
    bench(args)
    if args.profile:
        profile(args)
    print(f"\n({time.perf_counter() - began:.0f} s in all)")


if __name__ == "__main__":
    main()
