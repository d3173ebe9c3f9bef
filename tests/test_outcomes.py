"""Outcome frames, summarize(), counts_match(), settle_decision(), and the settle flow
driven by real clients against a stand-in server, an httpx transport (the embedded server
is in test_settle.py)."""

from __future__ import annotations

import asyncio
import doctest
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import splitkit.outcomes
import splitkit.settlement
import splitkit.summary
from splitkit.api import AsyncClient, Client, RetryPolicy
from splitkit.api.errors import (
    InvalidTransitionError,
    NotFoundError,
    ServerError,
)
from splitkit.engine.state import PartRow, RunState
from splitkit.outcomes import COST_COLUMNS, OUTCOME_COLUMNS, empty_outcomes, frame_parent_id
from splitkit.settlement import (
    SETTLE_SENDS,
    SettleDecision,
    SettleResult,
    asettle,
    settle,
    settle_decision,
)
from splitkit.summary import SUMMARY_COLUMNS, counts_match, summarize

T0 = pd.Timestamp("2026-01-01T00:00:00Z")
#: The summary's timing columns (floats, NaN when unknown).
TIMING_COLUMNS = SUMMARY_COLUMNS[SUMMARY_COLUMNS.index("duration_p50_s") :]


def _at(seconds: float | None) -> Any:
    return pd.NaT if seconds is None else T0 + pd.Timedelta(seconds=seconds)


def handmade_outcomes() -> pd.DataFrame:
    """Six parts, every status, known times: 2 completed, 1 failed, 1 canceled, 2 not ended."""
    rows = [
        # part, status, records, start, finish, duration, error
        (0, "completed", 100, 0, 2, 2.0, None),
        (1, "completed", 100, 1, 5, 4.0, None),
        (2, "failed", 100, 2, 3, 1.0, "ValueError: bad row"),
        (3, "canceled", 50, None, 6, math.nan, None),
        (4, "running", 50, 5, None, math.nan, None),
        (5, "pending", 50, None, None, math.nan, None),
    ]
    frame = pd.DataFrame(
        {
            "part": [r[0] for r in rows],
            "job_id": [f"us_jb_{r[0]}" for r in rows],
            "status": [r[1] for r in rows],
            "records": [r[2] for r in rows],
            "attempts": [1, 1, 3, 0, 1, 0],
            "started_at": [_at(r[3]) for r in rows],
            "finished_at": [_at(r[4]) for r in rows],
            "duration_s": [r[5] for r in rows],
            "error": [r[6] for r in rows],
            "message": ["ok", "ok", None, None, None, None],
        }
    )
    return frame.astype(splitkit.outcomes.OUTCOME_DTYPES)


def finished_outcomes() -> pd.DataFrame:
    """The four parts of handmade_outcomes() that ended: 2 completed, 1 failed, 1 canceled."""
    return handmade_outcomes().iloc[:4].reset_index(drop=True)


class StandInRun:
    """Like a RunHandle: ``wait()`` and ``await`` end the run, ``outcomes`` is the frame now.

    ``outcomes`` starts as ``now``; waiting (or awaiting) replaces it with ``then``.
    """

    def __init__(self, now: pd.DataFrame, then: pd.DataFrame | None = None) -> None:
        self._now = now
        self._then = now if then is None else then
        self.waited = 0

    @property
    def outcomes(self) -> pd.DataFrame:
        return self._now

    def wait(self, timeout: float | None = None) -> pd.DataFrame:
        self.waited += 1
        self._now = self._then
        return self._now

    def __await__(self) -> Any:
        async def finish() -> pd.DataFrame:
            await asyncio.sleep(0)
            return self.wait()

        return finish().__await__()


# --- the outcome frame ----------------------------------------------------------------------


def _run_state(*rows: PartRow) -> RunState:
    state = RunState("us_jb_parent")
    state.add(rows)
    return state


STARTED = pd.Timestamp("2026-01-01T00:00:00Z").to_pydatetime()


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(
            _run_state(
                PartRow(1, "us_jb_1", 50, "failed", 2, STARTED, STARTED, "ValueError: bad"),
                PartRow(0, "us_jb_0", 100, "completed", 1, STARTED, STARTED, None, "ok"),
                PartRow(2, "us_jb_2", 25),
            ),
            id="some-ended",
        ),
        pytest.param(
            _run_state(PartRow(0, "us_jb_0", 100), PartRow(1, "us_jb_1", 50)),
            id="none-started",
        ),
    ],
)
def test_outcome_columns_are_what_dispatch_writes(state: RunState) -> None:
    # The frame a run builds: the schema's columns first, in its order, with its dtypes.
    frame = state.frame()
    assert list(frame.columns[: len(OUTCOME_COLUMNS)]) == OUTCOME_COLUMNS
    assert frame["part"].tolist() == sorted(row.part for row in state.rows)
    written, schema = frame[OUTCOME_COLUMNS].dtypes, empty_outcomes().dtypes
    assert (written == schema).all(), written[written != schema]
    # The cost columns too, with their optional dtypes, even when nothing was measured.
    costs = frame[list(COST_COLUMNS)].dtypes
    wanted = empty_outcomes(include_optional=True)[list(COST_COLUMNS)].dtypes
    assert (costs == wanted).all(), costs[costs != wanted]


def test_outcome_columns() -> None:
    # The documented order, the same as the schema's (empty_outcomes builds from the dtypes).
    assert list(splitkit.outcomes.OUTCOME_DTYPES) == OUTCOME_COLUMNS
    assert OUTCOME_COLUMNS == [
        "part",
        "job_id",
        "status",
        "records",
        "attempts",
        "started_at",
        "finished_at",
        "duration_s",
        "error",
        "message",
    ]


def test_empty_outcomes_schema() -> None:
    frame = empty_outcomes()
    assert list(frame.columns) == OUTCOME_COLUMNS
    assert frame.empty
    assert frame["part"].dtype == "int64"
    assert frame["records"].dtype == "int64"
    assert frame["duration_s"].dtype == "float64"
    for column in ("started_at", "finished_at"):
        dtype = frame[column].dtype
        assert isinstance(dtype, pd.DatetimeTZDtype)
        assert str(dtype.tz) == "UTC"
    for column in ("job_id", "status", "error", "message"):
        assert pd.api.types.is_string_dtype(frame[column])


