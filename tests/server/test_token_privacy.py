"""The token never shows: not in logs, reprs, error bodies or response headers."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from splitkit.server import EmbeddedServer, ServerConfig

TOKEN = "tok-SECRET-0123456789-never-shown"


def test_the_token_never_appears_in_logs_or_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with EmbeddedServer(db_path=tmp_path / "t.db", token=TOKEN, records=5) as server:
        seen += [repr(server), str(server)]
        good = {"Authorization": f"Bearer {TOKEN}"}
        near_miss = {"Authorization": f"Bearer {TOKEN}x"}
        with httpx.Client(base_url=server.url) as http:
            responses = [
                http.get("/environments", headers=good),
                http.get("/environments", headers=near_miss),
                http.get("/environments"),
                http.get("/jobs/us_jb_x", headers=good),
                http.post("/jobs", headers=good, json={"type": 1}),
                http.post("/jobs", headers=good, content=b"{"),
                http.get("/nowhere", headers=good),
                http.get(
                    f"/sheets/{server.sheet_id}/records", headers=good, params={"pageSize": 0}
                ),
            ]
        for response in responses:
            seen += [response.text, str(dict(response.headers))]
        assert [r.status_code for r in responses] == [200, 401, 401, 404, 400, 400, 404, 400]
    out, err = capfd.readouterr()
    seen += [caplog.text, out, err, repr(ServerConfig(db_path="x.db", token=TOKEN))]
    for text in seen:
        assert TOKEN not in text
