"""splitkit against the official ``flatfile`` SDK and against a raw async floor.

Three sections, each printed as a Markdown table (paste into BENCHMARKS.md):

(a) **Dispatch**: ``--parts`` parts of ``--batch`` records each, no-op handler, on one
    ``EmbeddedServer(records=--records)`` (file database). Four contenders, each on a
    parent job of its own, split just before its run (outside the timed region):

    - ``splitkit``: ``dispatch(config, parent_id, noop, concurrency=C, progress=False,
      wait=True)``: ack, records page → DataFrame, handler, complete, per part;
    - ``flatfile SDK``: the obvious sequential loop with the official SDK:
      ``jobs.list(parent_id=..., page_size=...)`` paging, then per part ``jobs.ack``,
      ``records.get(sheet_id, page_number=..., page_size=...)``, ``jobs.complete``. It is
      slow, so by default only the first ``--sdk-parts`` parts are timed and the whole run
      is extrapolated (listing time + per-part time x parts); the table says so;
    - ``floor``: the least a client can do: httpx ``AsyncClient`` on the same
      ``httpx_aiohttp.AiohttpTransport`` splitkit uses, an ``asyncio.Semaphore(C)``, per
      part POST ack, GET the page (bytes, not parsed), POST complete;
    - ``floor + records_frame`` (a reference, ``--no-floor-parse`` leaves it out): the
      floor that also turns each page into a DataFrame with splitkit's parser, the least
      any client that hands its handler a DataFrame can do.

    Every timed run starts from nothing (listing the parts included) and ends when every
    part has been completed on the server. Besides wall time, the table gives CPU time per
    part of the client (this process) and of the server's process: on a noisy machine
    they are steadier than wall time, and they show which side is the bottleneck. Rounds
    are interleaved (``--rounds``, the order rotated each round) so machine drift hits
    every contender alike; medians are reported.
    By default the server runs in a child process (``--server process``) so that the
    clients are measured, not their fight with the server for one GIL; ``--server thread``
    runs it in this process, as a notebook would.

(b) **Records page → DataFrame**: one ``--batch``-record page fetched once as bytes;
    ``splitkit.api.frames.records_frame(raw)`` against the SDK's own parse,
    ``parse_obj_as(GetRecordsResponse, json.loads(raw))``, then a DataFrame of the records'
    values built the obvious way. ``timeit`` with the garbage collector on (as in real
    use), median of ``--parse-repeats``.

(c) **Planning and summary**: ``plan_parts(--plan-total, batch_size=1000)`` and
    ``summarize()`` over a synthetic outcome frame of ``--outcomes`` rows.

Targets: dispatch >= 10x the SDK and within 1.25x of the floor; parse >= 5x the SDK.

    .venv/bin/python bench/bench_dispatch.py                       # the defaults (~10 min)
    .venv/bin/python bench/bench_dispatch.py --records 100000 --parts 100 --rounds 1  # quick
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import numpy as np
import orjson
import pandas as pd
from httpx_aiohttp import AiohttpTransport

from splitkit import Client, Part, dispatch, plan_parts, split_parent, start_parent_job, summarize
from splitkit.api import ClientConfig
from splitkit.api.frames import records_frame
from splitkit.outcomes import OUTCOME_COLUMNS

PACKAGES = (
    "splitkit",
    "flatfile",
    "httpx",
    "httpx-aiohttp",
    "aiohttp",
    "pandas",
    "numpy",
    "orjson",
    "pydantic",
    "fastapi",
    "uvicorn",
)


# -- the server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    url: str
    token: str
    environment_id: str
    sheet_id: str
    pid: int | None = None  # the server's process, when it is not this one

    def cpu_s(self) -> float:
        """CPU seconds used so far by the server's process (NaN when it is this process)."""
        try:
            import psutil
        except ImportError:  # psutil comes with the dev extra
            return float("nan")
        if self.pid is None:
            return float("nan")

        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


def serve(records: int) -> None:
    """Child process: start the server, print its addresses as one JSON line, serve until
    stdin closes (the parent exits or closes it)."""
    from splitkit.server import EmbeddedServer

    with EmbeddedServer(records=records) as server:
        info = {
            "url": server.url,
            "token": server.token,
            "environment_id": server.environment_id,
            "sheet_id": server.sheet_id,
        }
        print(json.dumps(info), flush=True)
        sys.stdin.read()


