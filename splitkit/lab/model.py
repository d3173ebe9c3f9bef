"""The cost model of a run: wall time (with an interval), requests and peak memory for
each batch size × concurrency, fitted from measured runs.

What a part costs, fitted from the outcome frames of measured runs (least squares, one
line per cost against the part's records):

- **requests**: ``duration_s - handler_s`` = ``request_s + page_s_per_record * records``:
  three round trips (ack, page, complete) of the platform's latency, and the records
  page's cost per record;
- **handler**: ``handler_s`` = ``handler_s0 + handler_s_per_record * records``;
- **memory**: ``page_bytes`` and the sampled ``peak_alloc_bytes`` (``splitkit.engine.memory``),
  each a line in records; a part holds its page and its handler's peak.

A run of ``n`` parts at concurrency ``c`` then takes, after a fixed **run overhead**
(listing the parts, the claim: fitted as the median of measured wall time minus the
predicted part time), the longest of:

- **latency** / **handler CPU**: the parts in waves of ``c`` (a queue: a slot takes the
  next part when one ends), each as long as ``request + handler`` time, the last wave as
  long as the expected slowest of its parts (the residuals' expected maximum). The binding
  limit is "latency" when requests take most of a part's time, else "handler CPU";
- **handler CPU** cap: with ``cpu_workers`` given, all parts' handler time over that many
  workers (a pure-Python handler in threads holds the GIL: ``cpu_workers=1``);
- **rate limit**: ``(requests - burst) / rate_per_s``, requests = 3 a part + the run's own.

Peak memory is ``min(c, n) × (page bytes + handler peak)`` of a full part: every slot
holding a part at its peak at once (an upper bound). The interval is a bootstrap: the
parts (and the runs' overheads) resampled ``bootstraps`` times, refitted, and the 5th and
95th percentiles of the predicted wall time taken (``seed`` fixes the draws).

What it does not model: failures and their retries (5xx, timeouts), 429s' Retry-After
beyond the rate cap, the client's own CPU at high concurrency, a handler's time that
varies with concurrency (contention in a downstream system), and records that vary in
size. Fit it on runs at the concurrency you mean to use, on the server you will use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from splitkit._checks import integer, non_negative_int, positive_int, positive_number
from splitkit.lab.measured import Measured, parts_of, previous
from splitkit.lab.measured import line as fit_line
from splitkit.plan import MAX_PAGE_SIZE, _positive_ints, plan_parts
from splitkit.simprofile import sim_profile

__all__ = ["PREDICTION_COLUMNS", "CostModel", "Measured", "rate_limit"]

REQUESTS_PER_PART = 3  # ack, the records page, complete (nothing failing)
RUN_REQUESTS = 6  # the parent, the parts' list, the claim (take, verify, release)
PARTS_PER_LIST_PAGE = 100
LIMITS = ("latency", "handler CPU", "rate limit", "memory", "timeout", "page limit")

PREDICTION_COLUMNS = [
    "batch_size",
    "concurrency",
    "parts",
    "waves",
    "requests",
    "part_s",
    "wall_s",
    "wall_low_s",
    "wall_high_s",
    "peak_memory_bytes",
    "binding",
    "allowed",
    "why_not",
]


def _expected_max(residuals: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E[max of m draws] from the residuals' empirical distribution (0 without any)."""
    if residuals.size == 0:
        return np.zeros_like(m, dtype=float)
    r = np.sort(residuals)
    k = r.size
    i = np.arange(1, k + 1, dtype=float)
    mm = np.maximum(np.asarray(m, dtype=float), 1.0)[..., None]
    weights = (i / k) ** mm - ((i - 1) / k) ** mm
    return np.asarray((weights * r).sum(axis=-1))


