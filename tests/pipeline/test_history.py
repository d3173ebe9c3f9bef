"""The run history (`splitkit.history()`, `splitkit.runlog`): each dispatch kept on disk,
read back by another process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import splitkit as sk
from splitkit.runlog import HISTORY_COLUMNS, history_folder, run_outcomes

ROOT = Path(__file__).resolve().parents[2]

# Runs in a child process: one dispatch on the session's server, kept in argv[1].
CHILD_RUN = textwrap.dedent(
    """
    import sys
    import splitkit as sk
    url, token, env, sheet, folder = sys.argv[1:6]
    with sk.Client(url, token, environment_id=env) as client:
        plan = sk.plan_parts(300, batch_size=100)
        parent = sk.start_parent_job(client, sheet)
        sk.split_parent(client, parent.id, plan, check_counts=False)
        sk.dispatch(client, parent.id, lambda part: None, plan=plan, concurrency=3,
                    progress=False, history=folder).wait()
        print(parent.id)
    """
)
# Runs in another child process: what history() finds there, as JSON.
CHILD_READ = "import sys, splitkit as sk; print(sk.history(sys.argv[1]).to_json(orient='records'))"


def _python(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_runs_of_two_processes_are_read_back_by_a_third(
    server, client, split_job, tmp_path: Path
) -> None:
    folder = tmp_path / "runs"
    theirs = _python(
        "-c",
        CHILD_RUN,
        server.url,
        server.token,
        server.environment_id,
        server.sheet_id,
        str(folder),
    )
    ours, _ = split_job(batch_size=50, total=200)
    sk.dispatch(client, ours, lambda part: None, concurrency=2, progress=False, history=folder)

    runs = pd.read_json(__import__("io").StringIO(_python("-c", CHILD_READ, str(folder))))
    assert runs["parent_id"].tolist() == [theirs, ours]  # oldest first
    assert runs["batch_size"].tolist() == [100, 50]
    assert runs["concurrency"].tolist() == [3, 2]
    assert runs["parts"].tolist() == [3, 4]
    assert runs["completed"].tolist() == [3, 4]
    assert (runs["wall_s"] > 0).all() and runs["pid"].nunique() == 2

    here = sk.history(folder)
    assert list(here.columns) == HISTORY_COLUMNS
    assert here["run_id"].is_unique
    outcomes = run_outcomes(here["run_id"].iloc[1], folder)
    assert outcomes["parent_id"].unique().tolist() == [ours]
    assert outcomes["page_bytes"].notna().all()  # the cost columns survive the round trip
    assert sk.summarize(outcomes)["completed"].iloc[0] == 4


def test_history_can_be_turned_off_and_a_bad_folder_is_refused(
    client, split_job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPLITKIT_HISTORY", str(tmp_path / "default"))
    parent_id, _ = split_job(batch_size=100, total=200)
    sk.dispatch(client, parent_id, lambda part: None, progress=False, history=False)
    assert sk.history().empty and not (tmp_path / "default").exists()
    monkeypatch.setenv("SPLITKIT_HISTORY", "off")
    parent_id, _ = split_job(batch_size=100, total=200)
    sk.dispatch(client, parent_id, lambda part: None, progress=False)
    assert sk.history().empty
    with pytest.raises(TypeError, match="history must be True, False or a folder path, got 3"):
        sk.dispatch(client, parent_id, lambda part: None, history=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="run_id must be a run id"):
        run_outcomes("../x", tmp_path)


def test_a_folder_that_cannot_be_written_does_not_fail_the_run(
    client, split_job, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    parent_id, _ = split_job(batch_size=100, total=200)
    frame = sk.dispatch(
        client, parent_id, lambda part: None, progress=False, history=blocker / "runs"
    ).wait()
    assert (frame["status"] == "completed").all()
    assert sk.history(blocker / "runs").empty


# Runs in a child process: tune()'s probes on the session's server, kept in argv[5].
CHILD_TUNE = textwrap.dedent(
    """
    import sys
    import splitkit as sk
    url, token, env, sheet, folder = sys.argv[1:6]
    with sk.Client(url, token, environment_id=env) as client:
        tuning = sk.tune(client, sheet, lambda part: None, total=400, batch_sizes=[50, 100],
                         concurrencies=2, rounds=1, history=folder)
        print(" ".join(tuning.probes["parent_id"]))
    """
)
# Runs in another child process: the run ids of one purpose (argv[2]; "" for all).
CHILD_PURPOSE = (
    "import sys, splitkit as sk; "
    "print(' '.join(sk.history(sys.argv[1], purpose=sys.argv[2] or None)['parent_id']))"
)


def test_tune_probes_are_kept_as_such_and_history_filters_by_purpose(
    server, client, split_job, tmp_path: Path
) -> None:
    folder = tmp_path / "runs"
    probes = _python(
        "-c",
        CHILD_TUNE,
        server.url,
        server.token,
        server.environment_id,
        server.sheet_id,
        str(folder),
    ).split()
    assert len(probes) == 2
    ours, _ = split_job(batch_size=50, total=100)
    sk.dispatch(client, ours, lambda part: None, concurrency=2, progress=False, history=folder)

    assert _python("-c", CHILD_PURPOSE, str(folder), "tune-probe").split() == probes
    assert _python("-c", CHILD_PURPOSE, str(folder), "dispatch").split() == [ours]
    assert _python("-c", CHILD_PURPOSE, str(folder), "").split() == [*probes, ours]  # all
    here = sk.history(folder)
    assert here["purpose"].tolist() == ["tune-probe", "tune-probe", "dispatch"]
    assert here["batch_size"].tolist() == [50, 100, 50]
    with pytest.raises(ValueError, match="purpose must be one of 'dispatch', 'tune-probe'"):
        sk.history(folder, purpose="probe")


def test_runs_kept_before_purposes_read_back_as_dispatches(
    client, split_job, tmp_path: Path
) -> None:
    parent_id, _ = split_job(batch_size=100, total=200)
    sk.dispatch(client, parent_id, lambda part: None, progress=False, history=tmp_path)
    (path,) = tmp_path.glob("*.run.parquet")
    pd.read_parquet(path).drop(columns="purpose").to_parquet(path)  # an older run's file
    assert sk.history(tmp_path, purpose="dispatch")["parent_id"].tolist() == [parent_id]


def test_an_empty_variable_is_as_if_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPLITKIT_HISTORY", "  ")
    assert history_folder(None) == (tmp_path / ".splitkit" / "runs").absolute()
