"""The event cursor this server adds to the wire: `sequence` on each event, `afterSequence`."""

from __future__ import annotations

import httpx
import pytest
from server_helpers import all_events, create_sheet, data, errors, split_parent

from splitkit import Client
from splitkit.server import EmbeddedServer


def test_sequences_follow_creation_order_and_after_sequence_pages_by_them(
    fresh_http: httpx.Client,
) -> None:
    sheet = create_sheet(fresh_http)
    parent = split_parent(fresh_http, sheet["id"], 30)
    events = all_events(fresh_http)
    sequences = [event["sequence"] for event in events]
    assert all(isinstance(s, int) for s in sequences)
    assert sequences == sorted(set(sequences))  # strictly increasing, in creation order
    # The split's 60 events share one millisecond: a time cursor cannot tell them apart.
    split = [e for e in events if e["context"]["jobId"] != parent["id"]]
    assert len(split) == 60 and len({e["createdAt"] for e in split}) == 1

    # Paging by the cursor: every event once, in order, whatever the page size.
    read, after = [], 0
    while True:
        page = data(
            fresh_http.get(
                "/events",
                params={"afterSequence": after, "pageSize": 7, "includeAcknowledged": "true"},
            )
        )
        read.extend(page)
        if len(page) < 7:
            break
        after = page[-1]["sequence"]
    assert read == events
    # Exclusive, and it combines with the other filters.
    cut = sequences[10]
    assert all_events(fresh_http, afterSequence=cut) == events[11:]
    ready = all_events(fresh_http, afterSequence=cut, topic="job:ready")
    assert ready == [e for e in events[11:] if e["topic"] == "job:ready"]
    assert all_events(fresh_http, afterSequence=sequences[-1]) == []
    # get and list agree on it
    assert data(fresh_http.get(f"/events/{events[5]['id']}"))["sequence"] == sequences[5]


def test_acknowledging_does_not_move_the_after_sequence_pages(fresh_http: httpx.Client) -> None:
    split_parent(fresh_http, create_sheet(fresh_http)["id"], 10)
    unacked = data(fresh_http.get("/events", params={"pageSize": 5}))
    for event in unacked:
        data(fresh_http.post(f"/events/{event['id']}/ack"))
    # Page numbers would now skip five events; the cursor continues where it was.
    after = unacked[-1]["sequence"]
    following = data(fresh_http.get("/events", params={"afterSequence": after, "pageSize": 5}))
    assert [e["sequence"] for e in following] == list(range(after + 1, after + 6))


@pytest.mark.parametrize("bad", ["-1", "x", "1.5", str(2**63)])
def test_a_bad_after_sequence_is_refused_naming_it(fresh_http: httpx.Client, bad: str) -> None:
    found = errors(fresh_http.get("/events", params={"afterSequence": bad}), 400)
    assert "afterSequence" in [error.get("key") for error in found], found


def test_the_client_pages_by_after_sequence(
    fresh_server: EmbeddedServer, fresh_http: httpx.Client
) -> None:
    sheet = create_sheet(fresh_http)
    with Client(fresh_server.url, fresh_server.token) as client:
        job = client.create_job("sheet", "audit", sheet["id"])
        first, *rest = client.list_events(include_acknowledged=True)
        after = first.raw["sequence"]
        assert client.list_events(after_sequence=after, include_acknowledged=True) == rest
        assert {e.job_id for e in rest} == {job.id}
        with pytest.raises(ValueError, match="after_sequence must be a non-negative integer"):
            client.list_events(after_sequence=-1)
