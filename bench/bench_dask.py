"""Parts on Dask (issue 12): CPU-bound speedup with worker processes, and the bytes the
coordinator receives per part.

1. A CPU-bound handler (about 50 ms of pure Python per part, calibrated here) on a local
   cluster of 1 worker process and one of 2 (`DaskExecutor(n_workers=...)`), one part per
   Dask task and four (`parts_per_task=4`), rounds interleaved, each run on a cluster of
   its own; wall time of `dispatch()`, the parts' span, the CPU per part of the
   coordinator, the workers and the server (psutil), medians, and the speedups.
2. The bytes the coordinator (this process) receives per part, at batch 100 and 5,000:
   HTTP response bytes (counted by the transport) and Dask message bytes (every frame
   this process's Dask comms read), on a cluster of the dask CLI (`dask scheduler` and two
   `dask worker` processes: no scheduler in this process), and, for contrast, the default
   LoopExecutor (which fetches every page itself).

The server runs in its own process (`bench_dispatch.running_server`), so its work is not
this process's. Prints Markdown tables.

    .venv/bin/python bench/bench_dask.py [--rounds 3] [--parts 96] [--only speedup|bytes]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from bench_dispatch import ServerInfo, fresh_parent, running_server

from splitkit import Client, DaskExecutor, Part, dispatch, plan_parts

RECORDS = 20_000


def burn(loops: int, part: Part) -> str:
    """Pure Python, no I/O: about 50 ms at the calibrated `loops`."""
    total = 0
    for i in range(loops):
        total += i * i % 7
    return f"part {part.index}: {total}"


def calibrate(target_s: float = 0.05) -> int:
    loops = 100_000
    began = time.perf_counter()
    burn(loops, Part("j", "p", 0, {}, b""))
    took = time.perf_counter() - began
    return int(loops * target_s / took)


@dataclass
class Server:
    """The server in its own process (`bench_dispatch.running_server`) and a client of it."""

    info: ServerInfo
    client: Client

    def parent(self, batch: int, records: int) -> str:
        plan = plan_parts(records, batch_size=batch)
        return fresh_parent(self.client, self.info.sheet_id, plan)


class CountingTransport(httpx.AsyncBaseTransport):
    """The coordinator's HTTP responses, counted in bytes as received."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.received = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = b"".join([chunk async for chunk in response.aiter_raw()])
        self.received += len(body)
        return httpx.Response(
            response.status_code, headers=response.headers, content=body,
            extensions=response.extensions,
        )  # fmt: skip

    async def aclose(self) -> None:
        await self.inner.aclose()


class DaskBytes:
    """Bytes of the frames every Dask comm of this process reads (its TCP reads)."""

    def __init__(self) -> None:
        import distributed.comm.tcp as tcp

        self.received = 0
        inner = tcp.read_bytes_rw

        async def counted(stream: Any, n: int) -> Any:
            self.received += n
            return await inner(stream, n)

        tcp.read_bytes_rw = counted


@contextmanager
def cli_cluster(workers: int) -> Iterator[str]:
    """`dask scheduler` and `workers` x `dask worker`, on loopback; yields the address."""
    dask = str(Path(sys.executable).parent / "dask")
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp, "scheduler.json")
        cmd = [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
        procs = [subprocess.Popen([*cmd, "--scheduler-file", str(file)],
                                  stderr=subprocess.DEVNULL)]  # fmt: skip
        try:
            while not file.exists():
                time.sleep(0.1)
            time.sleep(0.2)
            address = json.loads(file.read_text())["address"]
            worker = [dask, "worker", address, "--nthreads", "1", "--no-nanny", "--host",
                      "127.0.0.1", "--no-dashboard"]  # fmt: skip
            for _ in range(workers):
                procs.append(subprocess.Popen(worker, stderr=subprocess.DEVNULL))
            yield address
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)


@dataclass(frozen=True)
class Variant:
    workers: int
    parts_per_task: int

    @property
    def concurrency(self) -> int:
        # Two tasks queued per worker: one runs while the coordinator ends the other.
        return 2 * self.workers * max(2, self.parts_per_task)


@dataclass
class Measure:
    wall_s: float
    span_s: float
    cpu_ms: dict[str, float]  # per part: coordinator, workers, server


class CpuMeter:
    """CPU seconds of this process (the coordinator: dispatch, Dask client, local
    scheduler, nannies), of its other children (the Dask worker processes) and of the
    server process, read with psutil."""

    def __init__(self, server_pid: int) -> None:
        import psutil

        self.me = psutil.Process()
        self.server = psutil.Process(server_pid)
        self.error = psutil.Error

    def read(self) -> dict[str, float]:
        def cpu(process: Any) -> float:
            times = process.cpu_times()
            return float(times.user + times.system)

        workers = 0.0
        for child in self.me.children(recursive=True):
            if child.pid != self.server.pid:
                with contextlib.suppress(self.error):  # gone meanwhile
                    workers += cpu(child)
        return {"coordinator": cpu(self.me), "workers": workers, "server": cpu(self.server)}