@contextmanager
def running_server(records: int, mode: str) -> Iterator[ServerInfo]:
    if mode == "thread":
        from splitkit.server import EmbeddedServer

        with EmbeddedServer(records=records) as server:
            assert server.environment_id is not None and server.sheet_id is not None
            yield ServerInfo(server.url, server.token, server.environment_id, server.sheet_id)
        return
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--records", str(records)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the server process ended (exit code {child.wait()})")
        yield ServerInfo(**json.loads(line), pid=child.pid)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def fresh_parent(client: Client, sheet_id: str, plan: pd.DataFrame) -> str:
    parent = start_parent_job(client, sheet_id)
    # The warm-up plans only part of the sheet, on purpose.
    split_parent(client, parent.id, plan, check_counts=False)
    return parent.id


# -- (a) the contenders -------------------------------------------------------------------


def noop(part: Part) -> None:
    return None


def read_records(part: Part) -> None:
    """A no-op that reads its records: the DataFrame parse is paid, as in real handlers."""
    part.records  # noqa: B018 - reading it is the point


async def read_records_async(part: Part) -> None:
    """The same, written `async def`: it runs on the engine's loop, no thread hand-off."""
    part.records  # noqa: B018 - reading it is the point


def run_splitkit(
    info: ServerInfo, parent_id: str, concurrency: int, parts: int, handler: Any = noop
) -> None:
    config = ClientConfig(info.url, info.token, info.environment_id)
    handle = dispatch(
        config, parent_id, handler, concurrency=concurrency, progress=False, wait=True
    )
    outcomes = handle.wait()  # the frame the run ended with, not a new one
    done = int((outcomes["status"] == "completed").sum())
    if done != parts:
        raise RuntimeError(f"splitkit completed {done} of {parts} parts")


@dataclass(frozen=True)
class SdkTiming:
    list_s: float
    per_part_s: float
    per_part_cpu_s: float
    timed_parts: int


def run_sdk(info: ServerInfo, parent_id: str, batch: int, parts: int, limit: int) -> SdkTiming:
    """The official SDK, the obvious way: list the parts, then ack / get / complete each."""
    from flatfile import Flatfile
    from flatfile.jobs import JobAckDetails, JobCompleteDetails, JobOutcome

    client = Flatfile(token=info.token, base_url=info.url)
    page_size = 1_000
    began = time.perf_counter()
    jobs: list[Any] = []
    page = 1
    while True:
        listed = client.jobs.list(parent_id=parent_id, page_size=page_size, page_number=page)
        jobs.extend(listed.data)
        if len(listed.data) < page_size:
            break
        page += 1
    listed_at, cpu_from = time.perf_counter(), time.process_time()
    todo = jobs[:limit] if limit else jobs
    for job in todo:
        client.jobs.ack(job.id, request=JobAckDetails(info="started", progress=0))
        page_number = int((job.part_data or {})["pageNumber"])
        records = client.records.get(info.sheet_id, page_number=page_number, page_size=batch)
        sdk_noop(records)
        client.jobs.complete(
            job.id, request=JobCompleteDetails(outcome=JobOutcome(message="processed"))
        )
    per_part = (time.perf_counter() - listed_at) / len(todo)
    per_part_cpu = (time.process_time() - cpu_from) / len(todo)
    client._client_wrapper.httpx_client.httpx_client.close()
    if len(jobs) != parts:
        raise RuntimeError(f"the SDK listed {len(jobs)} of {parts} parts")
    return SdkTiming(listed_at - began, per_part, per_part_cpu, len(todo))


def sdk_noop(records: Any) -> None:
    return None


async def _floor(
    info: ServerInfo, parent_id: str, batch: int, concurrency: int, parse: bool
) -> int:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    headers = {"Authorization": f"Bearer {info.token}", "X-Disable-Hooks": "true"}
    json_headers = {"Content-Type": "application/json"}
    complete_body = b'{"outcome":{"message":"processed"}}'
    records_path = f"/sheets/{info.sheet_id}/records"
    async with httpx.AsyncClient(
        base_url=info.url, headers=headers, transport=AiohttpTransport(limits=limits)
    ) as http:
        jobs: list[dict[str, Any]] = []
        page, page_size = 1, 1_000
        while True:
            response = await http.get(
                "/jobs", params={"parentId": parent_id, "pageSize": page_size, "pageNumber": page}
            )
            response.raise_for_status()
            listed = orjson.loads(response.content)["data"]
            jobs.extend(listed)
            if len(listed) < page_size:
                break
            page += 1
        semaphore = asyncio.Semaphore(concurrency)

        async def one(job: dict[str, Any]) -> None:
            async with semaphore:
                path = f"/jobs/{job['id']}"
                (await http.post(f"{path}/ack")).raise_for_status()
                params = {"pageNumber": job["partData"]["pageNumber"], "pageSize": batch}
                response = await http.get(records_path, params=params)
                response.raise_for_status()
                if parse:
                    records_frame(response.content)
                response = await http.post(
                    f"{path}/complete", content=complete_body, headers=json_headers
                )
                response.raise_for_status()

        await asyncio.gather(*(one(job) for job in jobs))
        return len(jobs)


