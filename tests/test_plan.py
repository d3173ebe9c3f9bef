"""plan_parts(), what_if() (splitkit.lab.whatif) and estimate_costs(): pure, so exact values."""

from __future__ import annotations

import doctest
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import splitkit.plan
from splitkit.lab.whatif import WHAT_IF_COLUMNS, what_if
from splitkit.plan import (
    MAX_PAGE_SIZE,
    PLAN_COLUMNS,
    PartCosts,
    estimate_costs,
    plan_parts,
)

# --- plan_parts -----------------------------------------------------------------------------


def test_plan_exact_values_with_a_short_last_part() -> None:
    plan = plan_parts(10, batch_size=4)
    expected = pd.DataFrame(
        {
            "part": [0, 1, 2],
            "page_number": [1, 2, 3],
            "page_size": [4, 4, 4],
            "first_record": [0, 4, 8],
            "last_record": [3, 7, 9],
            "records": [4, 4, 2],
        },
        dtype="int64",
    )
    pd.testing.assert_frame_equal(plan, expected)
    assert plan.attrs == {"total": 10, "batch_size": 4}


def test_plan_exact_multiple_has_no_short_part() -> None:
    plan = plan_parts(3_000, batch_size=1_000)
    assert plan["records"].tolist() == [1_000, 1_000, 1_000]
    assert plan["last_record"].iloc[-1] == 2_999


@pytest.mark.parametrize(
    ("total", "parts", "batch", "records"),
    [
        (10, 4, 3, [3, 3, 3, 1]),
        (10, 6, 2, [2, 2, 2, 2, 2]),  # fewer parts than asked: page addressing wins
        (10, 5, 2, [2, 2, 2, 2, 2]),
        (10, 1, 10, [10]),
        (10, 10, 1, [1] * 10),
        (10, 50, 1, [1] * 10),  # more parts than records: one record each
        (1, 3, 1, [1]),
    ],
)
def test_plan_by_part_count(total: int, parts: int, batch: int, records: list[int]) -> None:
    plan = plan_parts(total, parts=parts)
    assert plan.attrs == {"total": total, "batch_size": batch, "parts_requested": parts}
    assert plan["records"].tolist() == records
    assert (plan["page_size"] == batch).all()


@pytest.mark.parametrize("kwargs", [{"batch_size": 1_000}, {"parts": 4}])
def test_plan_zero_records_is_an_empty_frame_with_the_schema(kwargs: dict[str, int]) -> None:
    plan = plan_parts(0, **kwargs)
    assert plan.empty
    assert list(plan.columns) == PLAN_COLUMNS
    assert (plan.dtypes == "int64").all()
    assert plan.attrs["total"] == 0
    assert plan.attrs["batch_size"] >= 1


def test_plan_batch_above_total_is_one_part() -> None:
    plan = plan_parts(7, batch_size=1_000)
    assert plan.to_dict("records") == [
        {
            "part": 0,
            "page_number": 1,
            "page_size": 1_000,
            "first_record": 0,
            "last_record": 6,
            "records": 7,
        }
    ]


