"""Everything persists in the database file: a restarted server carries on where it was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from server_helpers import all_events, data, list_parts, split_parent

from splitkit.server import EmbeddedServer


def test_a_restart_on_the_same_file_keeps_everything(
    tmp_path: Path, client_for: Callable[..., httpx.Client]
) -> None:
    db_path = tmp_path / "kept.db"
    with (
        EmbeddedServer(db_path=db_path, records=120, token="first-token") as first,
        client_for(first) as http,
    ):
        parent = split_parent(http, first.sheet_id or "", 3)
        first_part = list_parts(http, parent["id"])[0]
        data(http.post(f"/jobs/{first_part['id']}/complete"))
        records = data(http.get(f"/sheets/{first.sheet_id}/records"))["records"]
        events = all_events(http)
        ids = (first.environment_id, first.space_id, first.workbook_id, first.sheet_id)
        parts = list_parts(http, parent["id"])
    assert not first.running

    with (
        EmbeddedServer(db_path=db_path, records=120, token="second-token") as second,
        client_for(second) as http,
    ):
        # the same sample is found again, not generated twice
        assert (second.environment_id, second.space_id, second.workbook_id, second.sheet_id) == ids
        assert data(http.get(f"/sheets/{second.sheet_id}/records"))["records"] == records
        assert list_parts(http, parent["id"]) == parts
        assert all_events(http) == events
        for part in parts[1:]:
            data(http.post(f"/jobs/{part['id']}/complete"))
        (done,) = all_events(http, topic="job:parts-completed")
        assert done["payload"]["parts"]["completed"] == 3
        assert len(data(http.get("/environments"))) == 1


def test_a_temporary_database_is_removed_on_stop() -> None:
    server = EmbeddedServer()
    server.start()
    assert server.store is not None
    path = server.store.path
    assert Path(path).exists() and server.sheet_id is None
    server.stop()
    assert not Path(path).exists() and not server.running
    server.stop()  # stopping twice is harmless
