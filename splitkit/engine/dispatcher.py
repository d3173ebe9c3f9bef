"""`dispatch()`: validate its arguments, wire the engine's pieces, start the run, maybe wait."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import httpx
import pandas as pd

from splitkit._checks import (
    callable_handler,
    non_empty_str,
    non_negative_int,
    positive_int,
    positive_number,
)
from splitkit.api import AsyncClient, Client, ClientConfig
from splitkit.engine.claim import ClaimPolicy
from splitkit.engine.controls import Controls, running_loop
from splitkit.engine.engine import Engine
from splitkit.engine.executors import (
    Executor,
    Handler,
    LoopExecutor,
)
from splitkit.engine.handle import RunHandle, live_runs, notebook_views
from splitkit.engine.part_options import TRANSIENT, PartOptions
from splitkit.engine.progress import RunObserver, TqdmProgress
from splitkit.engine.state import RunState
from splitkit.runlog import RunRecorder, history_folder

__all__ = ["dispatch"]


def dispatch(
    client: Client | AsyncClient | ClientConfig,
    parent_job_id: str,
    handler: Handler,
    *,
    plan: pd.DataFrame | None = None,
    concurrency: int = 8,
    timeout: float | None = None,
    retries: int = 2,
    retry_on: tuple[type[BaseException], ...] = TRANSIENT,
    executor: Executor | None = None,
    progress: bool = True,
    tqdm_class: Any = None,
    observers: Sequence[RunObserver] = (),
    panel: bool | None = None,
    wait: bool | None = None,
    delivery_window: float = 60.0,
    transport: httpx.AsyncBaseTransport | None = None,
    claim: bool | ClaimPolicy = True,
    history: bool | str | os.PathLike[str] = True,
    measure_memory: bool = False,
) -> RunHandle:
    """Process every part of a split parent job that has not ended yet.

    For each part: ack, fetch its records as a DataFrame, call `handler(part)`, then
    complete the part with what it returned (None, a message, or an outcome dict), or fail
    it with the exception's message (the traceback is kept in the outcome frame). Parts
    ended on the server by an earlier run are not run again, so a run that was canceled
    or killed finishes the rest when started again.

    Returns a `RunHandle`. Where an event loop is already running (Jupyter), it returns at
    once and the run goes on in the background; elsewhere it blocks until the run ends.
    `wait=` overrides either way. In a notebook the control panel is shown (`panel=`
    overrides); else a tqdm bar (`progress=False` for none, `tqdm_class=` to choose).

    A handler's exception fails its part at once, unless it is one of `retry_on`
    (connection errors, 429 and 5xx by default): then the handler runs again, up to
    `retries` times with backoff (the records are not fetched again). `timeout` bounds each
    handler call; a handler's own TimeoutError is reported as itself. A part whose ack or
    records request cannot get through (after the client's own retries) is left open with
    the reason, never failed: its handler did not run. A part's end (complete or fail) is
    delivered to the server as long as the server takes it within `delivery_window`
    seconds; after that the part is left open (`pending`, with the reason) and a later
    `dispatch()` runs it again.

    One run per parent at a time: a second `dispatch()` on a parent whose run is still
    going is refused, in this process at once, and in another process or on another
    machine by the run's claim in the parent job's metadata (`ParentClaimedError` naming
    the holder and since when; a claim not renewed for 30 s is taken over). A run that
    finds its claim taken over starts no new part and ends with `ClaimLostError`.
    `claim=False` runs without a claim; `claim=ClaimPolicy(...)` sets its heartbeat and
    delays. See `splitkit.engine.claim` for how it works and its limits.

    Ctrl-C (or "interrupt kernel") during a blocking dispatch or `handle.wait()` stops the
    run here: no new part starts, running parts finish and their results are delivered,
    the rest stay open on the server, and `dispatch()` again picks them up (a second Ctrl-C
    stops waiting for the running parts). To cancel the rest on the server instead, call
    `handle.cancel()` (the panel's Cancel button). `transport` replaces the HTTP transport
    (tests, proxies).

    The run is kept in the run history when it ends (`splitkit.history()`): in
    `$SPLITKIT_HISTORY` or `.splitkit/runs` under the current directory, or in the folder
    `history=` names; `history=False` keeps nothing (see `splitkit.runlog`).

    `measure_memory=True` samples the handlers' peak Python allocation into the outcome
    frame's ``peak_alloc_bytes`` (tracemalloc, on for the whole run: every allocation is
    slower meanwhile; see `splitkit.engine.memory`). ``page_bytes`` and ``handler_s`` are
    always there.
    """
    config = _config_of(client)
    non_empty_str("parent_job_id", parent_job_id, what="a job id string")
    callable_handler(handler)
    positive_int("concurrency", concurrency)
    if timeout is not None:
        positive_number("timeout", timeout)
    non_negative_int("retries", retries)
    if not isinstance(measure_memory, bool):
        raise TypeError(f"measure_memory must be True or False, got {measure_memory!r}")
    positive_number("delivery_window", delivery_window)
    if plan is not None and not isinstance(plan, pd.DataFrame):
        raise TypeError(f"plan must be a DataFrame from plan_parts(), got {type(plan).__name__}")
    if isinstance(claim, bool):
        claim_policy = ClaimPolicy() if claim else None
    elif isinstance(claim, ClaimPolicy):
        claim_policy = claim
    else:
        raise TypeError(f"claim must be True, False or a ClaimPolicy, got {claim!r}")
    folder = history_folder(history)  # TypeError for anything but a bool or a path
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"executor must be an Executor (run/close), got {executor!r}")
    # An executor that can refuse a handler up front (ProcessExecutor: not picklable) does
    # so here, before any part is started.
    check_handler = getattr(executor, "check_handler", None)
    if callable(check_handler):
        check_handler(handler)
    if not (
        isinstance(retry_on, tuple)
        and all(isinstance(t, type) and issubclass(t, BaseException) for t in retry_on)
    ):
        raise TypeError(f"retry_on must be a tuple of exception classes, got {retry_on!r}")

    in_loop = running_loop() is not None
    show_panel = in_loop and _in_notebook() if panel is None else panel
    all_observers = list(observers)
    panel_widget = None
    if show_panel:
        panel_widget = notebook_views.new_panel()  # the notebook layer's ControlPanel
        all_observers.append(panel_widget)
    elif progress:
        all_observers.append(TqdmProgress(tqdm_class))
    if folder is not None:
        all_observers.append(
            RunRecorder(
                folder,
                server=config.base_url,
                concurrency=concurrency,
                executor=repr(executor or LoopExecutor()),
                timeout_s=timeout,
                batch_size=None if plan is None else int(plan.attrs.get("batch_size") or 0),
            )
        )

    engine = Engine(
        config,
        parent_job_id,
        handler,
        options=PartOptions(
            timeout_s=timeout,
            retries=retries,
            retry_on=retry_on,
            delivery_window_s=delivery_window,
            measure_memory=measure_memory,
        ),
        executor=executor or LoopExecutor(),
        controls=Controls(concurrency),
        state=RunState(parent_id=parent_job_id),
        observers=all_observers,
        plan=plan,
        transport=transport,
        claim=claim_policy,
    )
    handle = RunHandle(engine, owns_executor=executor is None)
    if panel_widget is not None:
        panel_widget.bind(handle)
    # Claim first, then show: a refused run must leave no live panel behind.
    try:
        live_runs.claim(config.base_url, parent_job_id, handle)
    except BaseException:
        if panel_widget is not None:
            panel_widget.close()  # never shown: only its comms to close
        raise
    if panel_widget is not None:
        panel_widget.display()
    handle.start()
    block = (not in_loop) if wait is None else wait
    if block:
        handle.wait()  # Ctrl-C here stops the run locally (see RunHandle.wait)
    return handle


def _config_of(client: Client | AsyncClient | ClientConfig) -> ClientConfig:
    if isinstance(client, ClientConfig):
        return client
    if isinstance(client, Client | AsyncClient):
        return client.config
    raise TypeError(
        "client must be a splitkit Client, AsyncClient or ClientConfig, "
        f"got {type(client).__name__}"
    )


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