def test_empty_outcomes_with_optional_columns() -> None:
    frame = empty_outcomes(include_optional=True)
    assert list(frame.columns) == [
        *OUTCOME_COLUMNS,
        "worker",
        "traceback",
        "parent_id",
        "dask_worker",
        "page_bytes",
        "handler_s",
        "peak_alloc_bytes",
    ]
    assert frame["worker"].dtype == "Int64"
    assert frame["page_bytes"].dtype == "Int64"
    assert frame["peak_alloc_bytes"].dtype == "Int64"
    assert frame["handler_s"].dtype == "float64"
    assert pd.api.types.is_string_dtype(frame["parent_id"])


def test_handmade_outcomes_fit_the_schema() -> None:
    # The schema accepts rows the way dispatch builds them (None for no error).
    frame = handmade_outcomes()
    assert (frame.dtypes == empty_outcomes().dtypes).all()
    assert frame["error"].isna().sum() == 5


# --- summarize from outcomes ----------------------------------------------------------------


def test_summarize_handmade_outcomes_exactly() -> None:
    summary = summarize(handmade_outcomes())
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert summary.index.name == "run"
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row[["total", "completed", "failed", "canceled", "pending"]].tolist() == [6, 2, 1, 1, 2]
    assert row["records_processed"] == 200
    # Durations of the ended parts with a known duration: 2, 4 and 1 seconds.
    assert row["duration_p50_s"] == 2.0
    assert row["duration_p95_s"] == pytest.approx(3.8)
    assert row["duration_max_s"] == 4.0
    assert row["wall_s"] == 6.0  # first start (0 s) to last finish (6 s)
    assert row["parts_per_s"] == pytest.approx(4 / 6)
    assert row["records_per_s"] == pytest.approx(200 / 6)


def test_summarize_dtypes() -> None:
    summary = summarize(handmade_outcomes())
    assert summary[["total", "completed", "failed", "canceled", "pending"]].dtypes.eq("int64").all()
    assert summary["records_processed"].dtype == "Int64"
    assert summary[TIMING_COLUMNS].dtypes.eq("float64").all()


def test_summarize_ignores_optional_columns() -> None:
    frame = handmade_outcomes()
    frame["worker"] = pd.array([0, 1, 0, None, 1, None], dtype="Int64")
    frame["traceback"] = [None, None, "Traceback ...", None, None, None]
    pd.testing.assert_frame_equal(summarize(frame), summarize(handmade_outcomes()))


def test_summarize_empty_outcomes() -> None:
    row = summarize(empty_outcomes()).iloc[0]
    assert row[["total", "completed", "failed", "canceled", "pending"]].tolist() == [0] * 5
    assert row["records_processed"] == 0
    assert row[TIMING_COLUMNS].isna().all()


def test_summarize_minimal_frame_has_nan_timings() -> None:
    frame = pd.DataFrame({"status": ["completed", "failed"], "records": [10, 20]})
    row = summarize(frame).iloc[0]
    assert row[["total", "completed", "failed"]].tolist() == [2, 1, 1]
    assert row["records_processed"] == 10
    assert row[TIMING_COLUMNS].isna().all()


def test_summarize_accepts_wire_spellings_and_loose_timestamps() -> None:
    frame = pd.DataFrame(
        {
            "status": ["complete", "Cancelled", "executing", "ready", "FAILED"],
            "records": [5, 5, 5, 5, 5],
            # Typed by hand: strings and naive datetimes (read as UTC).
            "started_at": ["2026-01-01T00:00:00Z", None, "2026-01-01T00:00:01Z", None, None],
            "finished_at": [pd.Timestamp("2026-01-01 00:00:10"), None, None, None, None],
        }
    )
    row = summarize(frame).iloc[0]
    assert row[["completed", "canceled", "pending", "failed"]].tolist() == [1, 1, 2, 1]
    assert row["wall_s"] == 10.0


