"""Dispatch details: transient retries, the handle inside a running loop, progress output,
the Dask executor, and handler results of the wrong kind."""

from __future__ import annotations

import asyncio
import io
import os
import threading

from tqdm import tqdm

from splitkit import Client, DaskExecutor, Part, dispatch
from splitkit.api.errors import ServerError


def test_transient_errors_retry_the_part(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=500, total=2000)  # 4 parts
    calls: dict[int, int] = {}
    lock = threading.Lock()

    def flaky(part: Part) -> str:
        with lock:
            calls[part.index] = calls.get(part.index, 0) + 1
            attempt = calls[part.index]
        if part.index == 1 and attempt == 1:
            raise ServerError("GET", "/upstream", 503, "upstream busy")
        return f"attempt {attempt}"

    handle = dispatch(client, parent_id, flaky, retries=2, progress=False, wait=True)
    outcomes = handle.outcomes.set_index("part")
    assert (outcomes["status"] == "completed").all()
    assert outcomes.loc[1, "attempts"] == 2 and outcomes.loc[1, "message"] == "attempt 2"
    assert outcomes.loc[0, "attempts"] == 1


def test_a_handler_error_is_not_retried(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)
    calls = []

    def broken(part: Part) -> None:
        calls.append(part.index)
        raise KeyError("email")

    handle = dispatch(client, parent_id, broken, retries=3, progress=False, wait=True)
    assert sorted(calls) == [0, 1]
    assert set(handle.outcomes["error"]) == {"KeyError: 'email'"}


def test_a_wrong_result_fails_the_part_and_says_why(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)
    handle = dispatch(client, parent_id, lambda part: 42, progress=False, wait=True)
    assert set(handle.outcomes["status"]) == {"failed"}
    assert "a handler returns None, a message (str) or an outcome (dict), got int" in str(
        handle.outcomes["error"].iloc[0]
    )


def test_in_a_running_loop_dispatch_returns_at_once(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=250, total=2000)
    release = threading.Event()

    def gated(part: Part) -> None:
        release.wait(10)

    async def main() -> tuple[bool, int]:
        handle = dispatch(client, parent_id, gated, concurrency=2, progress=False)
        returned_early = not handle.done
        release.set()
        outcomes = await handle
        return returned_early, len(outcomes)

    returned_early, parts = asyncio.run(main())
    assert returned_early and parts == 8


def test_progress_is_one_throttled_tqdm_bar(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=10, total=2000)  # 200 fast parts
    out = io.StringIO()

    class Bar(tqdm):  # type: ignore[type-arg]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, file=out, **kwargs)  # type: ignore[misc]

    dispatch(client, parent_id, lambda part: None, concurrency=8, tqdm_class=Bar, wait=True)
    text = out.getvalue()
    assert "200/200" in text and "records=2,000/2,000" in text
    # Unthrottled, every one of the 200 part ends would redraw the bar.
    assert text.count("parts:") < 120


def test_parts_run_in_dask_worker_processes_by_default(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=500, total=2000)
    with DaskExecutor(n_workers=2) as executor:  # a local cluster of worker processes
        pids = set(executor.client.run(os.getpid).values())
        handle = dispatch(
            client, parent_id, valid_count, executor=executor, progress=False, wait=True
        )
    assert len(pids) == 2 and os.getpid() not in pids
    assert set(handle.outcomes["status"]) == {"completed"}
    assert all(m.startswith("valid=") for m in handle.outcomes["message"])
    assert handle.outcomes["dask_worker"].notna().all()


def valid_count(part: Part) -> str:
    return f"valid={int(part.records['_valid'].sum())}"


def test_records_are_parsed_only_when_a_handler_reads_them(
    server, client: Client, split_job
) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)
    seen: dict[int, object] = {}

    def handler(part: Part) -> None:
        seen[part.index] = part._records  # what arrived, before anyone read it
        if part.index == 1:
            frame = part.records
            expected = client.get_records(server.sheet_id, page_number=2, page_size=1000)
            assert frame.equals(expected)
            assert part.records is frame  # parsed once

    handle = dispatch(client, parent_id, handler, progress=False, wait=True)
    assert set(handle.outcomes["status"]) == {"completed"}, handle.outcomes["error"].tolist()
    assert all(isinstance(raw, bytes) for raw in seen.values())
