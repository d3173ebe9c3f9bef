"""what_if() is the cost model's prediction in plan order: the same numbers as
`CostModel.predict` for the same inputs, the rate limit a throughput cap, memory per part.

Outcome frames here are made to known costs (what_if is pure); one test fits real runs.
"""

from __future__ import annotations

import doctest
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

import splitkit as sk
import splitkit.lab.whatif
from splitkit.lab import CostModel, Measured
from splitkit.lab.whatif import WHAT_IF_COLUMNS
from splitkit.server import EmbeddedServer

SIZES = [100, 250, 1_000]
WORKERS = [2, 8]
COMPARED = [
    "parts",
    "waves",
    "requests",
    "part_s",
    "wall_s",
    "wall_low_s",
    "wall_high_s",
    "peak_memory_bytes",
    "binding",
]


def outcomes() -> pd.DataFrame:
    """Parts of 100 and 400 records: 30 ms of requests + 0.01 ms a record of page, a
    handler of 5 ms + 0.2 ms a record, 1 kB + 2 kB a record of page and of peak."""
    rng = np.random.default_rng(3)
    records = np.array([100] * 12 + [400] * 12)
    handler = 0.005 + 0.0002 * records + rng.normal(0, 0.002, records.size)
    requests = 0.03 + 0.00001 * records + rng.normal(0, 0.002, records.size)
    peak = pd.array([2_000 * r if i % 2 else None for i, r in enumerate(records)], "Int64")
    return pd.DataFrame(
        {
            "status": "completed",
            "records": records,
            "duration_s": handler + requests,
            "handler_s": handler,
            "page_bytes": 1_000 + 2_000 * records,
            "peak_alloc_bytes": peak,
        }
    )


def by_choice(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index(["batch_size", "concurrency"]).sort_index()[COMPARED]


def test_what_if_from_outcomes_is_the_cost_models_prediction() -> None:
    frame = what = sk.what_if(50_000, batch_sizes=SIZES, concurrencies=WORKERS, outcomes=outcomes())
    model = CostModel.fit([Measured(outcomes(), 1, float("nan"))], seed=0)
    expected = model.predict(50_000, batch_sizes=SIZES, concurrencies=WORKERS)
    pd.testing.assert_frame_equal(by_choice(what), by_choice(expected))
    assert list(frame.columns) == WHAT_IF_COLUMNS
    # Plan order (batch size outer), not fastest first; a real interval around the point.
    assert frame["batch_size"].tolist() == [100, 100, 250, 250, 1_000, 1_000]
    assert (frame["wall_low_s"] < frame["wall_s"]).all()
    assert (frame["wall_s"] < frame["wall_high_s"]).all()
    # Memory per part: page + handler peak of a full part, times the parts in flight.
    assert frame["peak_memory_bytes"].to_numpy() == pytest.approx(
        np.minimum(frame["concurrency"], frame["parts"]) * (2_000 + 4_000 * frame["batch_size"]),
        rel=0.05,
    )
    assert frame.attrs["per_record_s"] == pytest.approx(0.00021, rel=0.1)


def test_what_if_takes_a_fitted_model_and_a_rate_limit() -> None:
    model = CostModel.fit([Measured(outcomes(), 1, float("nan"))], seed=1)
    free = sk.what_if(50_000, batch_sizes=SIZES, concurrencies=WORKERS, model=model)
    pd.testing.assert_frame_equal(
        by_choice(free), by_choice(model.predict(50_000, batch_sizes=SIZES, concurrencies=WORKERS))
    )
    capped = sk.what_if(
        50_000, batch_sizes=SIZES, concurrencies=WORKERS, model=model, rate_per_s=20
    )
    # 20 requests a second: no run makes its 3 requests a part faster than that.
    assert (capped["wall_s"] >= 3 * capped["parts"] / 20).all()
    assert (capped["wall_s"] > free["wall_s"]).all()
    assert set(capped["binding"]) == {"rate limit"}
    assert set(free["binding"]) != {"rate limit"}
    assert model.rate_per_s is None  # the caller's model is left as it was
    # The same limit from a profile (a dict here, as tune() reads it), with its burst.
    profiled = sk.what_if(
        50_000,
        batch_sizes=SIZES,
        concurrencies=WORKERS,
        outcomes=outcomes(),
        profile={"rate_per_s": 20, "burst": 10},
    )
    assert (profiled["wall_s"] >= (profiled["requests"] - 10) / 20).all()
    assert set(profiled["binding"]) == {"rate limit"}


def test_what_if_from_given_costs_has_no_interval_and_no_memory() -> None:
    frame = sk.what_if(
        10_000,
        batch_sizes=[500, 1_000],
        concurrencies=4,
        per_part_overhead_s=0.5,
        per_record_s=0.001,
        rate_per_s=1_000,
    )
    expected = CostModel.from_costs(0.5, 0.001, rate_per_s=1_000).predict(
        10_000, batch_sizes=[500, 1_000], concurrencies=4
    )
    pd.testing.assert_frame_equal(by_choice(frame), by_choice(expected))
    assert frame["wall_s"].tolist() == pytest.approx([5.0, 4.5])
    assert (frame["wall_low_s"] == frame["wall_s"]).all()
    assert (frame["wall_high_s"] == frame["wall_s"]).all()
    assert frame["peak_memory_bytes"].isna().all()
    assert frame["requests"].tolist() == [3 * 20 + 6, 3 * 10 + 6]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"model": "fitted"}, TypeError, "model must be a CostModel, got str"),
        (
            {"model": CostModel.from_costs(1, 1), "per_record_s": 1.0},
            ValueError,
            "what_if takes model or costs/outcomes, not both",
        ),
        (
            {"rate_per_s": 0, "per_part_overhead_s": 1, "per_record_s": 1},
            ValueError,
            "rate_per_s must be requests a second > 0 or None, got 0",
        ),
    ],
)
def test_what_if_bad_model_or_limit(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        sk.what_if(1_000, batch_sizes=100, concurrencies=2, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(records=600) as running:
        yield running


def test_what_if_from_real_runs_is_the_model_fitted_to_them(server: EmbeddedServer) -> None:
    runs = []
    with sk.Client(server.url, server.token, environment_id=server.environment_id) as client:
        for size in (100, 300):
            plan = sk.plan_parts(600, batch_size=size)
            parent = sk.start_parent_job(client, server.sheet_id)
            sk.split_parent(client, parent.id, plan)
            handle = sk.dispatch(
                client,
                parent.id,
                lambda part: f"{len(part.records)} records",
                plan=plan,
                concurrency=2,
                progress=False,
                panel=False,
                history=False,
                claim=False,
                measure_memory=True,
            )
            handle.wait()
            runs.append(handle)
    frame = sk.what_if(60_000, batch_sizes=SIZES, concurrencies=WORKERS, outcomes=runs, seed=4)
    model = CostModel.fit(runs, seed=4)
    expected = model.predict(60_000, batch_sizes=SIZES, concurrencies=WORKERS)
    pd.testing.assert_frame_equal(by_choice(frame), by_choice(expected))
    assert frame["peak_memory_bytes"].gt(0).all()  # measured: page bytes and peaks
    assert model.costs["overhead_s"] >= 0  # a RunHandle has a wall time: overhead fitted


def test_docstring_example() -> None:
    result = doctest.testmod(splitkit.lab.whatif, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