@pytest.mark.parametrize(
    ("outcomes", "kwargs", "error", "message"),
    [
        (None, {}, ValueError, "summarize needs exactly one of outcomes or parts_completed"),
        (
            pd.DataFrame({"status": [], "records": []}),
            {"parts_completed": {"parts": {"total": 0}}},
            ValueError,
            "summarize needs exactly one of outcomes or parts_completed",
        ),
        ([{"status": "completed"}], {}, TypeError, "outcomes must be a pandas DataFrame, got list"),
        (
            pd.DataFrame({"records": [1]}),
            {},
            ValueError,
            "outcomes is missing column(s) ['status']",
        ),
        (
            pd.DataFrame({"status": ["done", "completed"], "records": [1, 1]}),
            {},
            ValueError,
            "outcomes['status'] has unknown status value(s) [\"'done'\"]",
        ),
        (
            pd.DataFrame({"status": ["completed", None], "records": [1, 1]}),
            {},
            ValueError,
            "outcomes['status'] has unknown status value(s)",
        ),
    ],
)
def test_summarize_bad_arguments(
    outcomes: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        summarize(outcomes, **kwargs)


def resumed_outcomes() -> pd.DataFrame:
    """A resumed run: parts 0 and 1 were ended by a run an hour earlier (previous_run)."""
    rows = [
        # part, status, records, start, finish, duration, previous_run
        (0, "completed", 100, -3_600, -3_590, 10.0, True),
        (1, "canceled", 50, None, -3_580, math.nan, True),
        (2, "completed", 100, 0, 2, 2.0, False),
        (3, "failed", 100, 1, 5, 4.0, False),
    ]
    frame = pd.DataFrame(
        {
            "part": [r[0] for r in rows],
            "job_id": [f"us_jb_{r[0]}" for r in rows],
            "status": [r[1] for r in rows],
            "records": [r[2] for r in rows],
            "attempts": [1, 0, 1, 1],
            "started_at": [_at(r[3]) for r in rows],
            "finished_at": [_at(r[4]) for r in rows],
            "duration_s": [r[5] for r in rows],
            "error": [None, None, None, "ValueError: bad row"],
            "message": ["ok", None, "ok", None],
        }
    ).astype(splitkit.outcomes.OUTCOME_DTYPES)
    frame["previous_run"] = [r[6] for r in rows]
    return frame


def test_summarize_times_only_this_run_but_counts_every_part() -> None:
    row = summarize(resumed_outcomes()).iloc[0]
    # Counts and records are the parent's: every part, whichever run ended it.
    assert row[["total", "completed", "failed", "canceled", "pending"]].tolist() == [4, 2, 1, 1, 0]
    assert row["records_processed"] == 200
    # Timing is this run's: parts 2 and 3 only (2 s and 4 s, from 0 s to 5 s), not the
    # hour since the earlier run.
    assert row["duration_p50_s"] == 3.0
    assert row["duration_p95_s"] == pytest.approx(3.9)
    assert row["duration_max_s"] == 4.0
    assert row["wall_s"] == 5.0
    assert row["parts_per_s"] == pytest.approx(2 / 5)
    assert row["records_per_s"] == pytest.approx(100 / 5)  # part 2's records, not part 0's


def test_summarize_previous_run_false_everywhere_is_the_plain_summary() -> None:
    frame = handmade_outcomes()
    frame["previous_run"] = False
    pd.testing.assert_frame_equal(summarize(frame), summarize(handmade_outcomes()))
    # Missing values (a frame put together by hand) count as this run's.
    frame["previous_run"] = pd.Series([None] * len(frame), dtype="object")
    pd.testing.assert_frame_equal(summarize(frame), summarize(handmade_outcomes()))


def test_summarize_nothing_ran_this_time_has_nan_timings() -> None:
    frame = resumed_outcomes()
    frame["previous_run"] = True
    row = summarize(frame).iloc[0]
    assert row[["total", "completed", "failed", "canceled"]].tolist() == [4, 2, 1, 1]
    assert row["records_processed"] == 200
    assert row[TIMING_COLUMNS].isna().all()


def test_summarize_bad_previous_run_values() -> None:
    frame = resumed_outcomes()
    frame["previous_run"] = ["yes", "no", "no", "no"]
    with pytest.raises(ValueError, match=re.escape("outcomes['previous_run'] must hold True")):
        summarize(frame)


def test_summarize_100k_outcomes() -> None:
    # Sanity at scale (vectorized; timing is measured in bench/, not asserted here).
    n = 100_000
    rng = np.random.default_rng(1)
    status = np.array(["completed"] * 97_000 + ["failed"] * 2_000 + ["canceled"] * 1_000)
    started = T0 + pd.to_timedelta(rng.uniform(0, 100, n), unit="s")
    duration = rng.uniform(1, 3, n)
    frame = pd.DataFrame(
        {
            "part": np.arange(n),
            "job_id": [f"us_jb_{i}" for i in range(n)],
            "status": rng.permutation(status),
            "records": 1_000,
            "attempts": 1,
            "started_at": started,
            "finished_at": started + pd.to_timedelta(duration, unit="s"),
            "duration_s": duration,
            "error": None,
            "message": None,
        }
    )
    row = summarize(frame).iloc[0]
    assert row[["total", "completed", "failed", "canceled", "pending"]].tolist() == [
        n,
        97_000,
        2_000,
        1_000,
        0,
    ]
    assert row["records_processed"] == 97_000_000
    assert row["duration_p50_s"] == pytest.approx(np.median(duration))
    assert row["duration_max_s"] == duration.max()
    wall = (frame["finished_at"].max() - frame["started_at"].min()).total_seconds()
    assert row["wall_s"] == pytest.approx(wall)


# --- summarize from a job:parts-completed payload -------------------------------------------

COUNTS_PAYLOAD = {
    "job": "sheet:submitLargeSheet",
    "operation": "submitLargeSheet",
    "domain": "sheet",
    "status": "executing",
    "isPart": False,
    "parts": {"total": 10, "completed": 7, "failed": 2, "canceled": 1},
}
LIST_PAYLOAD = {
    "job": "sheet:submitLargeSheet",
    "isPart": False,
    "parts": [
        {"partId": "us_jb_1", "status": "complete", "completedAt": "2026-01-01T00:00:01Z"},
        {"partId": "us_jb_2", "status": "completed", "completedAt": "2026-01-01T00:00:02Z"},
        {"partId": "us_jb_3", "status": "failed", "completedAt": "2026-01-01T00:00:03Z"},
        {"partId": "us_jb_4", "status": "canceled", "completedAt": None},
        {"partId": "us_jb_5", "status": "cancelled", "completedAt": None},
    ],
}


@dataclass(frozen=True)
class StandInEvent:
    """Like splitkit.api.models.Event: the payload is an attribute."""

    topic: str
    payload: dict[str, Any]


@pytest.mark.parametrize(
    "given",
    [
        COUNTS_PAYLOAD,
        {"topic": "job:parts-completed", "context": {"jobId": "p"}, "payload": COUNTS_PAYLOAD},
        StandInEvent("job:parts-completed", COUNTS_PAYLOAD),
    ],
    ids=["payload", "event-dict", "event-object"],
)
def test_summarize_counts_payload(given: object) -> None:
    summary = summarize(parts_completed=given)
    assert list(summary.columns) == SUMMARY_COLUMNS
    row = summary.iloc[0]
    assert row[["total", "completed", "failed", "canceled", "pending"]].tolist() == [10, 7, 2, 1, 0]
    assert pd.isna(row["records_processed"])
    assert row[TIMING_COLUMNS].isna().all()


def test_summarize_list_payload() -> None:
    row = summarize(parts_completed=LIST_PAYLOAD).iloc[0]
    assert row[["total", "completed", "failed", "canceled", "pending"]].tolist() == [5, 2, 1, 2, 0]
    assert row[TIMING_COLUMNS].isna().all()


def test_summarize_real_event_model() -> None:
    from splitkit.api.models import Event

    event = Event.from_wire(
        {
            "id": "us_evt_1",
            "topic": "job:parts-completed",
            "domain": "job",
            "context": {"jobId": "us_jb_p", "environmentId": "us_env_1", "accountId": "a"},
            "payload": COUNTS_PAYLOAD,
            "createdAt": "2026-01-01T00:00:00.000Z",
        }
    )
    assert summarize(parts_completed=event)["completed"].iloc[0] == 7


def test_summarize_counts_payload_defaults_and_spelling() -> None:
    # Zeros left out, "cancelled" spelled the British way, total missing: all tolerated.
    row = summarize(parts_completed={"parts": {"completed": 3, "cancelled": 1}}).iloc[0]
    assert row[["total", "completed", "failed", "canceled", "pending"]].tolist() == [4, 3, 0, 1, 0]
    row = summarize(parts_completed={"parts": {"total": 5, "completed": 3}}).iloc[0]
    assert row["pending"] == 2


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        ("job:parts-completed", TypeError, "parts_completed must be a job:parts-completed event"),
        ({"payload": {"job": "x"}}, ValueError, "parts_completed payload has no 'parts'"),
        ({"job": "x"}, ValueError, "parts_completed payload has no 'parts'"),
        ({"parts": "3"}, ValueError, "parts_completed 'parts' must be a dict of counts or a list"),
        ({"parts": 3}, ValueError, "parts_completed 'parts' must be a dict of counts or a list"),
        (
            {"parts": {"total": 2, "completed": -1}},
            ValueError,
            "parts['completed'] must be a non-negative integer, got -1",
        ),
        (
            {"parts": {"total": 2, "completed": True}},
            ValueError,
            "parts['completed'] must be a non-negative integer, got True",
        ),
        (
            {"parts": {"total": "2", "completed": 1}},
            ValueError,
            "parts['total'] must be a non-negative integer, got '2'",
        ),
        (
            {"parts": {"total": 2, "completed": 2, "failed": 1}},
            ValueError,
            "completed + failed + canceled = 3 is more than total = 2",
        ),
        (
            {"parts": [{"partId": "a"}]},
            ValueError,
            "parts_completed parts[0] must be a dict with a 'status'",
        ),
        (
            {"parts": [{"partId": "a", "status": "exploded"}]},
            ValueError,
            "parts_completed parts has unknown status value(s)",
        ),
    ],
)
def test_summarize_bad_payloads(given: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        summarize(parts_completed=given)


def test_counts_match() -> None:
    outcomes = pd.DataFrame(
        {"status": ["completed"] * 7 + ["failed"] * 2 + ["canceled"], "records": 1}
    )
    assert counts_match(summarize(outcomes), COUNTS_PAYLOAD)
    assert counts_match(outcomes, {"payload": COUNTS_PAYLOAD})
    assert not counts_match(outcomes.iloc[1:], COUNTS_PAYLOAD)
    with pytest.raises(ValueError, match="expected a summary frame"):
        counts_match(pd.DataFrame({"x": [1]}), COUNTS_PAYLOAD)


# --- settle_decision ------------------------------------------------------------------------


def _counts(total: int, completed: int, failed: int = 0, canceled: int = 0) -> pd.DataFrame:
    parts = {"total": total, "completed": completed, "failed": failed, "canceled": canceled}
    return summarize(parts_completed={"parts": parts})


@pytest.mark.parametrize(
    ("summary", "decision"),
    [
        (_counts(100, 100), SettleDecision("complete", "100 of 100 parts completed")),
        (_counts(0, 0), SettleDecision("complete", "0 of 0 parts completed")),
        (_counts(100, 95, 3, 2), SettleDecision("fail", "3 of 100 parts failed, 2 canceled")),
        (_counts(10, 9, 0, 1), SettleDecision("fail", "0 of 10 parts failed, 1 canceled")),
        (empty_outcomes(), SettleDecision("complete", "0 of 0 parts completed")),
    ],
)
def test_settle_decision(summary: pd.DataFrame, decision: SettleDecision) -> None:
    assert settle_decision(summary) == decision


@pytest.mark.parametrize(
    ("summary", "pending", "decision"),
    [
        (
            _counts(10, 8, 1),
            1,
            SettleDecision("fail", "1 of 10 parts failed, 0 canceled, 1 not ended"),
        ),
        (
            handmade_outcomes(),
            2,
            SettleDecision("fail", "1 of 6 parts failed, 1 canceled, 2 not ended"),
        ),
        (_counts(5, 0), 5, SettleDecision("fail", "0 of 5 parts failed, 0 canceled, 5 not ended")),
    ],
)
def test_settle_decision_refuses_parts_not_ended(
    summary: pd.DataFrame, pending: int, decision: SettleDecision
) -> None:
    message = (
        f"{pending} parts have not ended; wait for the run (handle.wait() or await handle) "
        "before settling"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        settle_decision(summary)
    # Settling a run that was stopped on purpose: fail the parent, naming what never ended.
    assert settle_decision(summary, allow_unfinished=True) == decision


def test_settle_decision_of_a_run_reads_its_outcomes_without_waiting() -> None:
    running = StandInRun(handmade_outcomes())
    with pytest.raises(ValueError, match="2 parts have not ended"):
        settle_decision(running)
    assert running.waited == 0
    assert settle_decision(StandInRun(finished_outcomes())) == SettleDecision(
        "fail", "1 of 4 parts failed, 1 canceled"
    )


@pytest.mark.parametrize("allow_unfinished", [False, True])
def test_settle_decision_of_a_run_that_has_not_listed_its_parts(allow_unfinished: bool) -> None:
    # Just started: no rows yet. That is not "0 of 0 parts completed".
    starting = StandInRun(empty_outcomes())
    starting.done = False  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="the run has not listed its parts yet; wait for the run"):
        settle_decision(starting, allow_unfinished=allow_unfinished)


def test_settle_decision_custom_message() -> None:
    assert settle_decision(_counts(2, 1, 1), message="see the notebook") == SettleDecision(
        "fail", "see the notebook"
    )


@pytest.mark.parametrize(
    ("frame", "kwargs", "error", "message"),
    [
        ({"total": 1}, {}, TypeError, "expected a summary or an outcome DataFrame, got dict"),
        (pd.DataFrame({"x": [1]}), {}, ValueError, "expected a summary frame"),
        (
            pd.concat([_counts(1, 1), _counts(1, 1)]),
            {},
            ValueError,
            "a summary frame has exactly one row, got 2",
        ),
        (_counts(1, 1), {"message": 3}, TypeError, "message must be a string or None, got int"),
        (
            _counts(1, 1),
            {"allow_unfinished": "yes"},
            ValueError,
            "allow_unfinished must be True or False, got 'yes'",
        ),
    ],
)
def test_settle_decision_bad_arguments(
    frame: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        settle_decision(frame, **kwargs)


# --- the settle flow against a stand-in server ----------------------------------------------

# settle() runs on the client's own send loop, so the stand-ins are real clients whose
# transport answers like the server (httpx.MockTransport: no socket). Each request is
# recorded as the client call it came from. attempts=1: the flow sees each error as it
# comes, as it would once the client's own retries are spent.
STAND_IN_URL = "http://localhost/v1"  # loopback: never sent through a proxy
STAND_IN_RETRY = RetryPolicy(attempts=1)


@dataclass(frozen=True)
class FakeJob:
    id: str
    status: str
    outcome: dict[str, Any] | None = None
    part: int | None = None

    def wire(self, parent_id: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "sheet",
            "operation": "submitLargeSheet",
            "status": self.status,
            "outcome": self.outcome,
            "part": self.part,
            "parentId": parent_id,
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
        }


class Answer(Exception):
    """An error answer of the stand-in server, raised by its handlers."""

    def __init__(
        self, status: int, message: str, *, key: str | None = None, retry_after: str | None = None
    ) -> None:
        super().__init__(message)
        error = {"message": message} | ({"key": key} if key else {})
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.response = httpx.Response(status, json={"errors": [error]}, headers=headers)


def _refused(job_id: str, status: str) -> Answer:
    return Answer(400, f"Job {job_id} is {status}; cannot complete", key="transition")


def _parts(completed: int, failed: int = 0, canceled: int = 0, open_: int = 0) -> list[str]:
    """Part statuses as the server spells them; open parts alternate ready and executing."""
    still_open = ["ready" if i % 2 == 0 else "executing" for i in range(open_)]
    return ["complete"] * completed + ["failed"] * failed + ["canceled"] * canceled + still_open


class FakeClient(Client):
    """A ``Client`` over a stand-in server that records the calls it is asked.

    ``race`` makes another settler end the parent just before our write. ``parts`` are
    the statuses of the parent's parts, as ``list_parts`` returns them.
    """

    def __init__(
        self, status: str = "executing", *, race: str | None = None, parts: list[str] = ()
    ) -> None:
        self.status = status
        self.race = race
        self.parts = list(parts)
        self.outcome: dict[str, Any] | None = None
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        super().__init__(
            STAND_IN_URL,
            "stand-in",
            retry=STAND_IN_RETRY,
            transport=httpx.MockTransport(self.answer),
        )

    def answer(self, request: httpx.Request) -> httpx.Response:
        """Route a request as the server does: the job, its parts, complete or fail."""
        path = request.url.path.removeprefix("/v1")
        job_id, _, verb = path.removeprefix("/jobs/").partition("/")
        try:
            if (request.method, path) == ("GET", "/jobs"):
                parent_id = request.url.params["parentId"]
                parts = [part.wire(parent_id) for part in self.serve_list_parts(parent_id)]
                return httpx.Response(200, json={"data": parts})
            if request.method == "GET" and not verb:
                job = self.serve_get_job(job_id)
            elif request.method == "POST" and verb in ("complete", "fail"):
                body = json.loads(request.content or b"{}")
                kwargs = {"message": (body.get("outcome") or {}).get("message")}
                status = "complete" if verb == "complete" else "failed"
                job = self._end(f"{verb}_job", job_id, status, kwargs)
            else:
                raise Answer(404, f"the stand-in has no {request.method} {path}")
        except Answer as answer:
            return answer.response
        return httpx.Response(200, json={"data": job.wire()})

    def serve_get_job(self, job_id: str) -> FakeJob:
        self.calls.append(("get_job", job_id, {}))
        return FakeJob(job_id, self.status, self.outcome)

    def serve_list_parts(self, parent_id: str) -> list[FakeJob]:
        self.calls.append(("list_parts", parent_id, {}))
        return [FakeJob(f"us_jb_part{i}", status, part=i) for i, status in enumerate(self.parts)]

    def _end(self, name: str, job_id: str, status: str, kwargs: dict[str, Any]) -> FakeJob:
        self.calls.append((name, job_id, kwargs))
        if self.race is not None:
            self.status = self.race
            raise _refused(job_id, self.race)
        if self.status in {"complete", "failed", "canceled"}:
            raise _refused(job_id, self.status)
        self.status = status
        self.outcome = {"message": kwargs.get("message")}
        return FakeJob(job_id, status, self.outcome)


class FakeAsyncClient(AsyncClient):
    """An ``AsyncClient`` over the same stand-in server as ``sync``."""

    def __init__(self, sync: FakeClient) -> None:
        self.sync = sync
        super().__init__(
            STAND_IN_URL,
            "stand-in",
            retry=STAND_IN_RETRY,
            transport=httpx.MockTransport(sync.answer),
        )


def _run(client: FakeClient, use_async: bool, frame: pd.DataFrame, **kw: Any) -> SettleResult:
    if use_async:
        return asyncio.run(asettle(FakeAsyncClient(client), "us_jb_p", frame, **kw))
    return settle(client, "us_jb_p", frame, **kw)


sync_and_async = pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])


