"""A bounded schemathesis run over the server's own OpenAPI document: every answer is one
the API promises, whatever the input.

The app's document describes requests fully but not responses: every 200 has an empty
schema and the only error it lists is FastAPI's 422, which this server never sends (it
answers 400). So the test completes the document with the wire contract before fuzzing
(:func:`_with_wire_responses`): a 200 is ``{"data": ...}`` in the resource's shape, an
error is ``{"errors": [{"key"?, "message"}]}`` with 400, 401, 404 (413: a body too large).
Each response is then checked for: no 5xx, a documented status, a documented content
type, and a body that validates against the schema of its status.

Every operation gets ``EXAMPLES`` valid and ``EXAMPLES`` invalid inputs, and again with
the ids of real resources in its path (random ids mostly meet 404s). Hypothesis is driven
through ``as_strategy``: schemathesis's lazy pytest loader does not work with pytest 9.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from server_helpers import data, split_parent

from splitkit.server import EmbeddedServer

# Per operation and mode: 27 operations x 4 runs x 25 examples, about 2,700 requests,
# which keeps this module within about a minute on 2 cores. No health check is suppressed:
# none fires on this schema. Not checked: negative_data_rejection, since the server (like
# Flatfile's) ignores query parameters it does not know, e.g. GET /v1/environments?x=0.
EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

JOB_STATUSES = ["created", "planning", "scheduled", "ready", "executing", "waiting"]
JOB_STATUSES += ["complete", "failed", "canceled"]


def _resource(prefix: str, *required: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", *required],
        "properties": {"id": {"type": "string", "pattern": f"^{prefix}"}},
    }


JOB = _resource("us_jb_", "type", "operation", "source", "status", "createdAt", "updatedAt")
JOB["properties"]["status"] = {"enum": JOB_STATUSES}
EVENT = _resource("us_evt_", "topic", "domain", "context", "payload", "createdAt")
EVENT["properties"].update(context={"type": "object"}, payload={"type": "object"})
COUNTS = {
    "type": "object",
    "required": ["total", "valid", "error"],
    "properties": {k: {"type": "integer", "minimum": 0} for k in ("total", "valid", "error")},
}
RECORDS = {
    "type": "object",
    "required": ["success", "records", "counts"],
    "properties": {
        "success": {"const": True},
        "records": {"type": "array", "items": _resource("us_rc_", "values", "valid")},
        "counts": COUNTS,
    },
}
SUCCESS = {"type": "object", "required": ["success"], "properties": {"success": {"const": True}}}
PAGINATION = {
    "type": "object",
    "required": ["currentPage", "pageCount", "totalCount"],
    "properties": {k: {"type": "integer"} for k in ("currentPage", "pageCount", "totalCount")},
}
# The shape of ``data`` in the 200 answer of each operation (method, path under /v1).
DATA: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/environments/{environment_id}"): _resource("us_env_"),
    ("post", "/spaces"): _resource("us_sp_", "environmentId"),
    ("get", "/spaces/{space_id}"): _resource("us_sp_", "environmentId"),
    ("post", "/workbooks"): _resource("us_wb_", "spaceId", "sheets"),
    ("get", "/workbooks/{workbook_id}"): _resource("us_wb_", "spaceId", "sheets"),
    ("get", "/sheets"): {"type": "array", "items": _resource("us_sh_", "workbookId")},
    ("get", "/sheets/{sheet_id}"): _resource("us_sh_", "workbookId"),
    ("get", "/sheets/{sheet_id}/counts"): {
        "type": "object",
        "required": ["counts"],
        "properties": {"counts": COUNTS},
    },
    ("get", "/sheets/{sheet_id}/records"): RECORDS,
    ("post", "/sheets/{sheet_id}/records"): RECORDS,
    ("get", "/events"): {"type": "array", "items": EVENT},
    ("get", "/events/{event_id}"): EVENT,
    ("post", "/events/{event_id}/ack"): SUCCESS,
    ("delete", "/jobs/{job_id}"): SUCCESS,
    ("post", "/jobs/{job_id}/execute"): SUCCESS,
}
PAGED = {("get", "/environments"): _resource("us_env_"), ("get", "/jobs"): JOB}
ERROR = {
    "type": "object",
    "required": ["errors"],
    "additionalProperties": False,
    "properties": {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["message"],
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string", "minLength": 1},
                    "message": {"type": "string", "minLength": 1},
                },
            },
        }
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ok_schema(method: str, path: str) -> dict[str, Any]:
    if (method, path) in PAGED:
        items = {"type": "array", "items": PAGED[method, path]}
        properties = {"data": items, "pagination": PAGINATION}
        return {"type": "object", "required": ["data", "pagination"], "properties": properties}
    # every other operation not listed in DATA is a job operation answering the job
    shape = DATA.get((method, path), JOB)
    return {"type": "object", "required": ["data"], "properties": {"data": shape}}


def _with_wire_responses(document: dict[str, Any]) -> dict[str, Any]:
    """The app's OpenAPI document with the responses the wire contract promises."""
    document = copy.deepcopy(document)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            short = path.removeprefix("/v1")
            responses = {
                "200": _json(_ok_schema(method, short), "success"),
                "400": _json(ERROR, "bad input or a refused transition"),
                "401": _json(ERROR, "no or a wrong bearer token"),
                "404": _json(ERROR, "no such resource"),
            }
            if method in ("post", "patch"):
                responses["413"] = _json(ERROR, "body too large")
            operation["responses"] = responses
    return document


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    db_path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    with EmbeddedServer(db_path=db_path, records=30) as server:
        yield server


@pytest.fixture(scope="module")
def schema(fuzzed_server: EmbeddedServer) -> Any:
    document = httpx.get(f"{fuzzed_server.root_url}/openapi.json").json()
    return schemathesis.openapi.from_dict(_with_wire_responses(document))


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


def test_the_document_is_completed_for_every_operation(schema: Any) -> None:
    """Every operation has a response schema for each status it may send (no 422)."""
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    for operation in operations:
        statuses = set(operation.definition.raw["responses"])
        assert {"200", "400", "401", "404"} <= statuses and "422" not in statuses, operation.label


@pytest.mark.parametrize(
    ("mode", "with_real_ids"),
    [(GenerationMode.POSITIVE, False), (GenerationMode.NEGATIVE, False),
     (GenerationMode.POSITIVE, True), (GenerationMode.NEGATIVE, True)],
    ids=["valid", "invalid", "valid-real-ids", "invalid-real-ids"],
)  # fmt: skip
def test_every_answer_is_one_the_api_promises(
    fuzzed_server: EmbeddedServer, schema: Any, mode: GenerationMode, with_real_ids: bool
) -> None:
    headers = {"Authorization": f"Bearer {fuzzed_server.token}"}
    ids = _real_ids(fuzzed_server) if with_real_ids else {}
    operations = [result.ok() for result in schema.get_all_operations()]

    for operation in operations:
        names = {parameter.name for parameter in operation.path_parameters}
        if with_real_ids and not names:
            continue
        fixed = {name: ids[name] for name in names if name in ids}

        @given(case=operation.as_strategy(mode, path_parameters=fixed or None))
        @settings(max_examples=EXAMPLES, deadline=None, database=None)
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=fuzzed_server.root_url, headers=headers, checks=CHECKS, timeout=30
            )

        run()
