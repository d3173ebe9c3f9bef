"""The HTML views: plan, run and summary read right at a glance, and escape what they show."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from splitkit import Client, Part, dispatch, plan_parts, split_parent, summarize
from splitkit.notebook import Html, plan_html, run_html, show_plan, show_summary, summary_html
from splitkit.pipeline import start_parent_job
from splitkit.server import EmbeddedServer


def text_of(markup: str) -> str:
    """What a reader sees: tags dropped, entities decoded, spaces squeezed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()


def test_plan_card_has_the_totals_and_the_first_and_last_parts() -> None:
    plan = plan_parts(10_001, batch_size=1_000)
    shown = show_plan(plan)
    assert isinstance(shown, Html) and shown._repr_html_() == plan_html(plan)
    text = text_of(shown._repr_html_())
    assert "Plan · 11 parts · 10,001 records · batch size 1,000 · last part 1 record" in text
    assert "… 6 more …" in text
    assert "9,000 9,999 1,000" in text  # part 9: first, last, records
    assert "10,000 10,000 1" in text  # the short last part
    assert " 5,000 " not in text  # a hidden middle row


def test_a_short_plan_is_shown_whole_and_an_empty_one_says_why() -> None:
    assert "more" not in text_of(plan_html(plan_parts(60, batch_size=10)))
    empty = text_of(plan_html(plan_parts(0, batch_size=10)))
    assert "0 parts" in empty and "nothing to split" in empty
    with pytest.raises(TypeError, match="plan must be a pandas DataFrame, got list"):
        plan_html([1, 2])  # type: ignore[arg-type]


def test_values_from_data_are_escaped() -> None:
    frame = pd.DataFrame({"part": [0], "<b>col</b>": ["<script>x</script>"]})
    markup = plan_html(frame)
    assert "<script>" not in markup and "<b>col</b>" not in markup
    assert "&lt;script&gt;" in markup


def test_summary_card_counts_and_timings() -> None:
    outcomes = pd.DataFrame(
        {
            "part": [0, 1, 2, 3],
            "status": ["completed", "completed", "failed", "canceled"],
            "records": [10, 10, 10, 10],
            "started_at": pd.to_datetime(["2025-01-01T00:00:00Z"] * 3 + ["NaT"], utc=True),
            "finished_at": pd.to_datetime(
                ["2025-01-01T00:00:01Z", "2025-01-01T00:00:02Z", "2025-01-01T00:00:02Z", "NaT"],
                utc=True,
            ),
            "duration_s": [1.0, 2.0, 2.0, float("nan")],
        }
    )
    text = text_of(show_summary(summarize(outcomes))._repr_html_())
    assert "2 of 4 parts completed" in text
    assert "completed 2 · failed 1 · canceled 1 · pending 0" in text
    assert "20 records processed" in text
    assert "wall 2.00 s" in text
    assert "p50 2.000 s" in text and "max 2.000 s" in text


def test_summary_of_a_payload_has_no_records_and_several_runs_are_labelled() -> None:
    payload = summarize(parts_completed={"parts": {"total": 3, "completed": 3}})
    text = text_of(summary_html(payload))
    assert "all parts completed" in text and "records processed" not in text
    both = pd.concat([payload, payload], keys=["batch 100", "batch 500"])
    text = text_of(summary_html(both))
    assert "batch 100" in text and "batch 500" in text
    with pytest.raises(ValueError, match="missing column"):
        summary_html(pd.DataFrame({"total": [1]}))


@pytest.fixture
def client(server: EmbeddedServer) -> Iterator[Client]:
    with Client(server.url, server.token, environment_id=server.environment_id) as c:
        yield c


def test_run_handle_renders_its_phase_counts_and_last_error(
    server: EmbeddedServer, client: Client
) -> None:
    assert server.sheet_id is not None
    parent = start_parent_job(client, server.sheet_id)
    split_parent(client, parent.id, plan_parts(30, batch_size=10), check_counts=False)

    def handler(part: Part) -> None:
        if part.index == 1:
            raise ValueError("bad <value> in part")

    handle = dispatch(client, parent.id, handler, progress=False, panel=False, retries=0)
    markup = handle._repr_html_()
    assert markup == run_html(handle)
    assert "<value>" not in markup
    text = text_of(markup)
    assert f"Run of parent {parent.id} · done · 3/3 parts ended" in text
    assert "completed 2 · failed 1 · canceled 0" in text
    assert "30/30 records" not in text and "20/30 records" in text
    assert "last error: part 1: ValueError: bad <value> in part" in text


# A fresh interpreter that never imports splitkit.notebook: the engine does not either
# (it builds no notebook view itself), yet a handle shows its HTML card in Jupyter.
_NO_NOTEBOOK_IMPORT = """
import sys
from splitkit.api import Client
from splitkit.engine import dispatch
from splitkit.pipeline import split_parent, start_parent_job
from splitkit.plan import plan_parts

url, token, environment_id, sheet_id = sys.argv[1:]
with Client(url, token, environment_id=environment_id) as client:
    parent = start_parent_job(client, sheet_id)
    split_parent(client, parent.id, plan_parts(20, batch_size=10), check_counts=False)
    handle = dispatch(client, parent.id, lambda part: None, progress=False, panel=False)
loaded = sorted(m for m in sys.modules if m.startswith(("splitkit.notebook", "ipywidgets")))
assert not loaded, f"a run without a notebook view loaded {loaded}"
markup = handle._repr_html_()
assert markup is not None and 'class="splitkit-run"' in markup, markup
assert "2/2 parts ended" in markup, markup
print("ok")
"""


def test_a_handle_shows_its_html_without_the_notebook_imported(server: EmbeddedServer) -> None:
    assert server.sheet_id is not None and server.environment_id is not None
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _NO_NOTEBOOK_IMPORT,
            server.url,
            server.token,
            server.environment_id,
            server.sheet_id,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_dispatch_shows_the_notebook_panel_through_the_registered_view() -> None:
    from splitkit.engine.handle import notebook_views
    from splitkit.notebook import ControlPanel

    assert isinstance(notebook_views.new_panel(), ControlPanel)
