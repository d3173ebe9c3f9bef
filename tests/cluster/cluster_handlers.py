"""Handlers the Dask workers import (by reference, on PYTHONPATH): each call leaves a
start and an end mark, one file each, named `<job id>.<pid>.<n>.start|end`, so a test can
tell which process ran which part, how often, and which part a killed worker was running."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

from distributed.diagnostics.plugin import SchedulerPlugin

from splitkit import Part


def marked(marks: str, seconds: float, part: Part) -> str:
    call = f"{part.job_id}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
    Path(marks, f"{call}.start").touch()
    valid = int(part.records["_valid"].sum())  # read on the worker: its own page
    time.sleep(seconds)
    Path(marks, f"{call}.end").touch()
    return f"valid={valid} pid={os.getpid()}"


def calls(marks: str | Path, what: str = "start") -> list[tuple[str, int]]:
    """(job id, pid) of every handler call that reached `what`."""
    found = []
    for path in Path(marks).glob(f"*.{what}"):
        job_id, pid, _ = path.name.split(".")[:3]
        found.append((job_id, int(pid)))
    return found


class TaskRecorder(SchedulerPlugin):  # type: ignore[misc]
    """A scheduler plugin that keeps every
    task's key, repr, spec repr and pickled spec, as the scheduler received them."""

    name = "splitkit-task-recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, bytes]] = []

    def update_graph(self, scheduler: object, *, keys: object = (), **kwargs: object) -> None:
        import pickle

        tasks = getattr(scheduler, "tasks", {})
        for key in keys:  # type: ignore[attr-defined]
            ts = tasks.get(key)
            spec = getattr(ts, "run_spec", None)
            try:
                raw = pickle.dumps(spec)
            except Exception as exc:
                raw = repr(exc).encode()
            self.seen.append((str(key), repr(ts), repr(spec), raw))


def recorded(dask_scheduler: object) -> list[tuple[str, str, str, bytes]]:
    plugin = dask_scheduler.plugins[TaskRecorder.name]  # type: ignore[attr-defined]
    return list(plugin.seen)


def fails_every_third(part: Part) -> object:
    """Fails parts 0, 3, 6, ... with their own message; part 1 returns what cannot be
    pickled back; the others count their records."""
    if part.index % 3 == 0:
        raise ValueError(f"part {part.index} is bad")
    if part.index == 1:
        return {"message": "a lock", "lock": threading.Lock()}
    return f"part {part.index}: valid={int(part.records['_valid'].sum())}"


def sleeps(seconds: float, part: Part) -> None:
    time.sleep(seconds)
