"""Records paging on the embedded server: page 1 and page 1,000 must cost the same.

    .venv/bin/python bench/bench_records_paging.py [--records 1000000] [--page-size 1000]

Seeds a sheet of generated records straight into the store (timed), then times pages
over HTTP (median of several requests) and directly on the store, and prints a table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from splitkit.server import EmbeddedServer
from splitkit.server import pages as server_pages
from splitkit.server.samples import create_sample_sheet
from splitkit.server.store import Store


def median_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # warm the page cache and the connection
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    size, last_page = args.page_size, args.records // args.page_size

    with tempfile.TemporaryDirectory(prefix="splitkit-bench-") as tmp:
        db_path = Path(tmp) / "bench.db"
        store = Store(db_path)
        started = time.perf_counter()
        sheet = create_sample_sheet(store, records_count=args.records, seed=0)
        seed_s = time.perf_counter() - started
        store.close()
        megabytes = db_path.stat().st_size / 1e6
        print(f"seeded {args.records:,} records in {seed_s:.1f} s ({megabytes:.0f} MB)")

        # the server finds the sheet seeded above (a sample is made once per database)
        with EmbeddedServer(db_path=db_path, records=args.records, seed=0) as server:
            assert server.sheet_id == sheet.sheet_id
            headers = {"Authorization": f"Bearer {server.token}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:

                def over_http(page: int) -> Callable[[], object]:
                    url = f"/sheets/{sheet.sheet_id}/records"
                    params = {"pageSize": size, "pageNumber": page}
                    return lambda: http.get(url, params=params).raise_for_status()

                def on_store(page: int) -> Callable[[], object]:
                    assert server.store is not None
                    store = server.store
                    return lambda: server_pages.page(store, sheet.sheet_id, page, size)

                rows = [
                    (how, page, median_ms(make(page), args.repeat))
                    for how, make in (("HTTP", over_http), ("store", on_store))
                    for page in (1, last_page)
                ]

    print(f"\npageSize {size}, median of {args.repeat}")
    print(f"{'path':<6} {'page':>6} {'ms':>8}")
    for how, page, ms in rows:
        print(f"{how:<6} {page:>6} {ms:>8.2f}")


if __name__ == "__main__":
    main()