@sync_and_async
def test_settle_completes_then_is_a_no_op(use_async: bool) -> None:
    client = FakeClient(parts=_parts(3))
    first = _run(client, use_async, _counts(3, 3))
    assert first == SettleResult("us_jb_p", "complete", True, "3 of 3 parts completed")
    assert client.calls == [
        ("get_job", "us_jb_p", {}),
        ("list_parts", "us_jb_p", {}),
        ("complete_job", "us_jb_p", {"message": "3 of 3 parts completed"}),
    ]
    second = _run(client, use_async, _counts(3, 3))
    assert second == SettleResult(
        "us_jb_p", "complete", False, "parent us_jb_p was already complete; unchanged"
    )
    assert client.calls[3:] == [("get_job", "us_jb_p", {})]


@sync_and_async
def test_settle_fails_with_counts(use_async: bool) -> None:
    client = FakeClient(parts=_parts(95, 3, 2))
    result = _run(client, use_async, _counts(100, 95, 3, 2))
    assert result == SettleResult("us_jb_p", "failed", True, "3 of 100 parts failed, 2 canceled")
    assert client.calls[-1] == (
        "fail_job",
        "us_jb_p",
        {"message": "3 of 100 parts failed, 2 canceled"},
    )


@sync_and_async
def test_settle_custom_message_and_outcomes_frame(use_async: bool) -> None:
    client = FakeClient(parts=_parts(2, 1, 1))
    result = _run(client, use_async, finished_outcomes(), message="see the notebook")
    assert (result.status, result.changed, result.message) == ("failed", True, "see the notebook")


