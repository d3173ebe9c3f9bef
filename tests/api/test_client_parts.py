"""The client's pieces without a server: models, frames, operations, the package face."""

from __future__ import annotations

import ast
import inspect
import pickle
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

import splitkit.api
from splitkit.api import (
    ApiError,
    ConnectionFailedError,
    Event,
    InvalidTransitionError,
    Job,
    RateLimitedError,
    RecordCounts,
    records_body,
    records_frame,
)
from splitkit.api import operations as ops
from splitkit.api._base import retry_after_seconds

PACKAGE_DIR = Path(splitkit.api.__file__).parents[1]

JOB = {
    "id": "us_jb_1",
    "type": "sheet",
    "operation": "export",
    "status": "executing",
    "source": "us_sh_1",
    "parentId": "us_jb_0",
    "part": 3,
    "partData": {"part": 3, "total": 10},
    "partExecution": "parallel",
    "environmentId": "us_env_1",
    "progress": 40,
    "info": "working",
    "metadata": {"attempt": 2},
    "createdAt": "2026-01-01T00:00:00.000Z",
    "updatedAt": "2026-01-01T00:00:01.5Z",
    "startedAt": "2026-01-01T00:00:01+00:00",
    "finishedAt": None,
    "predecessorIds": [],
}


# -- models ---------------------------------------------------------------------------------


def test_job_from_wire() -> None:
    job = Job.from_wire(JOB)
    assert (job.id, job.type, job.operation, job.status) == (
        "us_jb_1",
        "sheet",
        "export",
        "executing",
    )
    assert (job.parent_id, job.part, job.part_execution) == ("us_jb_0", 3, "parallel")
    assert job.part_data == {"part": 3, "total": 10}
    assert job.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert job.updated_at == datetime(2026, 1, 1, 0, 0, 1, 500_000, tzinfo=UTC)
    assert job.finished_at is None
    assert job.is_part and not job.is_terminal
    assert job.raw["predecessorIds"] == []
    assert "raw" not in repr(job)
    with pytest.raises(AttributeError):
        job.status = "complete"  # type: ignore[misc]


def test_job_minimal_and_terminal() -> None:
    wire = {k: JOB[k] for k in ("id", "type", "operation", "createdAt", "updatedAt")}
    job = Job.from_wire({**wire, "status": "canceled"})
    assert not job.is_part and job.is_terminal
    assert job.metadata == {} and job.source is None and job.part is None


def test_job_missing_required_key() -> None:
    with pytest.raises(ValueError, match="job has no 'status'"):
        Job.from_wire({k: v for k, v in JOB.items() if k != "status"})


def test_event_from_wire() -> None:
    event = Event.from_wire(
        {
            "id": "us_evt_1",
            "topic": "job:ready",
            "domain": "job",
            "context": {"jobId": "us_jb_1", "environmentId": "us_env_1"},
            "payload": {"job": "sheet:export", "isPart": False},
            "createdAt": "2026-01-01T00:00:00.123456Z",
            "acknowledgedAt": None,
            "dataUrl": "v1/sheets/us_sh_1/records?for=us_evt_1",
        }
    )
    assert event.job_id == "us_jb_1"
    assert event.payload["isPart"] is False
    assert event.created_at.microsecond == 123456
    assert event.data_url == "v1/sheets/us_sh_1/records?for=us_evt_1"
    bare = Event.from_wire({**event.raw, "context": {}, "dataUrl": ""})
    assert bare.job_id is None and bare.data_url is None


def test_record_counts_from_either_shape() -> None:
    counts = {"total": 10, "valid": 7, "error": 3, "errorsByField": {"email": 3}}
    assert RecordCounts.from_wire(counts) == RecordCounts(10, 7, 3)
    assert RecordCounts.from_wire({"success": True, "counts": counts}).raw["errorsByField"]


# -- frames ---------------------------------------------------------------------------------


def _page(records: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"data": {"success": True, "records": records}})


def test_records_frame_columns_values_validity() -> None:
    frame = records_frame(
        _page(
            [
                {
                    "id": "us_rc_1",
                    "valid": True,
                    "values": {"email": {"value": "a@x"}, "n": {"value": 1}},
                },
                {
                    "id": "us_rc_2",
                    "valid": False,
                    "values": {"email": {"value": None, "valid": False}},
                },
                {
                    "id": "us_rc_3",
                    "values": {"n": {"value": 3, "valid": False}, "extra": {"value": "e"}},
                },
                {"id": "us_rc_4", "values": {"email": {"value": "d@x", "valid": True}}},
            ]
        )
    )
    assert list(frame.columns) == ["_id", "_valid", "email", "n", "extra"]
    assert frame["_id"].tolist() == ["us_rc_1", "us_rc_2", "us_rc_3", "us_rc_4"]
    # `valid` missing on the record: derived from its cells.
    assert frame["_valid"].tolist() == [True, False, False, True]
    assert frame["_valid"].dtype == bool
    assert frame["email"].tolist()[0] == "a@x" and frame["email"].isna().tolist()[1:3] == [
        True,
        True,
    ]
    assert frame["n"].tolist()[2] == 3


