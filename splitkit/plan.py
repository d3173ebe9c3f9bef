"""Plan a split: record counts in, a partition DataFrame out.

Two pure functions, no I/O:

- :func:`plan_parts` turns a record total and a batch size (or a target part
  count) into one row per part, addressed the way the records API pages
  (``page_number`` / ``page_size``), so a part handler fetches exactly its
  records with one request.
- :func:`estimate_costs` fits a part's cost (overhead + per record) to a run's outcomes,
  for ``splitkit.what_if`` (in ``splitkit.lab.whatif``, with the cost model).

Both are vectorized with numpy: 100,000 parts plan in a few milliseconds.

Example::

    >>> plan_parts(10, batch_size=4)
       part  page_number  page_size  first_record  last_record  records
    0     0            1          4             0            3        4
    1     1            2          4             4            7        4
    2     2            3          4             8            9        2
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from splitkit._checks import non_negative_int, positive_int, positive_number
from splitkit.statuses import OutcomeStatus, spellings

__all__ = [
    "MAX_PAGE_SIZE",
    "PLAN_COLUMNS",
    "PartCosts",
    "estimate_costs",
    "plan_parts",
]

#: The most records one page of ``GET /sheets/{id}/records`` holds (Flatfile's limit, and
#: the embedded server's). A part is fetched as one page, so no batch may be larger.
MAX_PAGE_SIZE = 10_000

PLAN_COLUMNS = ["part", "page_number", "page_size", "first_record", "last_record", "records"]


def _page_size(name: str, value: object) -> int:
    """A batch size: a positive integer no larger than one records page."""
    size = positive_int(name, value)
    if size > MAX_PAGE_SIZE:
        raise ValueError(
            f"{name} must be at most {MAX_PAGE_SIZE:,} (the records page limit), got {value!r}"
        )
    return size


#: An integer count: Python's int or a numpy integer (counts often come out of a frame).
Count = int | np.integer[Any]


def plan_parts(
    total: Count, *, batch_size: Count | None = None, parts: Count | None = None
) -> pd.DataFrame:
    """Partition ``total`` records into parts of ``batch_size`` records.

    Give exactly one of ``batch_size`` or ``parts``. With ``parts``, the batch
    size is ``ceil(total / parts)``: every part but the last then holds the same
    number of records, which is what lets a part fetch its records as one page
    (``page_number`` with ``page_size`` = batch size). The price is that the
    actual part count can be *smaller* than asked: 10 records in 4 parts is
    batch 3, hence 4 parts (3+3+3+1), but 10 records in 6 parts is batch 2,
    hence 5 parts. The request is kept in ``df.attrs["parts_requested"]``;
    ``len(df)`` is what you get.

    Returns one row per part, all ``int64``:

    ``part``
        0-based part index (Flatfile's ``partData.part``).
    ``page_number``
        1-based page of the records API holding this part (``part + 1``).
    ``page_size``
        Page size to ask for: the batch size, the same for every part.
    ``first_record`` / ``last_record``
        0-based indexes of the part's first and last record (inclusive).
    ``records``
        Record count of the part; the last part may be short.

    ``df.attrs`` holds ``{"total": total, "batch_size": b}`` (plus
    ``"parts_requested"`` when ``parts`` was given).

    Edge cases: ``total == 0`` gives an empty frame with the same columns and
    dtypes. There is nothing to split, so the parent job should be completed
    directly (the pipeline does that). A batch size above the total gives one
    part. A part is one page of the records API, so the batch size is at most
    :data:`MAX_PAGE_SIZE` (10,000): a larger ``batch_size``, or a ``parts``
    that would need one, raises :class:`ValueError` saying the ``parts`` to use.
    Bad arguments raise :class:`ValueError` naming the argument and value.

    Examples::

        >>> plan_parts(10, parts=4)["records"].tolist()
        [3, 3, 3, 1]
        >>> len(plan_parts(10, parts=6)), plan_parts(10, parts=6).attrs["batch_size"]
        (5, 2)
        >>> plan_parts(0, batch_size=1_000).empty
        True
    """
    total = non_negative_int("total", total)
    if (batch_size is None) == (parts is None):
        raise ValueError(
            "plan_parts needs exactly one of batch_size or parts, "
            f"got batch_size={batch_size!r} and parts={parts!r}"
        )
    attrs: dict[str, Any] = {"total": total}
    if batch_size is not None:
        size = _page_size("batch_size", batch_size)
    else:
        requested = positive_int("parts", parts)
        # max(1, ...): with total 0 any positive batch size plans zero parts,
        # and attrs["batch_size"] must still be a valid page size.
        size = max(1, -(-total // requested))
        if size > MAX_PAGE_SIZE:
            needed = -(-total // MAX_PAGE_SIZE)
            raise ValueError(
                f"parts={requested} gives {size:,} records per part, above the records page "
                f"limit of {MAX_PAGE_SIZE:,}; use parts >= {needed}"
            )
        attrs["parts_requested"] = requested
    attrs["batch_size"] = size

    count = -(-total // size)  # ceil without floats: exact for any total
    part = np.arange(count, dtype=np.int64)
    first = part * size
    last = np.minimum(first + size, total) - 1
    frame = pd.DataFrame(
        {
            "part": part,
            "page_number": part + 1,
            "page_size": np.full(count, size, dtype=np.int64),
            "first_record": first,
            "last_record": last,
            "records": last - first + 1,
        },
        copy=False,
    )
    frame.attrs.update(attrs)
    return frame


@dataclass(frozen=True)
class PartCosts:
    """Expected cost of a part: ``per_part_overhead_s + records * per_record_s``.

    ``estimated`` says whether any of the two came from a fit to outcomes.
    """

    per_part_overhead_s: float
    per_record_s: float
    estimated: bool = False

    def part_s(self, records: int) -> float:
        """Expected duration in seconds of a part of ``records`` records."""
        return self.per_part_overhead_s + records * self.per_record_s


def _cost(name: str, value: object) -> float:
    return positive_number(name, value, allow_zero=True, what="a non-negative number of seconds")


def estimate_costs(
    outcomes: pd.DataFrame,
    *,
    per_part_overhead_s: float | None = None,
    per_record_s: float | None = None,
) -> PartCosts:
    """Fit ``duration_s = per_part_overhead_s + per_record_s * records`` to a run.

    Uses the completed parts of an outcome frame (columns ``records``,
    ``duration_s``, ``status``) with a finite duration; failed parts are left
    out because they stop early or hang until a timeout, and would bias the fit.

    - Both costs unknown: ordinary least squares. It needs at least two distinct
      record counts (a plan has at most two: full parts and the short last one);
      with one, overhead and per-record cost cannot be told apart, so overhead
      is taken as 0 and ``per_record_s = mean(duration / records)``, with a
      ``UserWarning`` saying so (measure a second batch size, or give the overhead).
    - One cost given: the other is fitted with it held fixed.
    - A negative estimate (noise on a near-zero cost) is clamped to 0 and the
      other cost refitted, since a negative cost would predict negative time.

    Example::

        >>> frame = pd.DataFrame({"status": ["completed"] * 2, "records": [100, 40],
        ...                       "duration_s": [1.5, 0.9]})
        >>> costs = estimate_costs(frame)
        >>> round(costs.per_part_overhead_s, 9), round(costs.per_record_s, 9), costs.estimated
        (0.5, 0.01, True)
    """
    return _estimate_costs(outcomes, per_part_overhead_s, per_record_s)


def _estimate_costs(
    outcomes: pd.DataFrame, per_part_overhead_s: float | None, per_record_s: float | None
) -> PartCosts:
    """`estimate_costs`, one call below both public callers: its warning's stacklevel
    points at the user's line either way."""
    if not isinstance(outcomes, pd.DataFrame):
        raise TypeError(f"outcomes must be a pandas DataFrame, got {type(outcomes).__name__}")
    missing = [c for c in ("status", "records", "duration_s") if c not in outcomes.columns]
    if missing:
        raise ValueError(
            f"outcomes is missing column(s) {missing}; it needs status, records, duration_s"
        )
    overhead = (
        None if per_part_overhead_s is None else _cost("per_part_overhead_s", per_part_overhead_s)
    )
    per_record = None if per_record_s is None else _cost("per_record_s", per_record_s)
    if overhead is not None and per_record is not None:
        return PartCosts(overhead, per_record, estimated=False)

    status = outcomes["status"].astype("str").str.lower()
    records = pd.to_numeric(outcomes["records"], errors="coerce").to_numpy(dtype=float)
    duration = pd.to_numeric(outcomes["duration_s"], errors="coerce").to_numpy(dtype=float)
    keep = (
        status.isin(spellings(OutcomeStatus.COMPLETED)).to_numpy()
        & np.isfinite(records)
        & np.isfinite(duration)
    )
    keep &= records >= 0
    r, d = records[keep], duration[keep]
    if r.size == 0:
        raise ValueError(
            "outcomes has no completed part with records and duration_s to estimate costs "
            "from; pass per_part_overhead_s and per_record_s instead"
        )

    if overhead is not None:
        per_record = _fit_slope(r, d - overhead)
    elif per_record is not None:
        overhead = max(0.0, float(np.mean(d - per_record * r)))
    elif np.unique(r).size >= 2:
        slope, intercept = np.polyfit(r, d, 1)
        overhead, per_record = float(intercept), float(slope)
        if overhead < 0:
            overhead, per_record = 0.0, _fit_slope(r, d)
        elif per_record < 0:
            overhead, per_record = max(0.0, float(np.mean(d))), 0.0
    else:
        positive = r > 0
        if not positive.any():
            raise ValueError(
                "outcomes only has completed parts with 0 records: the per-record cost "
                "cannot be estimated; pass per_record_s"
            )
        overhead, per_record = 0.0, float(np.mean(d[positive] / r[positive]))
        _warn_one_size(int(r[0]), stacklevel=4)
    return PartCosts(overhead, max(0.0, per_record), estimated=True)


def _warn_one_size(records: int, stacklevel: int) -> None:
    warnings.warn(
        f"every completed part in outcomes has {records:,} records (one batch size): "
        "the per-part overhead and the per-record cost cannot be separated from one "
        "batch size, so per_part_overhead_s is taken as 0 and each part's whole time is "
        "charged to its records, which favours small batches. Measure another batch "
        "size and pass both runs' outcomes (pd.concat([run_a, run_b])), or pass "
        "per_part_overhead_s= if you know it",
        UserWarning,
        stacklevel=stacklevel,
    )


def _fit_slope(records: np.ndarray, seconds: np.ndarray) -> float:
    """Least-squares slope through the origin: ``sum(r*s) / sum(r*r)``, never negative."""
    denominator = float(np.dot(records, records))
    if denominator == 0:
        raise ValueError(
            "outcomes only has completed parts with 0 records: the per-record cost "
            "cannot be estimated; pass per_record_s"
        )
    return max(0.0, float(np.dot(records, seconds)) / denominator)


def _positive_ints(
    name: str,
    values: Count | Iterable[Count],
    check: Callable[[str, object], int] = positive_int,
) -> np.ndarray:
    if isinstance(values, int | np.integer) and not isinstance(values, bool | np.bool_):
        values = [values]
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a positive integer or a list of them, got {values!r}")
    items = [check(name, v) for v in values]
    if not items:
        raise ValueError(f"{name} must not be empty")
    return np.asarray(items, dtype=np.int64)
