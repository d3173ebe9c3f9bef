"""`RunHandle`: a dispatch running on its own thread, steered and watched from anywhere.

The engine gets a thread and an event loop of its own, so a notebook cell returns at once
and the kernel stays free to handle button clicks while parts run. `wait()` blocks,
`await handle` suspends, and the outcome frame can be read at any moment.

The notebook layer builds on the engine, so the engine never imports it. How a run shows
itself in a notebook (its HTML card, the control panel `dispatch()` displays) is looked up
in `notebook_views`, which the package's top (`splitkit/__init__.py`, always loaded before
any engine module) fills in with the notebook layer's functions.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from splitkit.engine.controls import Controls
from splitkit.engine.engine import Engine
from splitkit.engine.progress import RunObserver
from splitkit.engine.state import RunState


class Panel(RunObserver, Protocol):
    """What `dispatch()` shows in a notebook: an observer of the run, steering its handle."""

    def bind(self, handle: RunHandle) -> object: ...

    def display(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class NotebookViews:
    """The notebook layer's views of a run, registered from above (see the module docstring).

    `run_html(handle)` is `RunHandle._repr_html_`; `panel()` makes the panel `dispatch()`
    shows. Unset, a handle has no HTML (IPython shows its repr) and no panel can be shown.
    """

    run_html: Callable[[RunHandle], str] | None = None
    panel: Callable[[], Panel] | None = None

    def new_panel(self) -> Panel:
        if self.panel is None:
            raise RuntimeError("no notebook panel is registered (splitkit/__init__.py does it)")
        return self.panel()


notebook_views = NotebookViews()


class LiveRuns:
    """The runs going on in this process, by parent: one run per parent at a time, since
    two would both run the parts neither has ended yet (re-running a cell is easy)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], RunHandle] = {}

    def claim(self, base_url: str, parent_id: str, handle: RunHandle) -> None:
        key = (base_url, parent_id)
        with self._lock:
            # Forget finished runs: their handles (and outcome rows) belong to the caller.
            self._runs = {k: run for k, run in self._runs.items() if not run.done}
            current = self._runs.get(key)
            if current is not None and not current.done:
                raise RuntimeError(
                    f"a run on parent {parent_id} is still going in this process ({current!r}): "
                    "wait for it, or cancel() it, before starting another"
                )
            self._runs[key] = handle


live_runs = LiveRuns()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (a dependency but on Windows and PyPy): its
    machinery costs the run's requests less CPU than asyncio's (bench_throughput.py)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class RunHandle:
    """A running (or finished) dispatch of one parent's parts."""

    def __init__(self, engine: Engine, *, owns_executor: bool = True) -> None:
        self._engine = engine
        self._owns_executor = owns_executor
        self._future: concurrent.futures.Future[pd.DataFrame] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._main, name=f"splitkit-dispatch-{engine.parent_id}", daemon=True
        )

    def start(self) -> RunHandle:
        self._thread.start()
        return self

    def _main(self) -> None:
        if not self._future.set_running_or_notify_cancel():
            return
        try:
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                runner.run(self._engine.run())
        except BaseException as exc:
            self._future.set_exception(exc)
        else:
            self._future.set_result(self.outcomes)
        finally:
            if self._owns_executor:  # one the user passed in is theirs to reuse and close
                self._engine.executor.close()

    # -- watching ----------------------------------------------------------------------
    @property
    def parent_id(self) -> str:
        return self._engine.parent_id

    @property
    def state(self) -> RunState:
        return self._engine.state

    @property
    def controls(self) -> Controls:
        return self._engine.controls

    @property
    def outcomes(self) -> pd.DataFrame:
        """The outcome frame as it is now (one row per part)."""
        return self._engine.state.frame()

    def summary(self) -> pd.DataFrame:
        """The summary frame of the outcomes so far (see `splitkit.summarize`)."""
        from splitkit.summary import summarize

        return summarize(self.outcomes)

    @property
    def done(self) -> bool:
        return self._future.done()

    @property
    def error(self) -> BaseException | None:
        """Why the run itself stopped, if it did not end normally (parts' errors are rows)."""
        if not self._future.done():
            return None
        return self._future.exception()

    def wait(self, timeout: float | None = None) -> pd.DataFrame:
        """Block until the run ends; return the outcome frame. Re-raises a run's own error.

        Ctrl-C (or "interrupt kernel") while waiting stops the run here (`stop()`): no new
        part starts, running parts finish and their results are delivered, the rest stay
        open on the server for the next `dispatch()`. A second Ctrl-C stops waiting for the
        running parts (their handlers may then run again in the next run).
        """
        try:
            return self._future.result(timeout)
        except KeyboardInterrupt:
            self.stop()
            with contextlib.suppress(KeyboardInterrupt):
                concurrent.futures.wait([self._future])
            raise

    def __await__(self) -> Generator[Any, None, pd.DataFrame]:
        return asyncio.wrap_future(self._future).__await__()

    # -- steering ------------------------------------------------------------------------
    def pause(self) -> None:
        """Start no new part; running parts finish."""
        self.controls.pause()

    def resume(self) -> None:
        self.controls.resume()

    def stop(self) -> None:
        """Stop here: start no new part; running ones finish (or time out) and their results
        are delivered; the rest stay open on the server, and `dispatch()` again runs them."""
        self.controls.stop()

    def cancel(self) -> None:
        """Cancel on the server: start no new part; running ones finish (or time out); the
        rest end `canceled` on the server (a later `dispatch()` does not run them)."""
        self.controls.cancel()

    def set_concurrency(self, value: int) -> None:
        self.controls.set_concurrency(value)

    @property
    def concurrency(self) -> int:
        return self.controls.concurrency

    def __repr__(self) -> str:
        tally = self.state.tally()
        phase = (
            "failed"
            if self.error
            else "done"
            if self.done
            else "stopping"
            if self.controls.stopped
            else "paused"
            if self.controls.paused
            else "running"
        )
        counts = ", ".join(f"{n} {s}" for s, n in tally.items() if n)
        return f"<RunHandle parent={self.parent_id} {phase}: {counts or 'no parts yet'}>"

    def _repr_html_(self) -> str | None:
        render = notebook_views.run_html
        return None if render is None else render(self)
