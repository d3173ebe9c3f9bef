"""`tune()`: which batch size and concurrency finish a job soonest on the server in use.

It runs short **probes** (a few parts of the sheet at each candidate batch size, each a
real parent job split, dispatched and settled on that server), fits the cost model
(`splitkit.lab.model`) to them, and predicts the whole job for every batch size ×
concurrency. Probing is successive halving: round 0 probes every candidate with one wave
of parts; each next round keeps the better half (by the model's prediction for the whole
job) and probes it again with twice the parts; the model is refitted on every probe so far.

It never proposes a batch size over the records page limit (10,000) or `max_batch_size`,
nor a choice whose part would outlast `timeout` (95th percentile) or whose peak memory
would exceed `memory_budget`. The probes take the sheet's first pages: records that are
not typical of the sheet make a poor sample.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from splitkit._checks import callable_handler, integer, non_empty_str, positive_int
from splitkit.api import Client
from splitkit.engine import ClaimPolicy, dispatch
from splitkit.engine.executors import Executor, Handler, LoopExecutor
from splitkit.lab.model import CostModel, Measured, rate_limit
from splitkit.pipeline import split_parent, start_parent_job
from splitkit.plan import MAX_PAGE_SIZE, plan_parts
from splitkit.runlog import TUNE_PROBE, RunRecorder, history_folder
from splitkit.settlement import settle
from splitkit.summary import summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["DEFAULT_BATCH_SIZES", "Tuning", "tune"]

#: The candidates when none are given (those up to the job's records and the page limit).
DEFAULT_BATCH_SIZES = (25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000)
RECOMMENDATION_COLUMNS = [
    "batch_size",
    "concurrency",
    "wall_s",
    "wall_low_s",
    "wall_high_s",
    "parts",
    "requests",
    "peak_memory_bytes",
    "binding",
]
PROBE_COLUMNS = ["round", "batch_size", "concurrency", "parts", "records", "wall_s", "parent_id"]


@dataclass
class Tuning:
    """What `tune()` found.

    ``recommendation``: one row (:data:`RECOMMENDATION_COLUMNS`), the fastest allowed
    choice and the limit that binds it. ``table``: every batch size × concurrency, fastest
    first (``splitkit.lab.model.PREDICTION_COLUMNS``; ``allowed`` / ``why_not`` say which
    your limits rule out). ``probes``: the probe runs. ``model``: the fitted `CostModel`
    (``model.costs``), to predict other choices with ``model.predict(...)``.
    """

    recommendation: pd.DataFrame
    table: pd.DataFrame
    probes: pd.DataFrame
    model: CostModel

    @property
    def batch_size(self) -> int:
        return int(self.recommendation["batch_size"].iloc[0])

    @property
    def concurrency(self) -> int:
        return int(self.recommendation["concurrency"].iloc[0])

    def plot(self, measured: pd.DataFrame | None = None, ax: Axes | None = None) -> Axes:
        """Predicted wall time (with its interval) per batch size, one line per
        concurrency; the recommendation starred; choices your limits rule out crossed;
        `measured` runs (``batch_size``, ``wall_s``, optional ``concurrency``) as dots."""
        from splitkit.lab.plot import plot_tuning

        return plot_tuning(self, measured=measured, ax=ax)

    def _repr_html_(self) -> str:
        best = self.recommendation.iloc[0]
        head = (
            f"<b>tune</b>: batch size <b>{int(best['batch_size']):,}</b> at concurrency "
            f"<b>{int(best['concurrency'])}</b>, about {best['wall_s']:.2f} s "
            f"({best['wall_low_s']:.2f}–{best['wall_high_s']:.2f} s), bound by "
            f"<b>{best['binding']}</b>; {len(self.probes)} probes"
        )
        return f"<div>{head}</div>" + self.table.head(8).to_html(index=False)


def tune(
    client: Client,
    sheet_id: str,
    handler: Handler,
    *,
    total: int | None = None,
    batch_sizes: Iterable[int] | None = None,
    concurrencies: Iterable[int] | int = 8,
    rounds: int = 2,
    sample_parts: int | None = None,
    timeout: float | None = None,
    memory_budget: float | None = None,
    max_batch_size: int | None = None,
    rate_per_s: float | None = None,
    burst: int | None = None,
    profile: Any = None,
    cpu_workers: int | None = None,
    executor: Executor | None = None,
    seed: int = 0,
    history: bool | str | os.PathLike[str] = True,
) -> Tuning:
    """Probe the server in use, fit the cost model, recommend a batch size and concurrency.

    ``client`` and ``sheet_id``: where the job's records are (probes read its first
    pages and leave settled probe jobs behind). ``handler``: the job's own handler (a
    probe runs it for real). ``total``: the records of the job to plan (default: the
    sheet's). ``batch_sizes``: the candidates (default :data:`DEFAULT_BATCH_SIZES` up to
    ``total``); ``concurrencies``: those to predict (probes run at the largest).
    ``rounds`` of successive halving; ``sample_parts``: parts of a round-0 probe (default:
    the largest concurrency, one wave).

    Limits you set, never exceeded by the recommendation: ``timeout`` (seconds a part may
    take, as in ``dispatch``; the probes run with it too), ``memory_budget`` (bytes for
    all parts in flight), ``max_batch_size``. The platform's rate limit is ``rate_per_s``
    / ``burst``, or read from ``profile``: what ``probe()`` returned, a simulator profile,
    its name, a profile JSON file (``probe(...).save(path)``) or a dict (its
    ``rate_per_s`` and ``burst``). ``cpu_workers``: handlers that can compute at once (see
    `CostModel.fit`). ``executor``: where probes run the handler. ``seed``: the bootstrap.
    ``history``: where the probes are kept in the run history, as ``dispatch``'s, with
    ``purpose`` "tune-probe" (``splitkit.history(purpose="tune-probe")``); False: not kept.

    Returns a `Tuning`: ``.recommendation`` (one row), ``.table``, ``.probes``,
    ``.model`` and ``.plot()``. Raises ``ValueError`` when your limits rule out every
    candidate, naming them.
    """
    if not isinstance(client, Client):
        raise TypeError(f"client must be a splitkit Client, got {type(client).__name__}")
    non_empty_str("sheet_id", sheet_id, what="a sheet id string")
    callable_handler(handler)
    available = client.get_counts(sheet_id).total
    total = available if total is None else positive_int("total", total)
    if available == 0:
        raise ValueError(f"sheet {sheet_id} has no records: there is nothing to probe")
    cap = (
        MAX_PAGE_SIZE if max_batch_size is None else positive_int("max_batch_size", max_batch_size)
    )
    sizes = _candidates(batch_sizes, total, cap)
    workers = _concurrencies(concurrencies)
    rounds = integer("rounds", rounds, low=1, high=5, what="an integer from 1 to 5")
    first = workers[-1] if sample_parts is None else positive_int("sample_parts", sample_parts)
    rate, depth = rate_limit(rate_per_s, burst, profile)
    seed = integer("seed", seed, what="an integer")
    # Checked now, before any probe: the model refuses them with the same messages.
    model_args: dict[str, Any] = {
        "rate_per_s": rate,
        "burst": depth,
        "cpu_workers": cpu_workers,
        "seed": seed,
        "claim_s": ClaimPolicy().verify_s,  # what a real run waits to claim its parent
    }
    limits: dict[str, Any] = {
        "timeout": timeout,
        "memory_budget": memory_budget,
        "max_batch_size": max_batch_size,
    }
    CostModel.check_limits(**limits)
    folder = history_folder(history)  # TypeError for anything but a bool or a path

    probes: list[dict[str, Any]] = []
    measured: list[Measured] = []
    survivors = list(sizes)
    model: CostModel | None = None
    for round_ in range(rounds):
        parts = first * 2**round_
        for size in survivors:
            run, row = _probe(
                client,
                sheet_id,
                handler,
                size,
                workers[-1],
                parts,
                available,
                timeout,
                executor,
                folder,
            )
            measured.append(run)
            probes.append({"round": round_, **row})
        model = CostModel.fit(measured, **model_args)
        if round_ + 1 < rounds and len(survivors) > 2:
            ranked = model.predict(total, batch_sizes=survivors, concurrencies=workers, **limits)
            best_per_size = ranked.drop_duplicates("batch_size")  # fastest first
            survivors = sorted(best_per_size["batch_size"].head(max(2, len(survivors) // 2)))
    assert model is not None
    table = model.predict(total, batch_sizes=sizes, concurrencies=workers, **limits)
    return Tuning(_recommend(table, cap, total), table, _probe_frame(probes), model)


def _probe(
    client: Client,
    sheet_id: str,
    handler: Handler,
    size: int,
    concurrency: int,
    parts: int,
    available: int,
    timeout: float | None,
    executor: Executor | None,
    folder: Path | None,
) -> tuple[Measured, dict[str, Any]]:
    """One probe: `parts` parts of `size` records from the sheet's start, run and settled,
    kept in the run history in `folder` (None: not kept) as a "tune-probe"."""
    # dispatch's own recorder would call it a dispatch: the probe brings its own.
    recorder = (
        []
        if folder is None
        else [
            RunRecorder(
                folder,
                server=client.config.base_url,
                concurrency=concurrency,
                executor=repr(executor or LoopExecutor()),
                timeout_s=timeout,
                batch_size=size,
                purpose=TUNE_PROBE,
            )
        ]
    )
    plan = plan_parts(min(available, size * parts), batch_size=size)
    parent = start_parent_job(client, sheet_id, info=f"splitkit tune: probe of batch {size}")
    split_parent(client, parent.id, plan, check_counts=False)  # a sample of the sheet
    handle = dispatch(
        client,
        parent.id,
        handler,
        plan=plan,
        concurrency=concurrency,
        timeout=timeout,
        executor=executor,
        progress=False,
        panel=False,
        wait=True,
        history=False,
        observers=recorder,
        claim=False,  # a fresh parent of ours alone; the model adds the claim's wait back
        measure_memory=True,  # peak memory per part, for memory_budget
    )
    outcomes = handle.wait()
    settle(
        client,
        parent.id,
        summarize(outcomes),
        allow_unfinished=True,
        message=f"splitkit tune probe: batch {size}, {len(plan)} parts",
    )
    run = Measured.of(handle)
    row = {
        "batch_size": size,
        "concurrency": concurrency,
        "parts": len(plan),
        "records": int(plan["records"].sum()),
        "wall_s": run.wall_s,
        "parent_id": parent.id,
    }
    return run, row


def _recommend(table: pd.DataFrame, cap: int, total: int) -> pd.DataFrame:
    """The fastest allowed row, its binding limit replaced by the user's limit (memory,
    timeout) or the page limit when that is what kept a faster choice out."""
    allowed = table[table["allowed"]]
    if allowed.empty:
        reasons = sorted(set(table["why_not"].dropna()))
        raise ValueError(
            f"every candidate is ruled out by your limits ({', '.join(reasons)}): raise "
            "them, or give smaller batch_sizes / concurrencies"
        )
    best = allowed.iloc[[0]].copy()
    size, workers = int(best["batch_size"].iloc[0]), int(best["concurrency"].iloc[0])
    wall = float(best["wall_s"].iloc[0])
    same = table[table["concurrency"] == workers]
    faster_out = same[(~same["allowed"]) & (same["wall_s"] < wall)]
    if not faster_out.empty:
        best["binding"] = str(faster_out["why_not"].iloc[0])
    elif size == min(cap, MAX_PAGE_SIZE) and size < total:
        smaller = same[same["batch_size"] < size]
        if smaller.empty or float(smaller["wall_s"].min()) > wall:
            best["binding"] = "page limit"  # bigger would still be faster, were it allowed
    return best[RECOMMENDATION_COLUMNS].reset_index(drop=True)


def _probe_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=PROBE_COLUMNS)
    return frame.astype({"round": "int64", "batch_size": "int64", "concurrency": "int64"})


def _candidates(batch_sizes: Iterable[int] | None, total: int, cap: int) -> list[int]:
    if batch_sizes is None:
        sizes = [s for s in DEFAULT_BATCH_SIZES if s <= min(total, cap)]
        return sizes or [min(total, cap)]
    if isinstance(batch_sizes, str | bytes) or not isinstance(batch_sizes, Iterable):
        raise ValueError(f"batch_sizes must be a list of positive integers, got {batch_sizes!r}")
    sizes = sorted({positive_int("batch_sizes", s) for s in batch_sizes})
    if not sizes:
        raise ValueError("batch_sizes must not be empty")
    for size in sizes:
        plan_parts(1, batch_size=size)  # over the page limit: refused with its message
    if sizes[0] > cap:
        raise ValueError(f"every batch size is over max_batch_size={cap:,}, got {sizes}")
    return sizes


def _concurrencies(values: Iterable[int] | int) -> list[int]:
    if isinstance(values, int) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"concurrencies must be a positive integer or a list, got {values!r}")
    found = sorted({positive_int("concurrencies", v) for v in values})
    if not found:
        raise ValueError("concurrencies must not be empty")
    return found