def run_floor(
    info: ServerInfo, parent_id: str, batch: int, concurrency: int, parts: int, parse: bool
) -> None:
    done = asyncio.run(_floor(info, parent_id, batch, concurrency, parse))
    if done != parts:
        raise RuntimeError(f"the floor ran {done} of {parts} parts")


SDK = "flatfile SDK, sequential"
SPLITKIT = "splitkit `dispatch()`"
FLOOR = "floor: raw httpx + aiohttp"
FLOOR_PARSE = "floor + `records_frame` (ref.)"
SPLITKIT_READ = "splitkit, handler reads `part.records`"
SPLITKIT_READ_ASYNC = "splitkit, `async def` handler reads `part.records`"
SHORT = {
    SDK: "sdk",
    SPLITKIT: "splitkit",
    SPLITKIT_READ: "splitkit+read",
    SPLITKIT_READ_ASYNC: "splitkit+read async",
    FLOOR: "floor",
    FLOOR_PARSE: "floor+parse",
}


@dataclass
class Series:
    """One contender at one concurrency: a wall time and a client CPU time per round."""

    name: str
    concurrency: int | None
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    server_cpus: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)

    @property
    def server_cpu(self) -> float:
        return statistics.median(self.server_cpus)


def bench_dispatch(args: argparse.Namespace, info: ServerInfo) -> tuple[list[Series], str]:
    plan = plan_parts(args.parts * args.batch, batch_size=args.batch)
    kinds = [SPLITKIT, FLOOR]
    if args.floor_parse:
        kinds += [SPLITKIT_READ, SPLITKIT_READ_ASYNC, FLOOR_PARSE]
    series = {(SDK, None): Series(SDK, None)}
    for c in args.concurrency:
        for kind in kinds:
            series[kind, c] = Series(kind, c)
    sdk_timings: list[SdkTiming] = []

    def run(kind: str, c: int | None, parent_id: str, parts: int, sdk_limit: int) -> None:
        if kind == SDK:
            sdk_timings.append(run_sdk(info, parent_id, args.batch, parts, sdk_limit))
            return
        assert c is not None
        if kind == SPLITKIT:
            run_splitkit(info, parent_id, c, parts)
        elif kind == SPLITKIT_READ:
            run_splitkit(info, parent_id, c, parts, handler=read_records)
        elif kind == SPLITKIT_READ_ASYNC:
            run_splitkit(info, parent_id, c, parts, handler=read_records_async)
        else:
            run_floor(info, parent_id, args.batch, c, parts, parse=kind == FLOOR_PARSE)

    with Client(info.url, info.token, environment_id=info.environment_id) as client:
        # Warm-up, not counted: imports, first connections, the server's caches.
        warm = plan_parts(min(args.parts, 20) * args.batch, batch_size=args.batch)
        for kind, c in series:
            run(kind, c or 8, fresh_parent(client, info.sheet_id, warm), len(warm), 3)
        sdk_timings.clear()

        steps = list(series)
        for round_ in range(args.rounds):
            # Rotate the order each round, so no contender always follows the same other one.
            order = steps[round_ % len(steps) :] + steps[: round_ % len(steps)]
            said = []
            for kind, c in order:
                parent_id = fresh_parent(client, info.sheet_id, plan)
                gc.collect()
                server_from = info.cpu_s()
                wall_from, cpu_from = time.perf_counter(), time.process_time()
                run(kind, c, parent_id, args.parts, args.sdk_parts)
                wall, cpu = time.perf_counter() - wall_from, time.process_time() - cpu_from
                server_cpu = info.cpu_s() - server_from
                if kind == SDK:  # per part, extrapolated to every part when a subset was timed
                    timing = sdk_timings[-1]
                    wall = timing.list_s + timing.per_part_s * args.parts
                    cpu = timing.per_part_cpu_s * args.parts
                    server_cpu *= args.parts / timing.timed_parts
                series[kind, c].walls.append(wall)
                series[kind, c].cpus.append(cpu)
                series[kind, c].server_cpus.append(server_cpu)
                said.append(f"{SHORT[kind]}{'' if c is None else f' C={c}'} {wall:.2f} s")
            print(f"  round {round_ + 1}/{args.rounds}: " + ", ".join(said), flush=True)

    note = ""
    timed = sdk_timings[0].timed_parts
    if timed < args.parts:
        per_part = statistics.median(t.per_part_s for t in sdk_timings)
        listing = statistics.median(t.list_s for t in sdk_timings)
        note = (
            f"SDK row extrapolated: the first {timed} parts of each round were timed "
            f"({per_part * 1000:,.0f} ms a part, median) and the whole run is "
            f"listing ({listing:.2f} s) + {args.parts:,} x that."
        )
    return list(series.values()), note