def test_plan_accepts_numpy_integers_and_stores_python_ints() -> None:
    plan = plan_parts(np.int64(10), batch_size=np.int32(4))
    assert len(plan) == 3
    assert type(plan.attrs["total"]) is int
    assert type(plan.attrs["batch_size"]) is int
    assert plan_parts(np.uint16(10), parts=np.int8(2)).attrs["batch_size"] == 5


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((-1,), {"batch_size": 10}, "total must be a non-negative integer, got -1"),
        ((10.0,), {"batch_size": 10}, "total must be a non-negative integer, got 10.0"),
        (("10",), {"batch_size": 10}, "total must be a non-negative integer, got '10'"),
        ((True,), {"batch_size": 10}, "total must be a non-negative integer, got True"),
        ((None,), {"batch_size": 10}, "total must be a non-negative integer, got None"),
        ((10,), {"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ((10,), {"batch_size": -5}, "batch_size must be a positive integer, got -5"),
        ((10,), {"batch_size": 2.5}, "batch_size must be a positive integer, got 2.5"),
        ((10,), {"batch_size": True}, "batch_size must be a positive integer, got True"),
        ((10,), {"batch_size": np.True_}, "batch_size must be a positive integer, got"),
        ((10,), {"parts": 0}, "parts must be a positive integer, got 0"),
        ((10,), {"parts": "3"}, "parts must be a positive integer, got '3'"),
        (
            (10,),
            {},
            "plan_parts needs exactly one of batch_size or parts, "
            "got batch_size=None and parts=None",
        ),
        (
            (10,),
            {"batch_size": 2, "parts": 3},
            "plan_parts needs exactly one of batch_size or parts, got batch_size=2 and parts=3",
        ),
    ],
)
def test_plan_bad_arguments(args: tuple[object], kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        plan_parts(*args, **kwargs)  # type: ignore[arg-type]


# Totals up to 10**8 with batch sizes keeping the plan at most 10,000 parts (and each
# part within one records page).
_total_and_batch = st.integers(0, 10**8).flatmap(
    lambda total: st.tuples(st.just(total), st.integers(max(1, total // 10_000), MAX_PAGE_SIZE))
)


@given(_total_and_batch)
def test_plan_invariants(total_and_batch: tuple[int, int]) -> None:
    total, batch = total_and_batch
    plan = plan_parts(total, batch_size=batch)
    assert len(plan) == math.ceil(total / batch)
    assert int(plan["records"].sum()) == total
    if total:
        assert plan["first_record"].iloc[0] == 0
        assert plan["last_record"].iloc[-1] == total - 1
        # Contiguous, non-overlapping, and every part is exactly one page of the records API.
        assert (plan["first_record"].iloc[1:].to_numpy() == plan["last_record"].iloc[:-1] + 1).all()
        assert (plan["first_record"] == (plan["page_number"] - 1) * plan["page_size"]).all()
        assert (plan["records"].iloc[:-1] == batch).all()
        assert 1 <= plan["records"].iloc[-1] <= batch


# Part counts from the fewest that fit a records page up to 10,000.
_total_and_parts = st.integers(0, 10**6).flatmap(
    lambda total: st.tuples(st.just(total), st.integers(max(1, -(-total // MAX_PAGE_SIZE)), 10**4))
)


@given(_total_and_parts)
def test_plan_by_parts_never_exceeds_the_request(total_and_parts: tuple[int, int]) -> None:
    total, parts = total_and_parts
    plan = plan_parts(total, parts=parts)
    assert plan.attrs["batch_size"] <= MAX_PAGE_SIZE
    assert len(plan) <= parts
    assert int(plan["records"].sum()) == total


def test_the_records_page_limit_is_10_000() -> None:
    assert MAX_PAGE_SIZE == 10_000
    plan = plan_parts(25_000, batch_size=MAX_PAGE_SIZE)
    assert plan["records"].tolist() == [10_000, 10_000, 5_000]


@pytest.mark.parametrize(
    ("total", "kwargs", "message"),
    [
        (
            1_000,
            {"batch_size": 12_000},
            "batch_size must be at most 10,000 (the records page limit), got 12000",
        ),
        (
            100,
            {"batch_size": 10_001},
            "batch_size must be at most 10,000 (the records page limit), got 10001",
        ),
        (
            24_000,
            {"parts": 2},
            "parts=2 gives 12,000 records per part, above the records page limit of 10,000; "
            "use parts >= 3",
        ),
        (
            10_001,
            {"parts": 1},
            "parts=1 gives 10,001 records per part, above the records page limit of 10,000; "
            "use parts >= 2",
        ),
    ],
)
def test_plan_refuses_parts_larger_than_a_records_page(
    total: int, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        plan_parts(total, **kwargs)


@given(total=st.integers(10_001, 10**9))
def test_the_suggested_part_count_fits_a_page(total: int) -> None:
    with pytest.raises(ValueError, match=r"use parts >= (\d+)$") as info:
        plan_parts(total, parts=1)
    suggested = int(str(info.value).rsplit(" ", 1)[-1])
    assert plan_parts(total, parts=suggested).attrs["batch_size"] <= MAX_PAGE_SIZE
    with pytest.raises(ValueError, match="above the records page limit"):
        plan_parts(total, parts=suggested - 1)


def test_plan_is_vectorized_for_large_totals() -> None:
    # 100M records at batch 1,000: 100,000 parts (no timed assertion, see bench/).
    plan = plan_parts(100_000_000, batch_size=1_000)
    assert len(plan) == 100_000
    assert plan["page_number"].iloc[-1] == 100_000
    assert plan["last_record"].iloc[-1] == 99_999_999
    assert (plan.dtypes == "int64").all()


# --- what_if --------------------------------------------------------------------------------


def test_what_if_exact_values() -> None:
    frame = what_if(
        10, batch_sizes=[3, 20], concurrencies=[1, 2, 3], per_part_overhead_s=1, per_record_s=0.1
    )
    assert list(frame.columns) == WHAT_IF_COLUMNS
    assert frame["batch_size"].tolist() == [3, 3, 3, 20, 20, 20]
    assert frame["concurrency"].tolist() == [1, 2, 3, 1, 2, 3]
    assert frame["parts"].tolist() == [4, 4, 4, 1, 1, 1]
    assert frame["waves"].tolist() == [4, 2, 2, 1, 1, 1]
    # batch 3: full parts 1.3 s, the short part (1 record) 1.1 s.
    # c=1: 3 × 1.3 + 1.1; c=2: the short part shares its wave with a full one;
    # c=3: the short part is alone in wave 2. Batch 20 above total: one 10-record part.
    np.testing.assert_allclose(frame["part_s"], [1.3, 1.3, 1.3, 2.0, 2.0, 2.0])
    np.testing.assert_allclose(frame["wall_s"], [5.0, 2.6, 2.4, 2.0, 2.0, 2.0])
    np.testing.assert_allclose(frame["records_per_s"], 10 / frame["wall_s"])
    assert frame[["batch_size", "concurrency", "parts", "waves"]].dtypes.eq("int64").all()
    assert frame[["part_s", "wall_s", "records_per_s"]].dtypes.eq("float64").all()
    assert frame.attrs == {
        "total": 10,
        "per_part_overhead_s": 1.0,
        "per_record_s": 0.1,
        "costs_estimated": False,
    }


def test_what_if_accepts_single_values() -> None:
    frame = what_if(
        10_000, batch_sizes=1_000, concurrencies=4, per_part_overhead_s=0.5, per_record_s=0.001
    )
    assert frame[["parts", "waves"]].iloc[0].tolist() == [10, 3]
    assert frame["wall_s"].iloc[0] == pytest.approx(4.5)


def test_what_if_zero_records_and_zero_costs() -> None:
    empty = what_if(0, batch_sizes=[5], concurrencies=[2], per_part_overhead_s=1, per_record_s=1)
    assert empty[["parts", "waves"]].iloc[0].tolist() == [0, 0]
    assert empty["wall_s"].iloc[0] == 0.0
    assert np.isnan(empty["part_s"].iloc[0])
    assert np.isnan(empty["records_per_s"].iloc[0])
    free = what_if(5, batch_sizes=[5], concurrencies=[2], per_part_overhead_s=0, per_record_s=0)
    assert free["wall_s"].iloc[0] == 0.0
    assert free["records_per_s"].iloc[0] == math.inf


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_sizes": []}, "batch_sizes must not be empty"),
        ({"batch_sizes": [100, 0]}, "batch_sizes must be a positive integer, got 0"),
        ({"batch_sizes": "100"}, "batch_sizes must be a positive integer or a list of them"),
        ({"batch_sizes": None}, "batch_sizes must be a positive integer or a list of them"),
        (
            {"batch_sizes": [1_000, 12_000]},
            "batch_sizes must be at most 10,000 (the records page limit), got 12000",
        ),
        (
            {"batch_sizes": 20_000},
            "batch_sizes must be at most 10,000 (the records page limit), got 20000",
        ),
        ({"concurrencies": [True]}, "concurrencies must be a positive integer, got True"),
        ({"concurrencies": -1}, "concurrencies must be a positive integer, got -1"),
        (
            {"per_part_overhead_s": -1.0},
            "per_part_overhead_s must be a non-negative number of seconds, got -1.0",
        ),
        ({"per_record_s": math.nan}, "per_record_s must be a non-negative number of seconds"),
        ({"per_record_s": "0.1"}, "per_record_s must be a non-negative number of seconds"),
        (
            {"per_record_s": None},
            "what_if needs per_part_overhead_s and per_record_s, or outcomes",
        ),
        (
            {"per_record_s": None, "per_part_overhead_s": None},
            "what_if needs per_part_overhead_s and per_record_s, or outcomes",
        ),
    ],
)
def test_what_if_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "batch_sizes": [100],
        "concurrencies": [4],
        "per_part_overhead_s": 0.5,
        "per_record_s": 0.01,
    } | kwargs
    with pytest.raises(ValueError, match=re.escape(message)):
        what_if(1_000, **arguments)  # type: ignore[arg-type]


def test_what_if_bad_total() -> None:
    with pytest.raises(ValueError, match=re.escape("total must be a non-negative integer, got -3")):
        what_if(-3, batch_sizes=[1], concurrencies=[1], per_part_overhead_s=0, per_record_s=0)


# --- estimate_costs -------------------------------------------------------------------------


def _synthetic_outcomes(
    overhead: float, per_record: float, *, batch_sizes: tuple[int, ...] = (1_000, 250)
) -> pd.DataFrame:
    """Outcomes of runs at a few batch sizes with known costs, a little noise, and
    failed parts whose durations (timeouts) must not enter the fit."""
    rng = np.random.default_rng(7)
    frames = []
    for batch in batch_sizes:
        plan = plan_parts(10_500, batch_size=batch)
        noise = rng.normal(0, 0.002, len(plan))
        frames.append(
            pd.DataFrame(
                {
                    "status": "completed",
                    "records": plan["records"],
                    "duration_s": overhead + per_record * plan["records"] + noise,
                }
            )
        )
    failed = pd.DataFrame({"status": "failed", "records": [1_000] * 3, "duration_s": [300.0] * 3})
    return pd.concat([*frames, failed], ignore_index=True)


def test_estimate_costs_recovers_known_costs() -> None:
    costs = estimate_costs(_synthetic_outcomes(0.25, 0.002))
    assert costs.estimated
    assert costs.per_part_overhead_s == pytest.approx(0.25, abs=0.005)
    assert costs.per_record_s == pytest.approx(0.002, rel=0.01)


def test_estimate_costs_from_a_single_plan_uses_the_short_part() -> None:
    # One plan has two distinct record counts (full parts and the short last one):
    # enough for the fit.
    costs = estimate_costs(_synthetic_outcomes(0.4, 0.001, batch_sizes=(1_000,)))
    assert costs.per_part_overhead_s == pytest.approx(0.4, abs=0.02)
    assert costs.per_record_s == pytest.approx(0.001, rel=0.03)


def test_estimate_costs_with_one_record_count_falls_back_to_mean_rate() -> None:
    frame = pd.DataFrame(
        {"status": ["completed"] * 3, "records": [100] * 3, "duration_s": [1.0, 2.0, 3.0]}
    )
    with pytest.warns(UserWarning, match="cannot be separated"):
        assert estimate_costs(frame) == PartCosts(0.0, 0.02, estimated=True)


def test_estimate_costs_holds_a_given_cost_fixed() -> None:
    outcomes = _synthetic_outcomes(0.25, 0.002)
    per_record = estimate_costs(outcomes, per_part_overhead_s=0.25).per_record_s
    assert per_record == pytest.approx(0.002, rel=0.01)
    overhead = estimate_costs(outcomes, per_record_s=0.002).per_part_overhead_s
    assert overhead == pytest.approx(0.25, abs=0.005)
    assert estimate_costs(outcomes, per_part_overhead_s=1, per_record_s=2) == PartCosts(1.0, 2.0)


def test_estimate_costs_clamps_negative_estimates() -> None:
    # Durations that fall with size would fit a negative per-record cost.
    frame = pd.DataFrame(
        {"status": ["complete"] * 2, "records": [10, 1_000], "duration_s": [2.0, 1.0]}
    )
    assert estimate_costs(frame) == PartCosts(1.5, 0.0, estimated=True)
    # A line through (100, 0.1) and (1000, 1.9) crosses zero at a negative overhead.
    frame = pd.DataFrame(
        {"status": ["completed"] * 2, "records": [100, 1_000], "duration_s": [0.1, 1.9]}
    )
    costs = estimate_costs(frame)
    assert costs.per_part_overhead_s == 0.0
    assert costs.per_record_s == pytest.approx((100 * 0.1 + 1_000 * 1.9) / (100**2 + 1_000**2))


@pytest.mark.parametrize(
    ("frame", "error", "message"),
    [
        ([1, 2], TypeError, "outcomes must be a pandas DataFrame, got list"),
        (
            pd.DataFrame({"status": ["completed"], "records": [1]}),
            ValueError,
            "outcomes is missing column(s) ['duration_s']",
        ),
        (
            pd.DataFrame({"status": ["failed"], "records": [1], "duration_s": [1.0]}),
            ValueError,
            "outcomes has no completed part with records and duration_s",
        ),
        (
            pd.DataFrame({"status": ["completed"], "records": [0], "duration_s": [1.0]}),
            ValueError,
            "outcomes only has completed parts with 0 records",
        ),
    ],
)
def test_estimate_costs_bad_outcomes(frame: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        estimate_costs(frame)  # type: ignore[arg-type]


def test_what_if_from_outcomes_uses_the_estimated_costs() -> None:
    frame = what_if(
        100_000,
        batch_sizes=[500, 1_000, 5_000],
        concurrencies=[1, 8],
        outcomes=_synthetic_outcomes(0.25, 0.002),
    )
    assert frame.attrs["costs_estimated"] is True
    assert frame.attrs["per_part_overhead_s"] == pytest.approx(0.25, abs=0.005)
    assert frame.attrs["per_record_s"] == pytest.approx(0.002, rel=0.01)
    # Bigger batches pay the overhead less often; more workers finish sooner.
    serial = frame[frame["concurrency"] == 1].set_index("batch_size")["wall_s"]
    assert serial.is_monotonic_decreasing
    assert (frame[frame["concurrency"] == 8]["wall_s"].to_numpy() < serial.to_numpy()).all()


def test_what_if_given_cost_wins_over_the_estimate() -> None:
    frame = what_if(
        1_000,
        batch_sizes=[100],
        concurrencies=[1],
        per_record_s=0.002,
        outcomes=_synthetic_outcomes(0.25, 0.002),
    )
    assert frame.attrs["per_record_s"] == 0.002
    assert frame.attrs["per_part_overhead_s"] == pytest.approx(0.25, abs=0.005)


def test_docstring_examples() -> None:
    result = doctest.testmod(splitkit.plan, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# -- costs from runs of one batch size --------------------------------------------------------


def _runs(records: list[int], seconds: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"status": ["completed"] * len(records), "records": records, "duration_s": seconds}
    )


def test_costs_from_a_single_batch_size_say_they_cannot_be_separated() -> None:
    runs = _runs([500] * 4, [1.0, 1.2, 0.9, 1.1])
    with pytest.warns(UserWarning, match="cannot be separated") as caught:
        frame = what_if(10_000, batch_sizes=[100, 1_000], concurrencies=2, outcomes=runs)
    (warning,) = caught
    message = str(warning.message)
    assert "500 records" in message  # what the runs had
    assert "per_part_overhead_s=" in message  # a way out: give the overhead
    assert "another batch size" in message  # the other: measure a second size
    assert warning.filename == __file__  # points at the caller's line
    assert frame.attrs["per_part_overhead_s"] == 0.0
    with pytest.warns(UserWarning, match="cannot be separated") as direct:
        estimate_costs(runs)
    assert direct[0].filename == __file__


def test_costs_from_two_batch_sizes_do_not_warn() -> None:
    runs = _runs([500, 500, 1_000, 1_000], [1.0, 1.1, 1.9, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        what_if(10_000, batch_sizes=1_000, concurrencies=2, outcomes=runs)
        estimate_costs(runs)
        estimate_costs(_runs([500] * 3, [1.0] * 3), per_part_overhead_s=0.2)  # given: no guess