def measure(server: Server, meter: CpuMeter, variant: Variant, handler: Any, parts: int) -> Measure:
    """One run on a local cluster of its own: no other cluster's idle processes share the
    2 cores (their heartbeats and monitors cost ~2-3 ms of CPU per part each)."""
    with DaskExecutor(n_workers=variant.workers, parts_per_task=variant.parts_per_task) as ex:
        # Warm: workers import the handler's module, the access plugin is registered.
        dispatch(server.client, server.parent(100, 400), handler, executor=ex,
                 concurrency=variant.concurrency, progress=False, wait=True)  # fmt: skip
        parent = server.parent(RECORDS // parts, RECORDS)
        before = meter.read()
        began = time.perf_counter()
        handle = dispatch(server.client, parent, handler, executor=ex,
                          concurrency=variant.concurrency, progress=False, wait=True)  # fmt: skip
        wall = time.perf_counter() - began
        after = meter.read()
    outcomes = handle.outcomes
    assert set(outcomes["status"]) == {"completed"}
    span = (outcomes["finished_at"].max() - outcomes["started_at"].min()).total_seconds()
    cpu = {k: (after[k] - before[k]) * 1000 / len(outcomes) for k in after}
    return Measure(wall, span, cpu)


def speedup(server: Server, rounds: int, parts: int) -> None:
    loops = calibrate()
    handler = functools.partial(burn, loops)
    variants = [Variant(w, k) for k in (1, 4) for w in (1, 2)]
    assert server.info.pid is not None  # its own process
    meter = CpuMeter(server.info.pid)
    runs: dict[Variant, list[Measure]] = {v: [] for v in variants}
    for _ in range(rounds):  # interleaved: a slow spell of the machine hits every variant
        for variant in variants:
            runs[variant].append(measure(server, meter, variant, handler, parts))

    def median(variant: Variant, what: str) -> float:
        if what in ("wall_s", "span_s"):
            return statistics.median(getattr(m, what) for m in runs[variant])
        return statistics.median(m.cpu_ms[what] for m in runs[variant])

    print(f"### CPU-bound handler: {parts} parts of ~50 ms pure Python, {rounds} rounds\n")
    print("Wall: the whole `dispatch()` (listing, the claim's 1 s verify, start and end")
    print("included). Parts: from the first part's start to the last part's end. Speedups:")
    print("2 workers against 1 at the same parts per task. CPU: ms per part, medians;")
    print("floor: the parts' CPU spread over 2 cores (no run on 2 cores can be faster).\n")
    print(
        "| workers | parts/task | concurrency | wall s | wall speedup | parts s | parts speedup"
        " | CPU coordinator | CPU workers | CPU server | 2-core floor s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v in variants:
        one = Variant(1, v.parts_per_task)
        wall, span = median(v, "wall_s"), median(v, "span_s")
        cpu = {k: median(v, k) for k in ("coordinator", "workers", "server")}
        floor = parts * sum(cpu.values()) / 1000 / 2
        print(
            f"| {v.workers} | {v.parts_per_task} | {v.concurrency} | {wall:.2f} "
            f"| {median(one, 'wall_s') / wall:.2f}x | {span:.2f} "
            f"| {median(one, 'span_s') / span:.2f}x | {cpu['coordinator']:.1f} "
            f"| {cpu['workers']:.1f} | {cpu['server']:.1f} | {floor:.2f} |"
        )
    print()


def noop(part: Part) -> None:
    # Not bench_dispatch.noop: the dask CLI workers cannot import bench/ modules, and a
    # function of this script (__main__) travels to them by value.
    return None


def coordinator_bytes(server: Server) -> None:
    print("### Bytes the coordinator receives per part\n")
    print("| executor | batch | parts | HTTP bytes/part | Dask bytes/part | total/part |")
    print("|---|---:|---:|---:|---:|---:|")
    rows: list[tuple[str, int, int, float, float]] = []
    counter = DaskBytes()
    with cli_cluster(2) as address, DaskExecutor(address) as dask:
        dask.client.wait_for_workers(2, timeout=120)
        executors: dict[str, Any] = {"DaskExecutor": dask, "LoopExecutor": None}
        for name, executor in executors.items():
            for batch in (100, 5_000):
                parent = server.parent(batch, RECORDS)
                transport = CountingTransport()
                before = counter.received
                # claim=False: the claim's few requests are per run, not per part.
                handle = dispatch(server.client, parent, noop, executor=executor,
                                  transport=transport, progress=False, wait=True,
                                  claim=False)  # fmt: skip
                n = len(handle.outcomes)
                rows.append((name, batch, n, transport.received / n,
                             (counter.received - before) / n))  # fmt: skip
    for name, batch, n, http, dask_bytes in rows:
        total = http + dask_bytes
        print(f"| {name} | {batch:,} | {n} | {http:,.0f} | {dask_bytes:,.0f} | {total:,.0f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", type=int, default=96)
    parser.add_argument(
        "--only", choices=["speedup", "bytes"], help="one of the two measurements (default both)"
    )
    args = parser.parse_args()
    with (
        running_server(RECORDS, "process") as info,
        Client(info.url, info.token, environment_id=info.environment_id) as client,
    ):
        server = Server(info, client)
        if args.only in (None, "speedup"):
            speedup(server, args.rounds, args.parts)
        if args.only in (None, "bytes"):
            coordinator_bytes(server)


if __name__ == "__main__":
    main()
