"""`what_if()`: the cost model's prediction for each batch size × concurrency, in plan
order, from runs you measured, two given costs, or a fitted `CostModel`.

It is `CostModel.predict` (``splitkit.lab.model``) with the plan's argument checks and
columns, so `what_if` and `tune()` predict the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from splitkit._checks import non_negative_int
from splitkit.lab.model import CostModel, Measured, rate_limit
from splitkit.plan import (
    Count,
    PartCosts,
    _cost,
    _estimate_costs,
    _page_size,
    _positive_ints,
    _warn_one_size,
)
from splitkit.statuses import OutcomeStatus, spellings

__all__ = ["WHAT_IF_COLUMNS", "what_if"]

WHAT_IF_COLUMNS = [
    "batch_size",
    "concurrency",
    "parts",
    "waves",
    "part_s",
    "wall_s",
    "records_per_s",
    "requests",
    "wall_low_s",
    "wall_high_s",
    "peak_memory_bytes",
    "binding",
]


def what_if(
    total: Count,
    *,
    batch_sizes: Count | Iterable[Count],
    concurrencies: Count | Iterable[Count],
    per_part_overhead_s: float | None = None,
    per_record_s: float | None = None,
    outcomes: pd.DataFrame | Iterable[Any] | None = None,
    model: Any = None,
    rate_per_s: float | None = None,
    burst: int | None = None,
    profile: Any = None,
    cpu_workers: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Expected parts, waves, requests, wall time (with an interval) and peak memory for
    each batch size × concurrency: `splitkit.lab.CostModel`'s prediction, in grid order.

    Costs, one of:

    - ``per_part_overhead_s`` and ``per_record_s``: each part takes ``per_part_overhead_s
      + records * per_record_s`` seconds (``CostModel.from_costs``; no interval, memory
      unknown);
    - ``outcomes``: an outcome frame of a previous run, or a list of runs (outcome frames,
      finished ``RunHandle`` objects, ``Measured``): ``CostModel.fit`` fits request, page and
      handler costs and memory per part, with a bootstrap interval (``seed``). Giving one
      of the two costs as well holds it fixed (:func:`~splitkit.plan.estimate_costs`; no interval);
    - ``model``: a fitted ``CostModel`` (e.g. ``tune(...).model``).

    The platform's rate limit (a throughput cap): ``rate_per_s`` / ``burst``, or read from
    ``profile`` (as in ``tune``); ``cpu_workers``: handlers that can compute at once.
    The costs used are in ``df.attrs``.

    Parts run in *waves* of ``concurrency`` parts and a wave lasts as long as its longest
    part; the wall time is the longest of those waves, the requests over the rate limit,
    and the handlers' time over ``cpu_workers`` (``binding`` says which). Use it to rank
    choices, then measure. Batch sizes are capped like ``plan_parts``'s: at most
    ``MAX_PAGE_SIZE``.

    Columns (:data:`WHAT_IF_COLUMNS`): ``batch_size``, ``concurrency``, ``parts``,
    ``waves``, ``requests`` (int64); ``part_s`` (expected duration of a full part),
    ``wall_s``, ``records_per_s``, ``wall_low_s`` / ``wall_high_s`` (5th / 95th percentile),
    ``peak_memory_bytes`` (NaN when unknown) (float64); ``binding`` ("latency", "handler
    CPU" or "rate limit"). With ``total == 0`` there are no parts: ``part_s`` /
    ``records_per_s`` are NaN.

    Example::

        >>> what_if(10_000, batch_sizes=[500, 1_000], concurrencies=4,
        ...         per_part_overhead_s=0.5, per_record_s=0.001)[["batch_size", "waves", "wall_s"]]
           batch_size  waves  wall_s
        0         500      5     5.0
        1        1000      3     4.5
    """
    total = non_negative_int("total", total)
    sizes = _positive_ints("batch_sizes", batch_sizes, _page_size)
    workers = _positive_ints("concurrencies", concurrencies)
    rate, depth = rate_limit(rate_per_s, burst, profile)
    limits: dict[str, Any] = {"rate_per_s": rate, "burst": depth, "cpu_workers": cpu_workers}
    fitted = True
    if model is not None:
        if not isinstance(model, CostModel):
            raise TypeError(f"model must be a CostModel, got {type(model).__name__}")
        if outcomes is not None or per_part_overhead_s is not None or per_record_s is not None:
            raise ValueError("what_if takes model or costs/outcomes, not both")
        if rate is not None or cpu_workers is not None:
            model = replace(model, **limits)
    elif outcomes is None or (per_part_overhead_s is not None or per_record_s is not None):
        if outcomes is None and (per_part_overhead_s is None or per_record_s is None):
            raise ValueError(
                "what_if needs per_part_overhead_s and per_record_s, or outcomes from a "
                "previous run to estimate them from"
            )
        if outcomes is None:
            costs = PartCosts(
                _cost("per_part_overhead_s", per_part_overhead_s),
                _cost("per_record_s", per_record_s),
            )
        else:
            costs = _estimate_costs(_one_frame(outcomes), per_part_overhead_s, per_record_s)
        fitted = costs.estimated
        model = CostModel.from_costs(costs.per_part_overhead_s, costs.per_record_s, **limits)
    else:
        runs = [outcomes] if isinstance(outcomes, pd.DataFrame) else list(outcomes)
        # An outcome frame alone has no wall time: the model fits no run overhead from it.
        measured = [
            Measured(r, 1, float("nan")) if isinstance(r, pd.DataFrame) else Measured.of(r)
            for r in runs
        ]
        _warn_if_one_size(pd.concat([m.outcomes for m in measured], ignore_index=True))
        model = CostModel.fit(measured, seed=seed, **limits)

    b = np.repeat(sizes, workers.size)
    c = np.tile(workers, sizes.size)
    table = model.predict(total, batch_sizes=sizes, concurrencies=workers)
    table = table.set_index(["batch_size", "concurrency"]).loc[list(zip(b, c, strict=True))]
    frame = table.reset_index()
    frame["part_s"] = frame["part_s"].where(frame["parts"] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # total > 0 with zero costs is infinitely fast (inf); total 0 has no rate (NaN).
        rate_s = np.where(total > 0, np.divide(float(total), frame["wall_s"]), np.nan)
    frame["records_per_s"] = rate_s.astype(np.float64)
    frame = pd.DataFrame(frame[WHAT_IF_COLUMNS])
    m = model.costs
    frame.attrs = {
        "total": total,
        "per_part_overhead_s": m["request_s"] + m["handler_s0"],
        "per_record_s": m["page_s_per_record"] + m["handler_s_per_record"],
        "costs_estimated": fitted,
    }
    return frame


def _one_frame(outcomes: pd.DataFrame | Iterable[Any]) -> pd.DataFrame:
    """Outcome frames (or runs) as one frame, for :func:`~splitkit.plan.estimate_costs`."""
    if isinstance(outcomes, pd.DataFrame):
        return outcomes
    items: list[Any] = list(outcomes)
    frames: list[pd.DataFrame] = [o if isinstance(o, pd.DataFrame) else o.outcomes for o in items]
    return pd.concat(frames, ignore_index=True)


def _warn_if_one_size(outcomes: pd.DataFrame) -> None:
    if not {"status", "records"} <= set(outcomes.columns):
        return  # the fit says what is missing
    done = outcomes["status"].astype("str").str.lower().isin(spellings(OutcomeStatus.COMPLETED))
    counts = pd.to_numeric(outcomes["records"][done], errors="coerce").dropna().unique()
    if counts.size == 1 and counts[0] > 0:
        _warn_one_size(int(counts[0]), stacklevel=4)
