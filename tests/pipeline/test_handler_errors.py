"""What a handler raises or returns is reported as itself: its own TimeoutError is not the
per-part timeout (and `retry_on` sees it), numpy values in an outcome are sent as the wire
sends them, and a sync handler stuck forever does not keep the process alive."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections import Counter

from splitkit import Client, Part, dispatch


def test_a_handlers_own_timeout_error_is_reported_as_itself(client: Client, split_job) -> None:
    def handler(part: Part) -> None:
        if part.index == 0:
            raise TimeoutError("upstream read timed out")
        # A socket read that times out at once: socket.timeout, an alias of TimeoutError.
        with (
            socket.create_server(("127.0.0.1", 0)) as quiet,
            socket.create_connection(quiet.getsockname(), timeout=0.01) as conn,
        ):
            conn.recv(1)

    # No per-part timeout at all, then one that is far from expiring.
    for timeout in (None, 60.0):
        parent_id, _ = split_job(batch_size=1000, total=2000)
        handle = dispatch(
            client, parent_id, handler, timeout=timeout, retries=0, progress=False, wait=True
        )
        outcomes = handle.outcomes.set_index("part")
        assert outcomes.loc[0, "error"] == "TimeoutError: upstream read timed out"
        assert outcomes.loc[1, "error"] == "TimeoutError: timed out"
        assert set(outcomes["status"]) == {"failed"}
        assert "upstream read timed out" in outcomes.loc[0, "traceback"]


def test_retry_on_timeout_error_retries_the_handler(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)
    calls: Counter[int] = Counter()
    lock = threading.Lock()

    def handler(part: Part) -> str:
        with lock:
            calls[part.index] += 1
        if part.attempt == 1:
            raise TimeoutError("upstream read timed out")
        return f"attempt {part.attempt}"

    handle = dispatch(
        client,
        parent_id,
        handler,
        timeout=60,
        retries=1,
        retry_on=(TimeoutError,),
        progress=False,
        wait=True,
    )
    outcomes = handle.outcomes
    assert set(outcomes["status"]) == {"completed"}, outcomes["error"].tolist()
    assert set(outcomes["message"]) == {"attempt 2"}
    assert set(outcomes["attempts"]) == {2}
    assert calls == {0: 2, 1: 2}


def test_numpy_values_in_an_outcome_are_sent(client: Client, split_job) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)

    def handler(part: Part) -> dict[str, object]:
        frame = part.records
        return {"valid": frame["_valid"].sum(), "share": frame["_valid"].mean()}

    handle = dispatch(client, parent_id, handler, progress=False, wait=True)
    assert set(handle.outcomes["status"]) == {"completed"}, handle.outcomes["error"].tolist()
    for job in client.list_parts(parent_id):
        records = client.get_records(str(job.source), page_number=job.part + 1, page_size=1000)
        assert job.outcome is not None
        assert job.outcome["valid"] == int(records["_valid"].sum())
        assert job.outcome["share"] == float(records["_valid"].mean())


STUCK = textwrap.dedent(
    """
    import os, threading
    from splitkit import ClientConfig, dispatch

    def handler(part):
        if part.index == 0:
            threading.Event().wait()  # stuck for ever, in a sync handler's thread

    config = ClientConfig(os.environ["URL"], os.environ["TOKEN"])
    run = dispatch(config, os.environ["PARENT"], handler, timeout=1, progress=False, wait=True)
    print(sorted(run.outcomes["status"]), run.outcomes["error"].iloc[0])
    """
)


def test_a_stuck_sync_handler_does_not_keep_the_process_alive(
    server, client: Client, split_job
) -> None:
    parent_id, _ = split_job(batch_size=1000, total=2000)
    env = {**os.environ, "URL": server.url, "TOKEN": server.token, "PARENT": parent_id}
    # The bound of the test, not a timing claim: the script's run ends after about 1 s;
    # with the handler's thread joined at exit it would never end.
    done = subprocess.run(
        [sys.executable, "-c", STUCK], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "['completed', 'failed'] PartTimeoutError: handler timed out after 1 s" in done.stdout
