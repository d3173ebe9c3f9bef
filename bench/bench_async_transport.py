"""Requests per second of httpx's AsyncClient: its default transport vs httpx-aiohttp's.

Why AsyncClient uses ``httpx_aiohttp.AiohttpTransport`` by default: stock httpx's
async connection pool is reported to top out near 800 req/s at concurrency 50
(httpx issue 3215). This measures both on this machine.

A tiny ASGI app (one JSON answer) runs under uvicorn (uvloop + httptools) in a
child process on loopback, so the server is not the bottleneck and shares no GIL
with the client. For each transport and concurrency, ``--concurrency`` tasks send
GETs in a loop for ``--duration`` seconds after a short warm-up; the pool allows
as many connections as there are tasks. ~10 s in all with the defaults.

    .venv/bin/python bench/bench_async_transport.py [--duration 1.5] [--concurrency 50 200]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

BODY = b'{"data":{"success":true}}'
WARMUP_S = 0.3


async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """The smallest ASGI app that answers like the API: a JSON body, keep-alive."""
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def serve() -> None:
    """Child process: bind a free port, print it, serve until killed."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", log_level="error", lifespan="off", backlog=4096
    )
    uvicorn.Server(config).run(sockets=[sock])


def start_server() -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    port = int(child.stdout.readline())
    deadline = time.monotonic() + 10
    while True:  # wait until uvicorn accepts connections
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                child.kill()
                raise RuntimeError("the bench server did not start") from None
            time.sleep(0.05)
    return child, f"http://127.0.0.1:{port}"


def make_client(transport: str, url: str, concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    if transport == "aiohttp":
        return httpx.AsyncClient(base_url=url, transport=AiohttpTransport(limits=limits))
    return httpx.AsyncClient(base_url=url, limits=limits)


async def measure(transport: str, url: str, concurrency: int, duration: float) -> dict[str, Any]:
    """Count the requests that complete inside the measured window; then stop everyone."""
    latencies: list[float] = []
    errors = 0
    async with make_client(transport, url, concurrency) as client:
        measure_from = time.perf_counter() + WARMUP_S
        stop_at = measure_from + duration

        async def worker() -> None:
            nonlocal errors
            while True:
                sent = time.perf_counter()
                try:
                    response = await client.get("/v1/ping")
                    response.raise_for_status()
                except httpx.HTTPError:
                    errors += 1
                    continue
                done = time.perf_counter()
                if measure_from <= done <= stop_at:
                    latencies.append(done - sent)

        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(stop_at - time.perf_counter())
        for task in tasks:  # in-flight requests are cut off so every run takes the same time
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    count = len(latencies)
    return {
        "transport": transport,
        "concurrency": concurrency,
        "requests": count,
        "rps": count / duration,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(0.99 * (count - 1))] if latencies else float("nan"),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1.5, help="seconds measured per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    began = time.perf_counter()
    child, url = start_server()
    rows = []
    try:
        for concurrency in args.concurrency:
            for transport in ("httpx", "aiohttp"):
                rows.append(asyncio.run(measure(transport, url, concurrency, args.duration)))
    finally:
        child.kill()
        child.wait()

    print(f"\nGET {url}/v1/ping, {args.duration:g} s per run (after {WARMUP_S} s warm-up)\n")
    header = f"{'transport':<26}{'conc.':>6}{'requests':>10}{'req/s':>9}{'p50 ms':>9}"
    print(header + f"{'p99 ms':>9}{'errors':>8}")
    print("-" * (len(header) + 17))
    names = {"httpx": "httpx default (httpcore)", "aiohttp": "httpx_aiohttp transport"}
    for row in rows:
        print(
            f"{names[row['transport']]:<26}{row['concurrency']:>6}{row['requests']:>10,}"
            f"{row['rps']:>9,.0f}{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['errors']:>8}"
        )
    print()
    for concurrency in args.concurrency:
        by = {r["transport"]: r["rps"] for r in rows if r["concurrency"] == concurrency}
        print(f"concurrency {concurrency}: aiohttp / httpx = {by['aiohttp'] / by['httpx']:.1f}x")
    print(f"({time.perf_counter() - began:.1f} s in all)")


if __name__ == "__main__":
    main()