def report_dispatch(args: argparse.Namespace, series: list[Series], note: str) -> None:
    where = "a child process" if args.server == "process" else "this process (a thread)"
    cpu_note = (
        "CPU time of the bench process (the client) and of the server's process"
        if args.server == "process"
        else "CPU time of this process, server included (same process)"
    )
    print(
        f"\n### (a) Dispatch: {args.parts:,} parts x {args.batch:,} records, no-op handler\n\n"
        f"`EmbeddedServer(records={args.records:_})` (file DB) in {where}. Median of "
        f"{args.rounds} interleaved rounds, each run on a freshly split parent. "
        f"CPU ms/part: {cpu_note}.\n"
    )
    sdk = series[0]
    floors = {s.concurrency: s for s in series if s.name == FLOOR}
    parse_floors = {s.concurrency: s for s in series if s.name == FLOOR_PARSE}
    print(
        "| client | C | median s | min s | max s | parts/s | client CPU ms/part "
        "| server CPU ms/part | vs SDK | / floor |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in series:
        floor = floors.get(s.concurrency)
        if s.name in (SPLITKIT_READ, SPLITKIT_READ_ASYNC) and s.concurrency in parse_floors:
            floor = parse_floors[s.concurrency]  # the realistic rows: against floor + parse
        vs_sdk = "1x" if s is sdk else f"{sdk.median / s.median:,.1f}x faster"
        vs_floor = "-" if floor is None else f"{s.median / floor.median:.2f}x"
        server_cpu = "-" if args.server == "thread" else f"{1000 * s.server_cpu / args.parts:,.2f}"
        print(
            f"| {s.name} | {s.concurrency or 1} | {s.median:,.2f} | {min(s.walls):,.2f} "
            f"| {max(s.walls):,.2f} | {args.parts / s.median:,.1f} "
            f"| {1000 * s.cpu / args.parts:,.2f} | {server_cpu} | {vs_sdk} | {vs_floor} |"
        )
    print()
    if note:
        print(note)
    if any(s.name == FLOOR_PARSE for s in series):
        print(
            "The reference row is the floor plus `records_frame()` on each page: the least a "
            "client that hands its handler a DataFrame can do. The rows whose handler reads "
            "`part.records` give their ratio to that reference (target <= 1.15x), the others "
            "to the floor."
        )
    splitkits = [s for s in series if s.name == SPLITKIT]
    best = min(splitkits, key=lambda s: s.median)
    floor = floors[best.concurrency]
    speedup, over_floor = sdk.median / best.median, best.median / floor.median
    print(
        f"\nBest splitkit concurrency: C={best.concurrency}. splitkit vs SDK: "
        f"{speedup:,.1f}x faster (target >= 10x: {'met' if speedup >= 10 else 'MISSED'}); "
        f"splitkit / floor: {over_floor:.2f}x "
        f"(target <= 1.25x: {'met' if over_floor <= 1.25 else 'MISSED'})."
    )


# -- (b) a page → DataFrame -----------------------------------------------------------------


def sdk_frame(raw: bytes) -> pd.DataFrame:
    """The SDK's own parse of a records page, then a DataFrame the obvious way."""
    from flatfile.core.pydantic_utilities import parse_obj_as
    from flatfile.records import GetRecordsResponse

    response = parse_obj_as(GetRecordsResponse, json.loads(raw))
    rows = [
        {
            "_id": record.id,
            "_valid": record.valid,
            **{key: cell.value for key, cell in record.values.items()},
        }
        for record in response.data.records
    ]
    return pd.DataFrame(rows)


def median_call_s(call: Callable[[], Any], repeats: int, budget_s: float = 0.2) -> float:
    """Median seconds per call over `repeats` timeit runs, GC on as in real use."""
    timer = timeit.Timer(call, setup="gc.enable()", globals={"gc": gc})
    number = max(1, int(budget_s / max(timer.timeit(1), 1e-9) / repeats) or 1)
    number = max(1, min(number, 1_000))
    return statistics.median(t / number for t in timer.repeat(repeats, number))


def loads(raw: bytes) -> Any:
    """orjson.loads with the cyclic GC paused, as records_frame decodes."""
    gc.disable()
    try:
        return orjson.loads(raw)
    finally:
        gc.enable()


def untyped(raw: bytes) -> Any:
    """msgspec's generic decode (dicts and lists, as orjson makes), GC paused."""
    return paused(msgspec.json.decode, raw)


def paused(call: Callable[[bytes], Any], raw: bytes) -> Any:
    gc.disable()
    try:
        return call(raw)
    finally:
        gc.enable()


def interleaved_medians(
    calls: Sequence[tuple[str, Callable[[], Any]]], repeats: int, budget_s: float = 0.1
) -> list[tuple[str, float]]:
    """Median seconds per call of each, timed in interleaved rounds (GC on, as in real use):
    round r times every call once, in an order rotated each round."""
    timers = [timeit.Timer(call, setup="gc.enable()", globals={"gc": gc}) for _, call in calls]
    numbers = [
        max(1, min(1_000, int(budget_s / max(timer.timeit(1), 1e-9) / repeats) or 1))
        for timer in timers
    ]
    samples: list[list[float]] = [[] for _ in calls]
    for round_ in range(repeats):
        for k in range(len(calls)):
            i = (k + round_) % len(calls)
            samples[i].append(timers[i].timeit(numbers[i]) / numbers[i])
    return [(name, statistics.median(s)) for (name, _), s in zip(calls, samples, strict=True)]


def bench_parse(args: argparse.Namespace, info: ServerInfo) -> None:
    # Here, not at the top: bench_throughput --before runs this module's server helper
    # with an older splitkit that lacks these.
    from splitkit.api.frames import reference_records_frame
    from splitkit.api.typed_frames import _by_any_cells, _by_layout, typed_records_frame

    response = httpx.get(
        f"{info.url}/sheets/{info.sheet_id}/records",
        params={"pageNumber": 1, "pageSize": args.batch},
        headers={"Authorization": f"Bearer {info.token}"},
    )
    response.raise_for_status()
    raw = response.content
    ours, theirs = records_frame(raw), sdk_frame(raw)
    if ours.shape != theirs.shape or list(ours["_id"]) != list(theirs["_id"]):
        raise RuntimeError(f"the two frames differ: {ours.shape} vs {theirs.shape}")
    if typed_records_frame(raw) is None:
        path = "reference path (the typed path stepped aside)"
    elif _by_layout(raw) is not None:
        path = "msgspec, layout decoder"
    else:
        path = "msgspec, dict-of-cells decoder"
    pd.testing.assert_frame_equal(ours, reference_records_frame(raw))

    from flatfile.core.pydantic_utilities import parse_obj_as
    from flatfile.records import GetRecordsResponse

    local = [
        ("`orjson.loads(raw)` alone, GC paused as `records_frame` does", lambda: loads(raw)),
        (f"splitkit `records_frame(raw)` ({path})", lambda: records_frame(raw)),
        ("splitkit reference path (orjson + lists)", lambda: reference_records_frame(raw)),
        ("`msgspec.json.decode(raw)` alone (untyped), GC paused", lambda: untyped(raw)),
        ("typed path, columns only: layout decoder", lambda: paused(_by_layout, raw)),
        ("typed path, columns only: dict-of-cells decoder", lambda: paused(_by_any_cells, raw)),
    ]
    sdk = [
        ("SDK `parse_obj_as` + `pd.DataFrame(rows)`", lambda: sdk_frame(raw)),
        (
            "SDK `parse_obj_as(GetRecordsResponse, json.loads(raw))` alone",
            lambda: parse_obj_as(GetRecordsResponse, json.loads(raw)),
        ),
    ]
    results = interleaved_medians(local, args.parse_repeats)
    # The SDK's parse takes ~1 s a page: timed apart, a few runs, not interleaved with ms.
    results += [(name, median_call_s(call, min(args.parse_repeats, 5))) for name, call in sdk]
    base, ours_s = results[0][1], results[1][1]
    print(
        f"\n### (b) A {len(ours):,}-record page ({len(raw) / 1024:,.0f} KiB of JSON) → DataFrame"
        f"\n\nMedian of {args.parse_repeats} interleaved timeit rounds (the SDK's: "
        f"{min(args.parse_repeats, 5)} rounds apart), GC enabled.\n"
    )
    print("| parse | median ms | records/s | / orjson.loads | vs splitkit |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in results:
        print(
            f"| {name} | {seconds * 1000:.2f} | {len(ours) / seconds:,.0f} "
            f"| {seconds / base:.2f}x | {seconds / ours_s:.2f}x |"
        )
    speedup = results[len(local)][1] / ours_s  # the SDK parse + frame
    over_loads = ours_s / base
    print(
        f"\nsplitkit vs SDK: {speedup:.1f}x faster (target >= 5x: "
        f"{'met' if speedup >= 5 else 'MISSED'}); `records_frame` / `orjson.loads` alone: "
        f"{over_loads:.2f}x (target <= 1x: {'met' if over_loads <= 1 else 'MISSED'})."
    )
    bench_page_shapes(args, len(ours))


def synthetic_page(records: int, stray_at: int | None = None) -> bytes:
    """A page of mixed columns (strings, a date, ints, floats, bools, a sparse string); with
    `stray_at`, that record carries one key the first record lacks (off the layout)."""
    rows = []
    for i in range(records):
        values = {
            "name": f"n{i}",
            "signup": f"2022-01-{1 + i % 28:02d}",
            "n": i,
            "x": i / 3,
            "ok": i % 2 == 0,
            "note": None if i % 5 else "x",
        }
        if i == stray_at:
            values["extra"] = "late"
        cells = {k: {"value": v, "valid": True, "messages": []} for k, v in values.items()}
        rows.append({"id": f"us_rc_{i:016x}", "values": cells, "valid": i % 3 > 0})
    return orjson.dumps({"data": {"success": True, "records": rows}})


def bench_page_shapes(args: argparse.Namespace, records: int) -> None:
    """records_frame against orjson.loads alone on pages of other shapes than the sample's."""
    # Here, not at the top: bench_throughput --before runs this module's server helper
    # with an older splitkit that lacks these.
    from splitkit.api.frames import reference_records_frame
    from splitkit.api.typed_frames import _by_layout

    print(
        f"\nOther page shapes ({records:,} synthetic records), median of "
        f"{args.parse_repeats} interleaved rounds:\n"
    )
    print("| page | `orjson.loads` ms | `records_frame` ms | / orjson.loads | path |")
    print("|---|---:|---:|---:|---|")
    shapes = [
        ("mixed columns, one layout", synthetic_page(records)),
        ("mixed columns, one record off the layout", synthetic_page(records, records // 2)),
    ]
    for name, raw in shapes:
        pd.testing.assert_frame_equal(records_frame(raw), reference_records_frame(raw))
        path = "layout decoder" if _by_layout(raw) is not None else "dict-of-cells decoder"
        (_, base), (_, ours) = interleaved_medians(
            [("loads", lambda raw=raw: loads(raw)), ("ours", lambda raw=raw: records_frame(raw))],
            args.parse_repeats,
        )
        print(f"| {name} | {base * 1000:.2f} | {ours * 1000:.2f} | {ours / base:.2f}x | {path} |")


# -- (c) plan and summary ---------------------------------------------------------------------


def outcome_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic outcome frame: 97 % completed, 2 % failed, 1 % canceled."""
    rng = np.random.default_rng(seed)
    status = rng.choice(["completed", "failed", "canceled"], size=rows, p=[0.97, 0.02, 0.01])
    started = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.uniform(0, 3600, rows)), unit="s"
    )
    duration = rng.gamma(2.0, 0.05, rows)
    failed = status == "failed"
    frame = pd.DataFrame(
        {
            "part": np.arange(rows, dtype=np.int64),
            "job_id": [f"us_jb_{i:016x}" for i in range(rows)],
            "status": status,
            "records": np.full(rows, 1_000, dtype=np.int64),
            "attempts": np.where(failed, 3, 1).astype(np.int64),
            "started_at": started.astype("datetime64[us, UTC]"),
            "finished_at": (started + pd.to_timedelta(duration, unit="s")).astype(
                "datetime64[us, UTC]"
            ),
            "duration_s": duration,
            "error": ["ValueError: bad row" if f else None for f in failed],
            "message": ["1000 records" if s == "completed" else None for s in status],
        }
    )
    return frame[OUTCOME_COLUMNS]


def bench_plan_summary(args: argparse.Namespace) -> None:
    outcomes = outcome_frame(args.outcomes)
    plan = plan_parts(args.plan_total, batch_size=1_000)
    summary = summarize(outcomes)
    assert int(summary["total"].iloc[0]) == args.outcomes
    rows = [
        (
            f"`plan_parts({args.plan_total:_}, batch_size=1000)` → {len(plan):,} parts",
            median_call_s(lambda: plan_parts(args.plan_total, batch_size=1_000), args.repeats_c),
        ),
        (
            f"`summarize(outcomes)`, {args.outcomes:,} outcome rows",
            median_call_s(lambda: summarize(outcomes), args.repeats_c),
        ),
    ]
    print(f"\n### (c) Planning and summary\n\nMedian of {args.repeats_c} timeit runs.\n")
    print("| call | median ms | rows/s |")
    print("|---|---:|---:|")
    for (name, seconds), n in zip(rows, (len(plan), args.outcomes), strict=True):
        print(f"| {name} | {seconds * 1000:.2f} | {n / seconds:,.0f} |")


# -- main ------------------------------------------------------------------------------------


def machine_info() -> None:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    print("### Machine\n")
    print(f"- nproc: {os.cpu_count()} ({platform.machine()}, {platform.system()} "
          f"{platform.release()})")  # fmt: skip
    print(f"- Python {platform.python_version()} ({platform.python_implementation()})")
    print(f"- {', '.join(versions)}")


def positive(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--records", type=positive, default=1_000_000, help="sheet size")
    parser.add_argument("--parts", type=positive, default=1_000, help="parts per dispatch")
    parser.add_argument("--batch", type=positive, default=1_000, help="records per part")
    parser.add_argument("--concurrency", type=positive, nargs="+", default=[8, 16])
    parser.add_argument("--rounds", type=positive, default=3, help="interleaved rounds in (a)")
    parser.add_argument(
        "--sdk-parts",
        type=int,
        default=20,
        help="parts the SDK loop times per round, extrapolated to --parts (0: all)",
    )
    parser.add_argument("--server", choices=("process", "thread"), default="process")
    parser.add_argument(
        "--no-floor-parse",
        dest="floor_parse",
        action="store_false",
        help="leave out the reference row: the floor plus records_frame() per page",
    )
    parser.add_argument("--parse-repeats", type=positive, default=50, help="timeit runs in (b)")
    parser.add_argument("--plan-total", type=positive, default=100_000_000)
    parser.add_argument("--outcomes", type=positive, default=100_000)
    parser.add_argument("--repeats-c", type=positive, default=30, help="timeit runs in (c)")
    parser.add_argument(
        "--sections", default="abc", help="which sections to run, e.g. 'bc' to skip dispatch"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return args
    if args.parts * args.batch > args.records:
        parser.error(f"--parts x --batch ({args.parts * args.batch:,}) exceeds --records")
    if args.sdk_parts < 0:
        parser.error("--sdk-parts must be 0 (all) or positive")
    if args.sdk_parts > args.parts:
        args.sdk_parts = 0
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve:
        serve(args.records)
        return
    began = time.perf_counter()
    machine_info()
    if "a" in args.sections or "b" in args.sections:
        print(f"\n(starting the server with {args.records:,} records...)", flush=True)
        with running_server(args.records, args.server) as info:
            print(f"(server up after {time.perf_counter() - began:.0f} s)", flush=True)
            if "a" in args.sections:
                report_dispatch(args, *bench_dispatch(args, info))
            if "b" in args.sections:
                bench_parse(args, info)
    if "c" in args.sections:
        bench_plan_summary(args)
    print(f"\n({time.perf_counter() - began:.0f} s in all)")


if __name__ == "__main__":
    main()
