"""The event-driven flow: a listener splits the parent, processes parts, settles the parent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from splitkit import Client, Part
from splitkit.api import Event
from splitkit.listener import Listener, Route, multipart_listener
from splitkit.server import EmbeddedServer


@pytest.fixture
def sheet_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(db_path=tmp_path / "listener.db", records=3_000) as running:
        yield running


def wait_for_settled(client: Client, job_id: str, deadline_s: float = 60) -> str:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        status = client.get_job(job_id).status
        if status in {"complete", "failed", "canceled"}:
            return status
        time.sleep(0.05)
    raise AssertionError(f"parent {job_id} was not settled in {deadline_s} s")


def handler(part: Part) -> str:
    if part.index == 2:
        raise RuntimeError("this batch is rejected")
    assert len(part.records) == 500
    return f"{len(part.records)} checked"


def test_the_seed_flow_as_a_listener(sheet_server: EmbeddedServer) -> None:
    with Client(sheet_server.url, sheet_server.token) as client:
        listener = multipart_listener(client, handler, batch_size=500, poll_interval=0.05)
        listener.start()
        try:
            failing = client.create_job("sheet", "submitLargeSheet", sheet_server.sheet_id)
            assert wait_for_settled(client, failing.id) == "failed"
            parts = client.list_parts(failing.id)
            assert len(parts) == 6
            statuses = sorted(job.status for job in parts)
            assert statuses == ["complete"] * 5 + ["failed"]
            (failed,) = [job for job in parts if job.status == "failed"]
            assert "RuntimeError: this batch is rejected" in str(failed.outcome)
            assert "1 of 6 parts failed" in str(client.get_job(failing.id).outcome)

            # A handler that raised did not stop the listener: the next parent goes through.
            listener_ok = client.create_job("sheet", "submitLargeSheet", sheet_server.sheet_id)
            assert listener_ok.id != failing.id
        finally:
            listener.stop()
        assert listener.errors == []

        # Its parts were split before the stop; a new listener finishes the job.
        second = multipart_listener(client, lambda part: None, batch_size=500, poll_interval=0.05)
        second.start()
        try:
            ok = client.create_job("sheet", "submitLargeSheet", sheet_server.sheet_id)
            assert wait_for_settled(client, ok.id) == "complete"
        finally:
            second.stop()


def event(topic: str, **payload: object) -> Event:
    return Event.from_wire(
        {
            "id": "us_evt_1",
            "topic": topic,
            "domain": "job",
            "context": {"accountId": "a", "environmentId": "e", "jobId": "j"},
            "payload": payload,
            "createdAt": "2026-01-01T00:00:00.000Z",
        }
    )


def test_routes_filter_like_the_flatfile_listener() -> None:
    def noop(event: Event, client: object) -> None:
        return None

    parts = Route(("job:ready",), noop, job="sheet:submit*", is_part=True)
    assert parts.matches(event("job:ready", job="sheet:submitLargeSheet", isPart=True))
    assert not parts.matches(event("job:ready", job="sheet:submitLargeSheet", isPart=False))
    assert not parts.matches(event("job:ready", job="sheet:submitLargeSheet"))  # no isPart key
    assert not parts.matches(event("job:completed", job="sheet:submitLargeSheet", isPart=True))
    assert Route(("job:*",), noop).matches(event("job:parts-completed"))


def test_bad_listener_arguments() -> None:
    config = Client("http://127.0.0.1:9/v1", "t").config
    with pytest.raises(ValueError, match="poll_interval must be a positive number, got 0"):
        Listener(config, poll_interval=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        multipart_listener(config, handler, batch_size=0)
    with pytest.raises(TypeError, match="handler must be callable"):
        multipart_listener(config, "nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="topic must be"):
        Listener(config).on("")
