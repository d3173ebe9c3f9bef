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
``--before-client SRC`` adds two clients in child processes against the server in its
own process: splitkit from ``SRC`` (before) and from this checkout (after), each timing
its own ``dispatch()`` after a warm-up one, so the client's before and after are side
by side in one run.

A ``dispatch()`` has a fixed cost per run besides its per-part cost: listing the parts,
taking the parent's claim (which waits 1 s to verify it holds: a correctness element,
kept), the run's thread and loop, the end. The tables give the end-to-end figure and the
steady state apart: steady parts/s is the parts over the span from the first part's
start to the last part's end (from the outcome frame); fixed s is the rest of the wall
time.

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
import json
import os
import pstats
import statistics
import subprocess
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
    noop,
    positive,
    run_floor,
    running_server,
)

from splitkit import Client, dispatch, plan_parts
from splitkit.api import ClientConfig

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


Result = tuple[float, float, float, float]  # wall s, client CPU s, server CPU s, span s


def run_splitkit(info: ServerInfo, parent_id: str, concurrency: int, parts: int) -> float:
    """``dispatch()`` of every part; returns the span from the first start to the last end."""
    config = ClientConfig(info.url, info.token, info.environment_id)
    handle = dispatch(config, parent_id, noop, concurrency=concurrency, progress=False)
    outcomes = handle.wait()
    done = int((outcomes["status"] == "completed").sum())
    if done != parts:
        raise RuntimeError(f"splitkit completed {done} of {parts} parts")
    span = outcomes["finished_at"].max() - outcomes["started_at"].min()
    return float(span.total_seconds())


def run_once(kind: str, info: ServerInfo, client: Client, parts: int, concurrency: int) -> Result:
    """(wall s, client CPU s, server CPU s, span s) of one run of ``kind`` on a fresh parent;
    the span (first part's start to last part's end) is NaN for the floor."""
    parent_id = fresh_parent(client, info.sheet_id, plan_parts(parts, batch_size=1))
    if kind in CHILD_KINDS:  # the server's CPU would include the child's warm-up: not given
        warm = fresh_parent(client, info.sheet_id, plan_parts(20, batch_size=1))
        wall, client_cpu, span = in_child(CHILD_KINDS[kind], info, warm, parent_id, concurrency)
        return wall, client_cpu, float("nan"), span
    gc.collect()
    server_from, cpu_from = server_cpu_s(info), time.process_time()
    wall_from = time.perf_counter()
    span = float("nan")
    if kind == "splitkit":
        span = run_splitkit(info, parent_id, concurrency, parts)
    else:
        run_floor(info, parent_id, 1, concurrency, parts, parse=False)
    wall = time.perf_counter() - wall_from
    server = server_cpu_s(info) - server_from
    client_cpu = time.process_time() - cpu_from - (server if info.pid is None else 0.0)
    return wall, client_cpu, server, span


#: Child-process clients (``--before-client``): kind → the checkout splitkit comes from.
CHILD_KINDS: dict[str, str] = {}


def in_child(
    source: str, info: ServerInfo, warm: str, parent_id: str, concurrency: int
) -> tuple[float, float, float]:
    """A ``dispatch()`` in a child process importing splitkit from ``source``: its own
    (wall s, CPU s, span s), timed after a warm-up dispatch of ``warm``."""
    task = {"info": info.__dict__, "warm": warm, "parent": parent_id, "c": concurrency}
    env = {**os.environ, "PYTHONPATH": source}
    answer = subprocess.run(
        [sys.executable, __file__, "--client-run", json.dumps(task)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu, span = json.loads(answer.stdout.strip().splitlines()[-1])
    return wall, cpu, span


def client_run(task_json: str) -> None:
    """Child: warm up, then time one ``dispatch()``; prints [wall, cpu, span] as JSON."""
    task = json.loads(task_json)
    info = ServerInfo(**task["info"])
    config = ClientConfig(info.url, info.token, info.environment_id)
    dispatch(config, task["warm"], noop, concurrency=task["c"], progress=False).wait()
    gc.collect()
    cpu_from, wall_from = time.process_time(), time.perf_counter()
    outcomes = dispatch(config, task["parent"], noop, concurrency=task["c"], progress=False).wait()
    wall, cpu = time.perf_counter() - wall_from, time.process_time() - cpu_from
    if not (outcomes["status"] == "completed").all():
        raise RuntimeError("the child's dispatch left parts open")
    span = (outcomes["finished_at"].max() - outcomes["started_at"].min()).total_seconds()
    print(json.dumps([wall, cpu, span]))


def bench(args: argparse.Namespace) -> None:
    modes = ["thread", "process"] + (["before"] if args.before else [])
    results: dict[tuple[str, str], list[Result]] = {}
    if args.before_client:
        here = str(Path(__file__).resolve().parents[1])
        CHILD_KINDS.update({"splitkit, before (child)": args.before_client,
                            "splitkit, after (child)": here})  # fmt: skip
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
        steps += [("process", kind) for kind in CHILD_KINDS]
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
    print(
        "| server | client | parts/s | ms/part | client CPU ms/part | server CPU ms/part "
        "| steady parts/s | fixed s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    where = {"thread": "in-process (thread)", "process": "own process",
             "before": "own process, `--before`"}  # fmt: skip
    for (mode, kind), rows in results.items():
        wall = statistics.median(r[0] for r in rows)
        client_cpu = statistics.median(r[1] for r in rows)
        server = statistics.median(r[2] for r in rows)
        span = statistics.median(r[3] for r in rows)
        steady = "" if span != span else f"{args.parts / span:,.0f}"  # NaN: the floor
        fixed = "" if span != span else f"{statistics.median(r[0] - r[3] for r in rows):.2f}"
        print(
            f"| {where[mode]} | {kind} | {args.parts / wall:,.0f} | {1000 * wall / args.parts:.2f} "
            f"| {1000 * client_cpu / args.parts:.2f} | {ms(server, args.parts)} "
            f"| {steady} | {fixed} |"
        )


def ms(seconds: float, parts: int) -> str:
    return "" if seconds != seconds else f"{1000 * seconds / parts:.2f}"  # NaN: not measured


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
    # An idle handler thread's wait for its next call (LoopExecutor) shows up in thread
    # time under cProfile although it burns no CPU (psutil says so): left out.
    items = [kv for kv in stats.stats.items() if "SimpleQueue" not in kv[0][2]]  # type: ignore[attr-defined]
    rows = sorted(items, key=lambda kv: -kv[1][2])[:n]
    total = sum(v[2] for _, v in items)
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
    parser.add_argument(
        "--before-client", help="a checkout whose client runs beside this one (child processes)"
    )
    parser.add_argument("--client-run", help=argparse.SUPPRESS)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.client_run:
        client_run(args.client_run)
        return
    began = time.perf_counter()
    machine_info()
    bench(args)
    if args.profile:
        profile(args)
    print(f"\n({time.perf_counter() - began:.0f} s in all)")


if __name__ == "__main__":
    main()