@dataclass
class CostModel:
    """Fitted costs (point estimates, and ``bootstraps`` resampled fits for the interval).

    Build it with :meth:`fit`; :meth:`predict` gives the table. ``costs`` are the point
    estimates: ``request_s``, ``page_s_per_record``, ``handler_s0``,
    ``handler_s_per_record``, ``overhead_s``, ``page_bytes0``, ``page_bytes_per_record``,
    ``peak_bytes0``, ``peak_bytes_per_record`` (NaN when no part's memory was sampled).
    """

    costs: dict[str, float]
    samples: dict[str, np.ndarray] = field(repr=False)
    residuals: np.ndarray = field(repr=False)
    rate_per_s: float | None = None
    burst: int = 0
    cpu_workers: int | None = None
    claim_s: float = 0.0

    @classmethod
    def fit(
        cls,
        runs: Iterable[Any],
        *,
        rate_per_s: float | None = None,
        burst: int = 0,
        cpu_workers: int | None = None,
        bootstraps: int = 200,
        seed: int = 0,
        claim_s: float = 0.0,
    ) -> CostModel:
        """Fit the costs to measured runs (finished `RunHandle`s or `Measured`).

        ``rate_per_s`` and ``burst``: the platform's rate limit (requests a second per
        token, and the bucket's depth), e.g. from a simulator profile or a probe; None
        when there is none. ``cpu_workers``: how many handlers can compute at once (None:
        their time overlaps freely, e.g. they wait on I/O). ``claim_s``: seconds a real run
        spends on its claim that the measured runs did not (`tune` probes with
        ``claim=False``: it adds the claim's verify wait back), added to every prediction.
        """
        measured = [Measured.of(run) for run in runs]
        if not measured:
            raise ValueError("fit needs at least one measured run, got none")
        if rate_per_s is not None:
            rate_per_s = positive_number("rate_per_s", rate_per_s, what="requests/s or None")
        burst = non_negative_int("burst", burst)
        if cpu_workers is not None:
            cpu_workers = positive_int("cpu_workers", cpu_workers)
        bootstraps = positive_int("bootstraps", bootstraps)
        claim_s = positive_number("claim_s", claim_s, allow_zero=True)
        parts = parts_of(measured)
        rng = np.random.default_rng(seed)
        records = parts["records"].to_numpy(float)
        handler = parts["handler_s"].to_numpy(float)
        requests = parts["duration_s"].to_numpy(float) - handler
        traced = parts["traced"].to_numpy(bool)
        # Traced parts (a measure_memory run's) ran slower: out of the time fit when
        # others remain.
        timed = ~traced if (~traced).sum() >= 2 else np.ones(len(parts), bool)
        kept = np.flatnonzero(timed)
        # Row 0 is the fit on the data itself; the others resample the parts.
        rows = np.vstack([kept, rng.choice(kept, size=(bootstraps, kept.size))])
        fit_req = fit_line(records[rows], requests[rows])
        fit_handler = fit_line(records[rows], handler[rows])
        samples = {
            "request_s": fit_req[:, 0],
            "page_s_per_record": fit_req[:, 1],
            "handler_s0": fit_handler[:, 0],
            "handler_s_per_record": fit_handler[:, 1],
        }
        for name, column, mask in (
            ("page_bytes", "page_bytes", parts["page_bytes"].notna().to_numpy()),
            ("peak_bytes", "peak_alloc_bytes", parts["peak_alloc_bytes"].notna().to_numpy()),
        ):
            if mask.any():
                x = records[mask]
                y = parts[column].to_numpy(float, na_value=np.nan)[mask]
                line = fit_line(x[None, :], y[None, :])[0]
            else:
                line = np.array([np.nan, np.nan])
            samples[f"{name}0"] = np.full(bootstraps + 1, line[0])
            samples[f"{name}_per_record"] = np.full(bootstraps + 1, line[1])
        predicted = (
            fit_req[0, 0] + fit_handler[0, 0] + records * (fit_req[0, 1] + fit_handler[0, 1])
        )
        residuals = (requests + handler - predicted)[timed]
        model = cls({}, samples, residuals, rate_per_s, burst, cpu_workers, claim_s)
        samples["overhead_s"] = model._overheads(measured, rng)
        model.costs = {name: float(values[0]) for name, values in samples.items()}
        return model

    @classmethod
    def from_costs(
        cls,
        per_part_s: float,
        per_record_s: float,
        *,
        rate_per_s: float | None = None,
        burst: int = 0,
        cpu_workers: int | None = None,
    ) -> CostModel:
        """A model of known costs, no fit: a part takes ``per_part_s + per_record_s *
        records`` (charged as request time and handler time per record), no run overhead,
        no memory known (NaN), and no interval (low = high = the prediction)."""
        fixed = {name: 0.0 for name in ("page_s_per_record", "handler_s0", "overhead_s")}
        fixed |= {"request_s": per_part_s, "handler_s_per_record": per_record_s}
        fixed |= {
            f"{m}{k}": math.nan for m in ("page_bytes", "peak_bytes") for k in ("0", "_per_record")
        }
        samples = {name: np.array([value]) for name, value in fixed.items()}
        if rate_per_s is not None:
            rate_per_s = positive_number("rate_per_s", rate_per_s, what="requests/s or None")
        if cpu_workers is not None:
            cpu_workers = positive_int("cpu_workers", cpu_workers)
        burst = non_negative_int("burst", burst)
        return cls(dict(fixed), samples, np.array([]), rate_per_s, burst, cpu_workers)

    def _overheads(self, measured: list[Measured], rng: np.random.Generator) -> np.ndarray:
        """The run overhead: the median over runs of wall time minus the predicted time of
        the run's parts (never below 0; 0 without a measured wall). A bootstrap row takes
        the median of resampled runs plus one run's deviation from the median, so that the
        interval covers how much one run's overhead varies, not only the median's error."""
        left = []
        for run in measured:
            ran = run.outcomes[~previous(run.outcomes)]
            if not math.isfinite(run.wall_s) or ran.empty or int(ran["records"].sum()) == 0:
                continue
            size = np.array([int(ran["records"].max())])
            parts_s = self._grid(int(ran["records"].sum()), size, np.array([run.concurrency]))
            left.append(run.wall_s - parts_s["wall"][:, 0])
        rows = next(iter(self.samples.values())).size
        if not left:
            return np.zeros(rows)
        values = np.vstack(left)  # runs × bootstrap rows
        runs = values.shape[0]
        middle = np.median(values, axis=0)
        picks = rng.integers(0, runs, size=(runs, rows))
        resampled = np.median(np.take_along_axis(values, picks, axis=0), axis=0)
        one = values[rng.integers(0, runs, size=rows), np.arange(rows)]
        drawn = resampled + one - middle
        drawn[0] = middle[0]
        return np.maximum(drawn, 0.0)

    # -- predictions ---------------------------------------------------------------------
    def _grid(self, total: int, b: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
        """Every bootstrap row (axis 0) × grid cell (axis 1), without the run overhead."""
        s = {k: v[:, None] for k, v in self.samples.items()}
        parts = -(-total // b)
        waves = -(-parts // c)
        size = np.minimum(b, total).astype(float)
        short = (total - (total // b) * b).astype(float)
        request = s["request_s"] + s["page_s_per_record"] * size
        handler = s["handler_s0"] + s["handler_s_per_record"] * size
        full = request + handler
        last_parts = parts - (waves - 1) * c
        alone = (short > 0) & (last_parts == 1)
        last = np.where(
            alone,
            s["request_s"]
            + s["handler_s0"]
            + short * (s["page_s_per_record"] + s["handler_s_per_record"]),
            full,
        )
        straggle = _expected_max(self.residuals, last_parts)
        queue = np.where(waves > 0, (waves - 1) * full + last + straggle, 0.0)
        n_requests = REQUESTS_PER_PART * parts + RUN_REQUESTS + parts // PARTS_PER_LIST_PAGE
        rate = np.zeros_like(queue)
        if self.rate_per_s:
            rate = np.broadcast_to(
                np.maximum(n_requests - self.burst, 0) / self.rate_per_s, queue.shape
            ).copy()
        cpu = np.zeros_like(queue)
        if self.cpu_workers:
            cpu = (parts - 1) * handler / self.cpu_workers + handler
        wall = np.maximum(np.maximum(queue, rate), cpu)
        return {
            "wall": wall,
            "queue": queue,
            "rate": rate,
            "cpu": cpu,
            "request": request,
            "handler": handler,
            "part": full,
            "parts": parts,
            "waves": waves,
            "requests": n_requests,
        }

    @staticmethod
    def check_limits(
        timeout: float | None = None,
        memory_budget: float | None = None,
        max_batch_size: int | None = None,
    ) -> tuple[float | None, float | None, int]:
        """The user's limits checked: (timeout, memory_budget, largest batch size)."""
        if timeout is not None:
            timeout = positive_number("timeout", timeout, what="a number of seconds or None")
        if memory_budget is not None:
            memory_budget = positive_number(
                "memory_budget", memory_budget, what="a number of bytes or None"
            )
        if max_batch_size is None:
            return timeout, memory_budget, MAX_PAGE_SIZE
        return (
            timeout,
            memory_budget,
            min(MAX_PAGE_SIZE, positive_int("max_batch_size", max_batch_size)),
        )

    def predict(
        self,
        total: int,
        *,
        batch_sizes: Iterable[int] | int,
        concurrencies: Iterable[int] | int,
        timeout: float | None = None,
        memory_budget: float | None = None,
        max_batch_size: int | None = None,
    ) -> pd.DataFrame:
        """Parts, waves, requests, wall time (``wall_s``, interval ``wall_low_s`` ..
        ``wall_high_s``), peak memory and the binding limit of each batch size ×
        concurrency (:data:`PREDICTION_COLUMNS`), fastest first.

        ``allowed`` is False, with ``why_not``, where a limit the user set rules the
        choice out: ``timeout`` (a part's predicted 95th-percentile time must stay under
        it), ``memory_budget`` (bytes: the predicted peak must fit) or ``max_batch_size``.
        A batch size over the records page limit (10,000) is refused outright.
        """
        total = non_negative_int("total", total)
        sizes = _ints("batch_sizes", batch_sizes)
        for size in sizes:
            plan_parts(1, batch_size=int(size))  # the page limit's own message
        workers = _ints("concurrencies", concurrencies)
        timeout, memory_budget, cap = self.check_limits(timeout, memory_budget, max_batch_size)
        b = np.repeat(sizes, workers.size)
        c = np.tile(workers, sizes.size)
        grid = self._grid(total, b, c)
        wall = grid["wall"] + self.samples["overhead_s"][:, None] + self.claim_s
        low, high = (
            np.percentile(wall[1:], [5, 95], axis=0) if wall.shape[0] > 1 else (wall[0], wall[0])
        )
        point = {
            name: np.asarray(values)[0] if np.ndim(values) == 2 else values
            for name, values in grid.items()
        }
        size = np.minimum(b, max(total, 1)).astype(float)
        per_part = self._bytes(size)
        peak = np.minimum(c, point["parts"]) * per_part
        part_high = point["part"] + (
            np.percentile(self.residuals, 95) if self.residuals.size else 0.0
        )
        binding = np.where(
            point["rate"] >= point["queue"],
            "rate limit",
            np.where(
                (point["cpu"] >= point["queue"]) | (point["handler"] > point["request"]),
                "handler CPU",
                "latency",
            ),
        )
        why = np.full(b.size, "", dtype=object)
        if memory_budget is not None:
            why = np.where(np.isfinite(peak) & (peak > memory_budget), "memory", why)
        if timeout is not None:
            why = np.where(part_high > timeout, "timeout", why)
        why = np.where(b > cap, "page limit", why)
        frame = pd.DataFrame(
            {
                "batch_size": b,
                "concurrency": c,
                "parts": point["parts"].astype(np.int64),
                "waves": point["waves"].astype(np.int64),
                "requests": np.asarray(point["requests"]).astype(np.int64),
                "part_s": point["part"],
                "wall_s": wall[0],
                "wall_low_s": np.minimum(low, wall[0]),
                "wall_high_s": np.maximum(high, wall[0]),
                "peak_memory_bytes": peak,
                "binding": binding.astype(object),
                "allowed": why == "",
                "why_not": pd.array([w or None for w in why], dtype="str"),
            }
        )
        frame = frame.sort_values(["wall_s", "batch_size"], kind="stable").reset_index(drop=True)
        frame.attrs["total"] = total
        frame.attrs.update(self.costs)
        return frame

    def _bytes(self, size: np.ndarray) -> np.ndarray:
        """A full part's memory: its page plus its handler's peak (page alone if unsampled)."""
        c = self.costs
        if not math.isfinite(c["page_bytes0"]):
            return np.full(size.shape, np.nan)
        page = c["page_bytes0"] + c["page_bytes_per_record"] * size
        peak = c["peak_bytes0"] + c["peak_bytes_per_record"] * size
        return page + np.where(np.isfinite(peak), peak, 0.0)


def _ints(name: str, values: Iterable[int] | int) -> np.ndarray:
    """Distinct positive integers, ascending (plan's check, its messages)."""
    return np.unique(_positive_ints(name, values))


def rate_limit(
    rate_per_s: float | None, burst: int | None, profile: Any
) -> tuple[float | None, int]:
    """(requests a second or None, bucket depth): given, else the profile's (what
    ``probe()`` returned, a simulator profile, its name, a profile JSON file or a dict)."""
    if profile is not None:
        profile = sim_profile(profile)
        if rate_per_s is None:
            rate_per_s = profile.rate_per_s
        if burst is None and rate_per_s is not None:
            burst = int(getattr(profile, "bucket_size", 0) or 0)
    if rate_per_s is not None and not (
        isinstance(rate_per_s, int | float) and math.isfinite(rate_per_s) and rate_per_s > 0
    ):
        raise ValueError(f"rate_per_s must be requests a second > 0 or None, got {rate_per_s!r}")
    depth = 0 if burst is None else integer("burst", burst, low=0)
    return (None if rate_per_s is None else float(rate_per_s)), depth