@sync_and_async
def test_settle_refuses_parts_not_ended_and_sends_nothing(use_async: bool) -> None:
    client = FakeClient()
    with pytest.raises(ValueError, match=re.escape("2 parts have not ended; wait for the run")):
        _run(client, use_async, handmade_outcomes())
    assert client.calls == []


@sync_and_async
def test_settle_allow_unfinished_fails_the_parent(use_async: bool) -> None:
    client = FakeClient(parts=_parts(2, 1, 1, 2))
    result = _run(client, use_async, handmade_outcomes(), allow_unfinished=True)
    assert result == SettleResult(
        "us_jb_p", "failed", True, "1 of 6 parts failed, 1 canceled, 2 not ended"
    )


@sync_and_async
def test_settle_waits_for_a_run_handle(use_async: bool) -> None:
    # The run is still going when handed in; settle waits (or awaits) for it to end.
    running = StandInRun(handmade_outcomes(), then=finished_outcomes())
    client = FakeClient(parts=_parts(2, 1, 1))
    result = _run(client, use_async, running)  # type: ignore[arg-type]
    assert running.waited == 1
    assert result == SettleResult("us_jb_p", "failed", True, "1 of 4 parts failed, 1 canceled")


@sync_and_async
def test_settle_a_run_that_ended_with_parts_not_ended(use_async: bool) -> None:
    # wait() returned, yet some parts never ended (a frame edited by hand, a stand-in run):
    # the same refusal as for a frame.
    client = FakeClient()
    with pytest.raises(ValueError, match="2 parts have not ended"):
        _run(client, use_async, StandInRun(handmade_outcomes()))  # type: ignore[arg-type]
    assert client.calls == []