def test_records_frame_empty_page() -> None:
    frame = records_frame(_page([]))
    assert list(frame.columns) == ["_id", "_valid"]
    assert len(frame) == 0


def test_records_frame_is_column_wise_fast() -> None:
    records = [
        {
            "id": f"us_rc_{i}",
            "valid": i % 7 != 0,
            "values": {f"f{j}": {"value": i * j} for j in range(10)},
        }
        for i in range(10_000)
    ]
    content = _page(records)
    frame = records_frame(content)
    assert frame.shape == (10_000, 12)
    assert frame["f3"].iloc[9_999] == 9_999 * 3
    assert (~frame["_valid"]).sum() == len(range(0, 10_000, 7))


def test_records_body_from_dicts_and_cells() -> None:
    body = records_body([{"email": "a@x", "n": 1}, {"email": {"value": "b@x", "messages": []}}])
    assert body == [
        {"email": {"value": "a@x"}, "n": {"value": 1}},
        {"email": {"value": "b@x", "messages": []}},
    ]


def test_records_body_from_a_frame() -> None:
    frame = pd.DataFrame(
        {"_id": ["x", "y"], "_valid": [True, False], "email": ["a@x", None], "n": [1.5, np.nan]}
    )
    assert records_body(frame) == [{"email": {"value": "a@x"}, "n": {"value": 1.5}}, {}]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ("abc", "records must be a DataFrame or a list"),
        ([{"a": 1}, 5], r"records\[1\] must be a mapping"),
    ],
)
def test_records_body_bad(records: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        records_body(records)


# -- operations ----------------------------------------------------------------------------


def test_query_encoding_like_the_sdks() -> None:
    since = datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert ops.encode_query(
        {
            "include_acknowledged": True,
            "ids": ["a", "b"],
            "since": since,
            "skip": None,
            "pageSize": 5,
        }
    ) == (
        ("includeAcknowledged", "true"),
        ("ids", "a"),
        ("ids", "b"),
        ("since", "2026-01-01T00:00:00Z"),
        ("pageSize", "5"),
    )


def test_each_endpoint_once() -> None:
    op = ops.split_job("us_jb_1", [{"a": 1}], run_in_parallel=False)
    assert (op.method, op.path, op.json) == (
        "POST",
        "/jobs/us_jb_1/split",
        {"parts": [{"a": 1}], "runInParallel": False},
    )
    assert ops.ack_job("us_jb_1").json is None  # no body: what the Node SDK sends
    assert ops.ack_job("us_jb_1", progress=0).json == {"progress": 0}
    assert ops.complete_job("j", message="done", outcome={"acknowledge": True}).json == {
        "outcome": {"acknowledge": True, "message": "done"}
    }
    assert ops.create_job(
        "sheet", "export", "us_sh_1", environment_id="e", mode="background"
    ).json == {
        "type": "sheet",
        "operation": "export",
        "source": "us_sh_1",
        "trigger": "immediate",
        "environmentId": "e",
        "mode": "background",
    }
    assert ops.update_job("j", outcome_acknowledged_at="x").json == {"outcomeAcknowledgedAt": "x"}
    assert ops.get_job("a/b?c").path == "/jobs/a%2Fb%3Fc"  # an id never changes the route
    listed = ops.list_jobs(parent_id="p", exclude_child_jobs=False, page_size=5)
    assert listed.params == (
        ("parentId", "p"),
        ("excludeChildJobs", "false"),
        ("pageNumber", "1"),
        ("pageSize", "5"),
    )


def test_list_parts_flow_pages_until_a_short_page() -> None:
    def job(i: int) -> Job:
        return Job.from_wire({**JOB, "id": f"us_jb_p{i}", "part": i})

    flow = ops.list_parts("us_jb_0", page_size=2)
    first = next(flow)
    assert dict(first.params)["pageNumber"] == "1"
    second = flow.send(ops.Page([job(1), job(0)]))
    assert dict(second.params)["pageNumber"] == "2"
    with pytest.raises(StopIteration) as done:
        flow.send(ops.Page([job(2)]))
    assert [j.part for j in done.value.value] == [0, 1, 2]


def test_list_parts_flow_stops_on_the_servers_page_count() -> None:
    flow = ops.list_parts("us_jb_0", page_size=1)
    next(flow)
    with pytest.raises(StopIteration):
        flow.send(
            ops.Page([Job.from_wire(JOB)], {"currentPage": 1, "pageCount": 1, "totalCount": 1})
        )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ops.get_job(""), "job_id must be a non-empty string, got ''"),
        (lambda: ops.get_job(None), "job_id must be a non-empty string, got None"),
        (
            lambda: ops.get_records("s", page_size=0),
            "page_size must be an integer between 1 and 10,000, got 0",
        ),
        (
            lambda: ops.get_records("s", page_size=10_001),
            "page_size must be an integer between 1 and 10,000",
        ),
        (
            lambda: ops.get_records("s", page_number=0),
            "page_number must be a positive integer, got 0",
        ),
        (
            lambda: ops.get_records("s", page_number=True),
            "page_number must be a positive integer, got True",
        ),
        (
            lambda: ops.split_job("j", 0),
            "parts must be a positive integer or a non-empty list of dicts, got 0",
        ),
        (lambda: ops.split_job("j", []), "parts must be a positive integer or a non-empty list"),
        (lambda: ops.split_job("j", True), "parts must be a positive integer or a non-empty list"),
        (lambda: ops.split_job("j", [1]), r"parts\[0\] must be a dict of part data"),
        (
            lambda: ops.split_job("j", 2, run_in_parallel="yes"),
            "run_in_parallel must be True or False",
        ),
        (
            lambda: ops.ack_job("j", progress=101),
            "progress must be an integer between 0 and 100, got 101",
        ),
        (lambda: ops.create_job("sheet", "", "s"), "operation must be a non-empty string, got ''"),
        (
            lambda: ops.create_job("sheet", "x", "s", trigger="now"),
            "trigger must be 'immediate' or 'manual'",
        ),
        (lambda: ops.update_job("j"), "update_job needs at least one field"),
        (
            lambda: ops.list_events(page_size=1001),
            "page_size must be an integer between 1 and 1,000",
        ),
        (lambda: ops.list_events(since=5), "since must be a datetime, an ISO-8601 string or None"),
        (
            lambda: ops.complete_job("j", outcome="done"),
            "outcome must be a dict or None, got 'done'",
        ),
        (lambda: ops.create_workbook("wb", {"name": "s"}, space_id="sp"), "sheets must be a list"),
        (lambda: ops.create_workbook("wb", [], space_id=""), "space_id must be a non-empty string"),
        (lambda: ops.list_parts(""), "parent_id must be a non-empty string"),
        (lambda: ops.list_jobs(space_id={"a": 1}), "space_id must be a string, number, bool"),
    ],
)
def test_bad_arguments_are_value_errors(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_retry_after_forms() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert 0 <= retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # type: ignore[operator]


# -- errors ---------------------------------------------------------------------------------


def test_error_message_shape_and_pickling() -> None:
    error = InvalidTransitionError(
        "POST",
        "/jobs/us_jb_x/complete",
        400,
        "Job us_jb_x is complete; cannot complete",
        key="transition",
    )
    assert (
        str(error) == "POST /jobs/us_jb_x/complete → 400: Job us_jb_x is complete; cannot complete"
    )
    assert error.job_id == "us_jb_x"
    assert isinstance(error, ApiError)
    again = pickle.loads(pickle.dumps(error))
    assert (
        type(again) is InvalidTransitionError
        and str(again) == str(error)
        and again.key == "transition"
    )
    limited = pickle.loads(
        pickle.dumps(RateLimitedError("GET", "/jobs", 429, "slow", retry_after=2.0))
    )
    assert limited.retry_after == 2.0
    down = ConnectionFailedError("GET", "http://h/v1/jobs", "refused", request_sent=False)
    again_down = pickle.loads(pickle.dumps(down))
    assert str(again_down) == str(down) and again_down.request_sent is False


# -- the package face -----------------------------------------------------------------------


def test_all_is_sorted_and_complete() -> None:
    exported = splitkit.api.__all__
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n[0].islower(), n))
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert hasattr(splitkit.api, name), name
    public = {
        name
        for module in (
            "config",
            "errors",
            "models",
            "frames",
            "client",
            "async_client",
            # not "operations": the I/O-free core under the clients is internal (issue 8.7)
        )
        for name in getattr(splitkit.api, module).__all__
    }
    assert public == set(exported)
    defined_here = {
        name
        for name, value in vars(splitkit.api).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", "").startswith("splitkit.api")
    }
    assert defined_here <= set(exported)


# `import splitkit.x` runs splitkit/__init__.py, the package face, which re-exports both
# sides; so the check installs a bare `splitkit` first and sees only the subpackage's own
# imports.
_BARE_PARENT = (
    "import sys, types\n"
    "pkg = types.ModuleType('splitkit')\n"
    "pkg.__path__ = [{path!r}]\n"
    "sys.modules['splitkit'] = pkg\n"
)


@pytest.mark.parametrize(
    ("imported", "forbidden"),
    [("splitkit.api", "splitkit.server"), ("splitkit.server", "splitkit.api")],
)
def test_client_and_server_never_import_each_other(imported: str, forbidden: str) -> None:
    code = _BARE_PARENT.format(path=str(PACKAGE_DIR)) + (
        f"import {imported}\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[:2] == {forbidden.split('.')!r})\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(("side", "other"), [("api", "server"), ("server", "api")])
def test_no_import_of_the_other_side_anywhere_in_the_source(side: str, other: str) -> None:
    # Also catches imports inside functions, which the runtime check cannot see.
    offenders = []
    for path in sorted((PACKAGE_DIR / side).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == f"splitkit.{other}" or n.startswith(f"splitkit.{other}.") for n in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders
