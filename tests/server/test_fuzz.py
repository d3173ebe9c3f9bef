"""A bounded schemathesis run over the server's own OpenAPI document: no input makes a 5xx.

Every operation gets a few valid and a few invalid examples, and a few more with the ids of
real resources in its path (random ids mostly meet 404s), so the run stays well under a
minute. Hypothesis is driven through ``as_strategy``: schemathesis's lazy pytest loader
does not work with pytest 9.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from server_helpers import data, split_parent

from splitkit.server import EmbeddedServer

EXAMPLES = 6


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    db_path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    with EmbeddedServer(db_path=db_path, records=30) as server:
        yield server


def _real_ids(server: EmbeddedServer) -> dict[str, str]:
    """Path parameters that name resources which exist (a parent job split in two)."""
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers) as http:
        parent = split_parent(http, server.sheet_id or "", 2)
        event = data(http.get("/events"))[0]
    return {
        "environment_id": server.environment_id or "",
        "space_id": server.space_id or "",
        "workbook_id": server.workbook_id or "",
        "sheet_id": server.sheet_id or "",
        "job_id": parent["id"],
        "event_id": event["id"],
    }


@pytest.mark.parametrize(
    ("mode", "with_real_ids"),
    [(GenerationMode.POSITIVE, False), (GenerationMode.NEGATIVE, False),
     (GenerationMode.POSITIVE, True), (GenerationMode.NEGATIVE, True)],
    ids=["valid", "invalid", "valid-real-ids", "invalid-real-ids"],
)  # fmt: skip
def test_no_input_makes_a_server_error(
    fuzzed_server: EmbeddedServer, mode: GenerationMode, with_real_ids: bool
) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.root_url}/openapi.json")
    headers = {"Authorization": f"Bearer {fuzzed_server.token}"}
    ids = _real_ids(fuzzed_server) if with_real_ids else {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25

    for operation in operations:
        names = {parameter.name for parameter in operation.path_parameters}
        if with_real_ids and not names:
            continue
        fixed = {name: ids[name] for name in names if name in ids}

        @given(case=operation.as_strategy(mode, path_parameters=fixed or None))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error], timeout=30)

        run()