def test_settle_bad_options_are_refused_before_waiting_for_the_run() -> None:
    running = StandInRun(handmade_outcomes(), then=finished_outcomes())
    with pytest.raises(ValueError, match="allow_unfinished must be True or False"):
        settle(FakeClient(), "us_jb_p", running, allow_unfinished=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="message must be a string or None"):
        settle(FakeClient(), "us_jb_p", running, message=1)  # type: ignore[arg-type]
    assert running.waited == 0


def test_asettle_needs_an_awaitable_run() -> None:
    class BlockingOnly:
        outcomes = finished_outcomes()

        def wait(self) -> pd.DataFrame:
            return self.outcomes

    client = FakeAsyncClient(FakeClient())
    with pytest.raises(TypeError, match="cannot be awaited"):
        asyncio.run(asettle(client, "us_jb_p", BlockingOnly()))  # type: ignore[arg-type]


@sync_and_async
def test_settle_lost_race_reports_unchanged(use_async: bool) -> None:
    client = FakeClient(race="failed", parts=_parts(3))
    result = _run(client, use_async, _counts(3, 3))
    assert result == SettleResult(
        "us_jb_p", "failed", False, "parent us_jb_p was already failed; unchanged"
    )
    assert [c[0] for c in client.calls] == ["get_job", "list_parts", "complete_job", "get_job"]


@sync_and_async
def test_settle_refusal_for_another_reason_is_raised(use_async: bool) -> None:
    # Refused, yet the parent has not ended: not a lost race, so not hidden.
    client = FakeClient(race="created", parts=_parts(3))
    with pytest.raises(InvalidTransitionError, match="cannot complete"):
        _run(client, use_async, _counts(3, 3))


