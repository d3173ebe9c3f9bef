"""The main job, end to end on the embedded server: counts → plan → split → dispatch →
outcomes → summary → settle, over about 100,000 generated records."""

from __future__ import annotations

import math
import numbers
import re
import time
from typing import Any, TextIO

import pandas as pd

from splitkit.connection import connect
from splitkit.engine import Part, dispatch
from splitkit.pipeline import split_parent, start_parent_job
from splitkit.plan import plan_parts
from splitkit.retry import retry_failed
from splitkit.settlement import settle
from splitkit.summary import summarize

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
FAIL_ON_PURPOSE = frozenset({7, 42, 77})  # parts the demo handler rejects, to show failures


def demo_handler(part: Part) -> dict[str, Any]:
    """Checks and transforms one part's records, as a real handler would.

    Normalizes e-mails, counts invalid rows, and rejects a few parts on purpose so the
    run shows what failure looks like.
    """
    if part.index in FAIL_ON_PURPOSE:
        raise ValueError(f"part {part.index}: upstream system rejected the batch (on purpose)")
    return fixed_demo_handler(part)


def fixed_demo_handler(part: Part) -> dict[str, Any]:
    """`demo_handler` once the upstream system takes every batch: what the retry runs."""
    records = part.records
    emails = records.get("email", pd.Series(dtype="object")).astype("string").str.strip()
    normalized = emails.str.lower()
    bad_email = int((~normalized.fillna("").str.match(EMAIL)).sum())
    invalid = int((~records["_valid"].astype(bool)).sum()) if "_valid" in records else 0
    part.progress(1.0, "checked")
    return {
        "message": f"{len(records)} records checked: {invalid} invalid, {bad_email} bad e-mails",
        "heading": f"Part {part.index}",  # 0-based, as the outcome frame's `part`
    }


def run_demo(
    records: int = 100_000,
    batch_size: int = 1_000,
    concurrency: int = 8,
    *,
    retry: bool = False,
    out: TextIO | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole pipeline and print each stage; returns the frames for inspection.

    `retry=True` reruns the parts that failed on purpose (`retry_failed`, with a handler
    that accepts them) before settling, so the parent completes.
    """

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    pd.set_option("display.width", 120)
    started = time.perf_counter()
    with connect(records=records) as conn:
        client, sheet_id = conn.client, conn.sheet_id
        assert sheet_id is not None
        say(f"embedded Flatfile server at {conn.config.base_url}")
        counts = client.get_counts(sheet_id)
        say(
            f"sheet {sheet_id}: {counts.total:,} records ({counts.valid:,} valid, "
            f"{counts.error:,} with errors)"
        )

        plan = plan_parts(counts.total, batch_size=batch_size)
        say(f"\nplan: {len(plan):,} parts of up to {batch_size:,} records")
        say(plan.head().to_string(index=False))

        parent = start_parent_job(client, sheet_id)
        parts = split_parent(client, parent.id, plan)
        say(f"\nparent job {parent.id} split into {len(parts):,} parts\n")

        handle = dispatch(
            client,
            parent.id,
            demo_handler,
            concurrency=concurrency,
            progress=progress,
            wait=True,
        )
        outcomes = handle.outcomes
        summary = summarize(outcomes)
        say("\nsummary:")
        say(format_summary(summary))

        failed = outcomes[outcomes["status"] == "failed"]
        if len(failed):
            say("\nfailed parts:")
            say(failed[["part", "job_id", "error"]].to_string(index=False))
        if retry and len(failed):
            say(
                f"\nretrying {len(failed)} failed part{'s' if len(failed) != 1 else ''} with a "
                "handler that accepts them: retry_failed(client, parent.id, fixed_demo_handler)"
            )
            again = retry_failed(
                client,
                parent.id,
                fixed_demo_handler,
                concurrency=concurrency,
                progress=progress,
                wait=True,
            )
            if again is not None:
                outcomes = again.outcomes
                summary = summarize(outcomes)
                say("\nsummary after the retry:")
                say(format_summary(summary))

        announced = [
            event
            for event in client.list_events(topic="job:parts-completed", page_size=1000)
            if event.context.get("jobId") == parent.id
        ]
        if announced:
            parts_counts = announced[-1].payload.get("parts", {})
            say(f"\nthe server's job:parts-completed said: {parts_counts}")

        result = settle(client, parent.id, summary)
        final = client.get_job(parent.id)
        say(f"\nparent {parent.id}: {final.status} — {result.message}")
        say(f"done in {time.perf_counter() - started:.1f} s")
        if final.status == "failed":
            say(
                "\nnext: those parts were rejected on purpose. See them retried before the "
                "parent is settled: splitkit demo --retry\n"
                "      in your own code: retry_failed(client, parent_id, fixed_handler), then "
                "settle (docs/retry.md)"
            )
        return {
            "plan": plan,
            "parts": parts,
            "outcomes": outcomes,
            "summary": summary,
            "parent": final,
            "settle": result,
        }


def format_summary(summary: pd.DataFrame) -> str:
    """The one-row summary as aligned `name  value` lines: counts with thousands
    separators, seconds with two decimals, rates with one."""
    row = summary.iloc[0]
    width = max(len(str(name)) for name in summary.columns)
    return "\n".join(f"{name:<{width}}  {_readable(str(name), row[name])}" for name in row.index)


def _readable(name: str, value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return str(value)
    if name.endswith("_per_s"):
        return f"{float(value):,.1f}"  # type: ignore[arg-type]
    if name.endswith("_s"):
        return f"{float(value):,.2f} s"  # type: ignore[arg-type]
    if isinstance(value, numbers.Integral) or float(value).is_integer():  # type: ignore[arg-type]
        return f"{int(value):,}"  # type: ignore[call-overload]
    return f"{float(value):,.2f}"  # type: ignore[arg-type]
