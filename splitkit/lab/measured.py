"""The measured runs a `CostModel` is fitted to, and the per-part costs read from them.

`Measured` is one run (outcome frame, concurrency, wall time); `parts_of` keeps the
completed parts of this run of each, with what they cost (time, page bytes, sampled peak
allocation); `line` is the clamped least-squares fit the model uses for every cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from splitkit.statuses import OutcomeStatus, spellings

__all__ = ["Measured", "line", "parts_of", "previous"]


@dataclass(frozen=True)
class Measured:
    """One measured run: its outcome frame, the concurrency it ran at, its wall time."""

    outcomes: pd.DataFrame
    concurrency: int
    wall_s: float

    @classmethod
    def of(cls, run: Any) -> Measured:
        """A `Measured` from a finished `RunHandle`, or a `Measured` as it is."""
        if isinstance(run, Measured):
            return run
        state = getattr(run, "state", None)
        if state is None or not hasattr(run, "outcomes") or not hasattr(run, "concurrency"):
            raise TypeError(
                f"runs must be finished RunHandles (dispatch(...)) or Measured, got {run!r}"
            )
        return cls(run.outcomes, int(run.concurrency), float(state.elapsed_s))


def line(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares (intercept, slope) of y on x per bootstrap row (2-D x, y), both
    clamped at 0: one distinct x gives a line through the origin; a negative intercept is
    refitted through the origin, a negative slope becomes the mean."""
    mx, my = x.mean(axis=-1), y.mean(axis=-1)
    var = (x * x).mean(axis=-1) - mx * mx
    cov = (x * y).mean(axis=-1) - mx * my
    spread = var > 1e-12 * np.maximum(mx * mx, 1.0)
    slope = np.where(spread, cov / np.where(spread, var, 1.0), 0.0)
    intercept = my - slope * mx
    xx = (x * x).sum(axis=-1)
    origin = np.where(xx > 0, (x * y).sum(axis=-1) / np.where(xx > 0, xx, 1.0), 0.0)
    through_origin = ~spread | (intercept < 0)
    slope = np.where(through_origin, origin, slope)
    intercept = np.where(through_origin, 0.0, intercept)
    negative = slope < 0
    intercept = np.where(negative, np.maximum(my, 0.0), intercept)
    slope = np.maximum(np.where(negative, 0.0, slope), 0.0)
    return np.stack([intercept, slope], axis=-1)


def previous(outcomes: pd.DataFrame) -> np.ndarray:
    if "previous_run" not in outcomes.columns:
        return np.zeros(len(outcomes), bool)
    return outcomes["previous_run"].fillna(False).to_numpy(bool)


def parts_of(measured: list[Measured]) -> pd.DataFrame:
    """The completed parts of this run of every measured run, with what they cost."""
    frames = []
    for run in measured:
        frame = run.outcomes
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"outcomes must be a DataFrame, got {type(frame).__name__}")
        # dispatch(measure_memory=True): tracemalloc slowed every part of the run.
        slowed = bool(frame.attrs.get("memory_traced", False))
        missing = [c for c in ("status", "records", "duration_s") if c not in frame.columns]
        if missing:
            raise ValueError(f"an outcome frame is missing column(s) {missing}")
        done = frame["status"].astype(str).str.lower().isin(spellings(OutcomeStatus.COMPLETED))
        frame = frame[done.to_numpy() & ~previous(frame)]
        cost = {
            c: frame[c] if c in frame.columns else pd.Series(np.nan, index=frame.index)
            for c in ("page_bytes", "handler_s", "peak_alloc_bytes")
        }
        frames.append(
            pd.DataFrame(
                {
                    "records": frame["records"].astype(float),
                    "duration_s": frame["duration_s"].astype(float),
                    "handler_s": cost["handler_s"].astype(float).fillna(0.0),
                    "page_bytes": cost["page_bytes"].astype("Float64"),
                    "peak_alloc_bytes": cost["peak_alloc_bytes"].astype("Float64"),
                    "traced": cost["peak_alloc_bytes"].notna() | slowed,
                }
            )
        )
    parts = pd.concat(frames, ignore_index=True).dropna(subset=["duration_s"])
    if len(parts) < 2:
        raise ValueError(
            f"fit needs at least 2 completed parts with a duration, got {len(parts)}: "
            "measure longer runs"
        )
    return parts