@sync_and_async
def test_settle_other_errors_propagate(use_async: bool) -> None:
    class Missing(FakeClient):
        def serve_get_job(self, job_id: str) -> FakeJob:
            raise Answer(404, "no such job")

    with pytest.raises(NotFoundError, match="no such job"):
        _run(Missing(), use_async, _counts(1, 1))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: settle(FakeClient(), "", _counts(1, 1)),
            ValueError,
            "parent_job_id must be a non-empty string, got ''",
        ),
        (
            lambda: settle(FakeClient(), None, _counts(1, 1)),  # type: ignore[arg-type]
            ValueError,
            "parent_job_id must be a non-empty string, got None",
        ),
        (
            lambda: settle(object(), "p", _counts(1, 1)),
            TypeError,
            "settle() needs a client with get_job, list_parts, complete_job and fail_job, "
            "got object",
        ),
        (
            lambda: settle(FakeAsyncClient(FakeClient()), "p", _counts(1, 1)),
            TypeError,
            "use asettle() with an AsyncClient",
        ),
        (
            lambda: asyncio.run(asettle(FakeClient(), "p", _counts(1, 1))),
            TypeError,
            "use settle()",
        ),
        (
            lambda: settle(FakeClient(), "p", pd.DataFrame({"x": [1]})),
            ValueError,
            "expected a summary frame",
        ),
    ],
)
def test_settle_bad_arguments(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_settle_bad_arguments_send_nothing() -> None:
    client = FakeClient()
    with pytest.raises(ValueError):
        settle(client, "p", pd.DataFrame({"x": [1]}))
    assert client.calls == []


def test_settle_result_repr() -> None:
    result = SettleResult("us_jb_p", "failed", True, "3 of 100 parts failed, 2 canceled")
    assert repr(result) == (
        "SettleResult(job_id='us_jb_p', status='failed', changed=True, "
        "message='3 of 100 parts failed, 2 canceled')"
    )
    with pytest.raises(AttributeError):
        result.changed = False  # type: ignore[misc]


def test_docstring_examples() -> None:
    result = doctest.testmod(splitkit.outcomes, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("module", [splitkit.summary, splitkit.settlement])
def test_docstring_examples_of_summary_and_settle(module: Any) -> None:
    # The examples moved with their functions when outcomes.py was split.
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# --- the parent a frame belongs to ----------------------------------------------------------


def test_frame_parent_id_from_attrs_or_column() -> None:
    frame = finished_outcomes()
    assert frame_parent_id(frame) is None  # made by hand: unknown
    frame.attrs["parent_id"] = "us_jb_a"
    assert frame_parent_id(frame) == "us_jb_a"
    # attrs survive filtering, column selection and sorting ...
    narrowed = frame[frame["status"] == "completed"][["status", "records"]].sort_values("records")
    assert frame_parent_id(narrowed) == "us_jb_a"
    # ... merge drops them, and then the column carries the id.
    with_column = frame.assign(parent_id="us_jb_a")
    merged = with_column.merge(pd.DataFrame({"part": [0, 1, 2, 3], "x": 1}), on="part")
    assert merged.attrs == {}
    assert frame_parent_id(merged) == "us_jb_a"


def test_frame_parent_id_refuses_mixed_parents() -> None:
    a = finished_outcomes().assign(parent_id="us_jb_a")
    b = finished_outcomes().assign(parent_id="us_jb_b")
    mixed = pd.concat([a, b])
    with pytest.raises(ValueError, match=re.escape("mixes parts of 2 parents (us_jb_a, us_jb_b)")):
        frame_parent_id(mixed)
    with pytest.raises(ValueError, match="mixes parts of 2 parents"):
        summarize(mixed)
    a.attrs["parent_id"] = "us_jb_b"  # attrs and column disagree
    with pytest.raises(ValueError, match="mixes parts of 2 parents"):
        frame_parent_id(a)


@pytest.mark.parametrize("bad", [3, "", ["us_jb_a"]])
def test_frame_parent_id_bad_attrs(bad: object) -> None:
    frame = finished_outcomes()
    frame.attrs["parent_id"] = bad
    with pytest.raises(ValueError, match=re.escape("frame.attrs['parent_id'] must be a job id")):
        frame_parent_id(frame)


def test_summarize_carries_the_parent_id() -> None:
    frame = finished_outcomes()
    frame.attrs["parent_id"] = "us_jb_a"
    summary = summarize(frame)
    assert summary["parent_id"].tolist() == ["us_jb_a"]
    assert summary.attrs["parent_id"] == "us_jb_a"
    # Summaries concatenated to compare runs keep the id in their column.
    runs = pd.concat([summary, summary], keys=["first", "second"])
    assert frame_parent_id(runs) == "us_jb_a"
    # A bare payload has no parent: missing, until one is given.
    bare = summarize(parts_completed=COUNTS_PAYLOAD)
    assert bare["parent_id"].isna().all()
    assert "parent_id" not in bare.attrs
    assert frame_parent_id(bare) is None
    labeled = summarize(parts_completed=COUNTS_PAYLOAD, parent_id="us_jb_x")
    assert frame_parent_id(labeled) == "us_jb_x"
    # A whole event names its job.
    event = {"topic": "job:parts-completed", "context": {"jobId": "us_jb_e"}}
    assert frame_parent_id(summarize(parts_completed=event | {"payload": COUNTS_PAYLOAD})) == (
        "us_jb_e"
    )


def test_summarize_refuses_a_parent_id_that_contradicts_the_data() -> None:
    frame = finished_outcomes()
    frame.attrs["parent_id"] = "us_jb_a"
    with pytest.raises(
        ValueError,
        match=re.escape("parent_id is 'us_jb_x' but the outcomes are of parent 'us_jb_a'"),
    ):
        summarize(frame, parent_id="us_jb_x")
    event = {"context": {"jobId": "us_jb_e"}, "payload": COUNTS_PAYLOAD}
    with pytest.raises(ValueError, match="but the event is of parent 'us_jb_e'"):
        summarize(parts_completed=event, parent_id="us_jb_x")
    with pytest.raises(ValueError, match="parent_id must be a job id string or None, got ''"):
        summarize(frame, parent_id="")


# --- settle decides from the server ---------------------------------------------------------


@sync_and_async
def test_settle_refuses_a_frame_of_another_parent_and_sends_nothing(use_async: bool) -> None:
    client = FakeClient(parts=_parts(3))
    other = summarize(parts_completed={"parts": {"total": 3, "completed": 3}}, parent_id="us_jb_b")
    message = "the frame handed in is of parent us_jb_b, not us_jb_p"
    with pytest.raises(ValueError, match=re.escape(message)):
        _run(client, use_async, other)
    outcomes = finished_outcomes().assign(parent_id="us_jb_b")
    with pytest.raises(ValueError, match=re.escape(message)):
        _run(client, use_async, outcomes, allow_unfinished=True)  # no escape from this one
    assert client.calls == []


@sync_and_async
def test_settle_refuses_the_run_of_another_parent_before_waiting(use_async: bool) -> None:
    running = StandInRun(handmade_outcomes(), then=finished_outcomes())
    running.parent_id = "us_jb_b"  # type: ignore[attr-defined]
    client = FakeClient(parts=_parts(2, 1, 1))
    message = "the run handed in is of parent us_jb_b, not us_jb_p"
    with pytest.raises(ValueError, match=re.escape(message)):
        _run(client, use_async, running)  # type: ignore[arg-type]
    assert running.waited == 0
    assert client.calls == []


@sync_and_async
def test_settle_refuses_while_the_server_has_parts_not_ended(use_async: bool) -> None:
    # The frame of a run that has not listed its parts yet: 0 parts, nothing pending.
    client = FakeClient(parts=_parts(5, open_=3))
    message = (
        "parent us_jb_p has 3 of 8 parts not ended on the server (1 executing, 2 ready); "
        "the frame handed in counts 0 parts, 0 not ended"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        _run(client, use_async, empty_outcomes())
    assert [c[0] for c in client.calls] == ["get_job", "list_parts"]
    assert client.status == "executing"


@sync_and_async
def test_settle_refuses_counts_that_differ_from_the_server(use_async: bool) -> None:
    client = FakeClient(parts=_parts(1, 1, 1))
    with pytest.raises(ValueError) as refused:
        _run(client, use_async, _counts(3, 3))
    assert (
        "the counts handed in do not match the parts of parent us_jb_p on the server: "
        "frame total=3 completed=3 failed=0 canceled=0 pending=0; "
        "server total=3 completed=1 failed=1 canceled=1 pending=0"
    ) in str(refused.value)
    assert "nothing was changed" in str(refused.value)
    assert [c[0] for c in client.calls] == ["get_job", "list_parts"]
    assert client.status == "executing"


@sync_and_async
def test_settle_allow_unfinished_still_compares_counts(use_async: bool) -> None:
    # Allowed: parts not ended on the server, as many as the frame says.
    client = FakeClient(parts=_parts(8, 1, 0, 1))
    result = _run(client, use_async, _counts(10, 8, 1), allow_unfinished=True)
    assert result == SettleResult(
        "us_jb_p", "failed", True, "1 of 10 parts failed, 0 canceled, 1 not ended"
    )
    # Refused: the frame's view is not the server's.
    client = FakeClient(parts=_parts(7, 1, 0, 2))
    with pytest.raises(ValueError, match="do not match the parts of parent us_jb_p"):
        _run(client, use_async, _counts(10, 8, 1), allow_unfinished=True)
    assert client.status == "executing"


# --- settle after a doubtful answer ---------------------------------------------------------


def _post_error(kind: str, job_id: str) -> Exception:
    """What the client gets for a complete/fail: no answer, or an error answer."""
    if kind == "lost":
        return httpx.ReadError(f"the answer to POST /jobs/{job_id}/complete was lost")
    if kind == "429":
        return Answer(429, "slow down", retry_after="0")
    return Answer(int(kind), "Bad Gateway")


class DoubtfulClient(FakeClient):
    """Answers each complete/fail as ``answers`` says, then normally.

    ``"<kind> after"``: processed, then the error ``kind`` (lost, 500, 502, ...);
    ``"<kind> before"``: not processed, the error; ``"other <kind>"``: another settler
    ends the parent its own way, then the error; ``"late <kind>"``: the error now, the
    processing just before the next request arrives (a slow server behind a gateway).
    """

    def __init__(self, answers: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answers = list(answers)
        self.late: tuple[str, dict[str, Any]] | None = None

    def _end(self, name: str, job_id: str, status: str, kwargs: dict[str, Any]) -> FakeJob:
        if self.late is not None:
            self.status, self.outcome = self.late
            self.late = None
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "ok":
            return super()._end(name, job_id, status, kwargs)
        first, second = answer.split()
        if first == "other":
            self.calls.append((name, job_id, kwargs))
            self.status, self.outcome = "failed", {"message": "the other settler"}
            raise _post_error(second, job_id)
        if first == "late":
            self.calls.append((name, job_id, kwargs))
            self.late = (status, {"message": kwargs.get("message")})
            raise _post_error(second, job_id)
        if second == "after":
            super()._end(name, job_id, status, kwargs)
        else:
            self.calls.append((name, job_id, kwargs))
        raise _post_error(first, job_id)


@sync_and_async
@pytest.mark.parametrize("kind", ["lost", "500", "502", "504"])
def test_settle_reports_its_own_change_when_the_answer_is_lost(use_async: bool, kind: str) -> None:
    client = DoubtfulClient([f"{kind} after"], parts=_parts(3))
    result = _run(client, use_async, _counts(3, 3))
    assert result == SettleResult("us_jb_p", "complete", True, "3 of 3 parts completed")
    assert [c[0] for c in client.calls] == ["get_job", "list_parts", "complete_job", "get_job"]


@sync_and_async
@pytest.mark.parametrize("kind", ["lost", "429", "503"])
def test_settle_sends_again_when_the_parent_is_still_open(use_async: bool, kind: str) -> None:
    client = DoubtfulClient([f"{kind} before"], parts=_parts(2, 1))
    result = _run(client, use_async, _counts(3, 2, 1))
    assert result == SettleResult("us_jb_p", "failed", True, "1 of 3 parts failed, 0 canceled")
    assert [c[0] for c in client.calls] == [
        "get_job",
        "list_parts",
        "fail_job",
        "get_job",
        "fail_job",
    ]


@sync_and_async
def test_settle_gives_up_after_a_bounded_number_of_sends(use_async: bool) -> None:
    client = DoubtfulClient(["502 before"] * 10, parts=_parts(3))
    with pytest.raises(ServerError, match="502: Bad Gateway"):
        _run(client, use_async, _counts(3, 3))
    assert [c[0] for c in client.calls].count("complete_job") == SETTLE_SENDS
    assert client.status == "executing"


@sync_and_async
@pytest.mark.parametrize(
    ("parts", "summary"),
    [
        (_parts(3), _counts(3, 3)),  # we complete; the other settler failed it
        (_parts(2, 1), _counts(3, 2, 1)),  # we fail too, with another message: not ours
    ],
    ids=["other-status", "other-message"],
)
def test_settle_after_a_doubtful_answer_reports_another_settlers_end(
    use_async: bool, parts: list[str], summary: pd.DataFrame
) -> None:
    client = DoubtfulClient(["other 502"], parts=parts)
    result = _run(client, use_async, summary)
    assert result == SettleResult(
        "us_jb_p", "failed", False, "parent us_jb_p was already failed; unchanged"
    )


@sync_and_async
def test_settle_a_late_processed_send_then_refused_is_our_change(use_async: bool) -> None:
    # 504 while the parent still reads open; our first send lands before the second,
    # which is refused: the parent ended as we asked, so the change is ours.
    client = DoubtfulClient(["late 504"], parts=_parts(3))
    result = _run(client, use_async, _counts(3, 3))
    assert result == SettleResult("us_jb_p", "complete", True, "3 of 3 parts completed")
    assert [c[0] for c in client.calls] == [
        "get_job",
        "list_parts",
        "complete_job",
        "get_job",
        "complete_job",
        "get_job",
    ]
