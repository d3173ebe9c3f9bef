"""`splitkit demo`: what it prints ends with the next step, and its numbers are readable."""

from __future__ import annotations

import io
import re

import pytest

from splitkit.demo import run_demo

KEYS = ("FLATFILE_API_KEY", "FLATFILE_BEARER_TOKEN")


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)


def _demo(**kwargs: object) -> tuple[str, dict[str, object]]:
    out = io.StringIO()
    result = run_demo(records=2_000, batch_size=100, out=out, progress=False, **kwargs)  # type: ignore[arg-type]
    return out.getvalue(), result


def _summary_block(text: str) -> str:
    return text.split("summary:", 1)[1].split("\n\n", 1)[0]


def test_a_failed_demo_ends_with_the_retry_command() -> None:
    text, result = _demo()
    assert result["parent"].status == "failed"  # type: ignore[attr-defined]
    last = text.rstrip().splitlines()
    next_step = [line for line in last if line.startswith("next:")]
    assert next_step, text
    assert "splitkit demo --retry" in next_step[0]
    assert "retry_failed(" in text  # the call to make in one's own code


def test_the_summary_numbers_are_formatted() -> None:
    text, _ = _demo()
    block = _summary_block(text)
    assert not re.search(r"\d\.\d{3,}", block), block  # no 33989.136792
    assert re.search(r"records_processed\s+1,900\b", block), block
    assert re.search(r"wall_s\s+\d+\.\d{2} s\b", block), block


def test_demo_retry_reruns_the_failed_parts_and_completes_the_parent() -> None:
    text, result = _demo(retry=True)
    assert "retrying 1 failed part" in text
    assert result["parent"].status == "complete", text  # type: ignore[attr-defined]
    assert not any(line.startswith("next:") for line in text.splitlines())
