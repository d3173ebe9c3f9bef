"""The notebook control panel: one run's progress, counts and controls, in stock ipywidgets.

`ControlPanel` is a `RunObserver` (the engine calls it on its own thread) and a small
widget tree: one aggregate progress bar with a label (parts, records, throughput, ETA), the
live counts by status, Pause/Resume, Cancel, a concurrency slider, and the last error.

Threads, and why the code is shaped this way:

- The engine calls `run_started` / `part_changed` / `run_finished` on its background
  thread. Redraws are throttled to `REDRAW_INTERVAL_S` (about ten a second) by time, with
  one trailing redraw scheduled on the engine's loop so the last change of a burst is never
  lost, and an unthrottled final redraw at `run_finished`, so the end state is exact.
- Button clicks arrive wherever the kernel handles the widget's comm message: the main shell
  or, in JupyterLab 4 with ipykernel 7, a subshell thread. The callbacks only call the
  handle, which is thread-safe (`Controls` hands every change to the engine's loop).
- ipykernel 7 routes a comm's next incoming message to the shell the comm last *published*
  from, whatever subshell the front end addressed. Setting a button's trait from a cell or
  from the engine thread publishes from the main shell, so the next click would wait for a
  busy cell (`outcomes = await handle` right after `dispatch()` is the usual one). So:
  a control's traits are set only from that control's own callback (Pause flips its own
  description; the run's phase is shown in the label instead), and after the controls were
  created and bound from the cell, `_unpin_comm` forgets that main-shell publish, so even the
  first click goes where the front end sends it (JupyterLab 4.6: a subshell) and is handled
  while a cell is busy. The one exception: the controls are disabled from the engine thread
  at `run_finished`. That pins them to the main shell again, but a disabled widget sends
  nothing, so nothing can wait on it.
"""

from __future__ import annotations

import asyncio
import html
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from splitkit._checks import positive_int, positive_number
from splitkit.engine.progress import REDRAW_INTERVAL_S
from splitkit.engine.state import RunState
from splitkit.statuses import OutcomeStatus

if TYPE_CHECKING:
    from splitkit.engine.handle import RunHandle

__all__ = ["ControlPanel"]

# Status colours shared with the HTML reprs (reprs.py), so a run looks the same everywhere.
STATUS_COLORS: dict[str, str] = {
    OutcomeStatus.PENDING: "#9e9e9e",
    OutcomeStatus.RUNNING: "#1e88e5",
    OutcomeStatus.COMPLETED: "#43a047",
    OutcomeStatus.FAILED: "#e53935",
    OutcomeStatus.CANCELED: "#fb8c00",
}


class ControlPanel:
    """Progress and controls of one run. `bind(handle)`, `display()`, then let it observe.

    `dispatch()` does all of that in a notebook. To watch a run started with `panel=False`,
    pass a panel in `observers=[panel]` and `bind()` it to the returned handle.

    `redraw_interval_s` is the least time between two redraws (0 redraws on every change);
    `max_concurrency` is the slider's top (raised to the run's concurrency if that is more).
    """

    def __init__(
        self, *, redraw_interval_s: float = REDRAW_INTERVAL_S, max_concurrency: int = 32
    ) -> None:
        self._interval = positive_number("redraw_interval_s", redraw_interval_s, allow_zero=True)
        max_concurrency = positive_int("max_concurrency", max_concurrency)
        self._handle: RunHandle | None = None
        self._state: RunState | None = None
        self._ended_before = 0  # parts ended by earlier runs: not this run's pace
        self._finished = False
        self._run_error: str | None = None
        self._last_draw = float("-inf")
        self._trailing: asyncio.TimerHandle | None = None
        # Draws come from the engine thread, and from bind()/display() on the cell's thread.
        self._lock = threading.RLock()

        self.bar = widgets.IntProgress(value=0, min=0, max=1, description="parts")
        self.label = widgets.HTML(value="")
        self.counts = widgets.HTML(value="")
        self.pause_button = widgets.ToggleButton(
            value=False, description="Pause", icon="pause", tooltip="start no new part"
        )
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", tooltip="start no new part; cancel the rest"
        )
        self.concurrency = widgets.IntSlider(
            value=1,
            min=1,
            max=max_concurrency,
            description="concurrency",
            continuous_update=False,  # one change when the slider is let go, not one per pixel
        )
        self.error = widgets.HTML(value="")
        for widget, name in (
            (self.bar, "bar"),
            (self.label, "label"),
            (self.counts, "counts"),
            (self.pause_button, "pause"),
            (self.cancel_button, "cancel"),
            (self.concurrency, "concurrency"),
            (self.error, "error"),
        ):
            widget.add_class(f"splitkit-{name}")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.bar, self.label]),
                self.counts,
                widgets.HBox([self.pause_button, self.cancel_button, self.concurrency]),
                self.error,
            ]
        )
        self.widget.add_class("splitkit-panel")

        self.pause_button.observe(self._on_pause, names="value")
        self.cancel_button.on_click(self._on_cancel)
        self.concurrency.observe(self._on_concurrency, names="value")
        self._draw()

    # -- wiring ------------------------------------------------------------------------
    def bind(self, handle: RunHandle) -> ControlPanel:
        """Steer `handle` with the buttons. Before the run starts, or during it."""
        self._handle = handle
        limit = handle.concurrency
        if limit > self.concurrency.max:
            self.concurrency.max = limit
        self.concurrency.value = limit  # the observer sees the same value: no-op
        if self.pause_button.value and not handle.controls.paused:
            handle.pause()  # Pause pressed before there was a run to pause
        self._unpin_controls()  # setting the slider above published from the cell's shell
        self._draw()
        return self

    def display(self) -> None:
        """Show the panel in the notebook (below the cell that started the run)."""
        from IPython.display import display

        self._draw()
        self._unpin_controls()
        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # `panel` as a cell's last line shows the widgets, like any ipywidget.
        return self.widget._repr_mimebundle_(**kwargs)

    def _unpin_controls(self) -> None:
        for control in (self.pause_button, self.cancel_button, self.concurrency):
            _unpin_comm(control)

    # -- button callbacks (kernel's comm thread: main shell or a subshell) ---------------
    def _on_pause(self, change: dict[str, Any]) -> None:
        paused = bool(change["new"])
        # The button's own traits, from its own callback: see the module docstring.
        self.pause_button.description = "Resume" if paused else "Pause"
        self.pause_button.icon = "play" if paused else "pause"
        if self._handle is not None:
            if paused:
                self._handle.pause()
            else:
                self._handle.resume()

    def _on_cancel(self, _button: widgets.Button) -> None:
        self.cancel_button.disabled = True  # own trait, own callback; cancel happens once
        self.cancel_button.description = "Canceling"
        if self._handle is not None:
            self._handle.cancel()

    def _on_concurrency(self, change: dict[str, Any]) -> None:
        value = int(change["new"])
        if self._handle is not None and value != self._handle.concurrency:
            self._handle.set_concurrency(value)

    # -- RunObserver (engine thread) -----------------------------------------------------
    def run_started(self, state: RunState) -> None:
        with self._lock:
            self._state = state
            self._ended_before = state.ended
        self._draw()

    def part_changed(self, state: RunState) -> None:
        now = time.monotonic()
        if now - self._last_draw >= self._interval:
            self._state = state
            self._draw()
            return
        if self._trailing is not None:
            return  # a redraw is already due: it will show this change too
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on an engine loop: the next change, or the end, redraws
        self._state = state
        delay = self._interval - (now - self._last_draw)
        self._trailing = loop.call_later(delay, self._trailing_draw)

    def run_finished(self, state: RunState) -> None:
        # Called from the engine's `finally`: a run that is dying of an exception has it
        # in flight here, before the handle can know it.
        error = sys.exc_info()[1]
        with self._lock:
            if self._trailing is not None:
                self._trailing.cancel()
                self._trailing = None
            self._state = state
            self._finished = True
            if error is not None:
                self._run_error = f"{type(error).__name__}: {error}"
        self._draw()
        # Disabled from this thread on purpose: see the module docstring.
        for control in (self.pause_button, self.cancel_button, self.concurrency):
            control.disabled = True

    # -- drawing -------------------------------------------------------------------------
    def _trailing_draw(self) -> None:
        self._trailing = None
        self._draw()

    def _draw(self) -> None:
        with self._lock:
            self._last_draw = time.monotonic()
            state = self._state
            if state is None:
                self.label.value = f"<b>{self._phase(None)}</b> · waiting for the run's parts"
                return
            tally = state.tally()
            total = len(state.rows)
            ended = tally["completed"] + tally["failed"] + tally["canceled"]
            with self.bar.hold_sync():  # one comm message for the three traits
                self.bar.max = max(total, 1)
                self.bar.value = ended
                self.bar.bar_style = self._bar_style(tally)
            self.label.value = self._label(state, tally, ended, total)
            self.counts.value = self._counts(tally)
            last_error = self._run_error or state.last_error
            self.error.value = (
                f'<span style="color:{STATUS_COLORS["failed"]}">last error: '
                f"{html.escape(last_error)}</span>"
                if last_error
                else ""
            )

    def _phase(self, tally: dict[str, int] | None) -> str:
        handle = self._handle
        if self._finished:
            if self._run_error:
                return "stopped"
            if tally and tally["canceled"]:
                return "canceled"
            return "done"
        if handle is not None and handle.controls.cancelled:
            return "canceling"
        if handle is not None and handle.controls.paused:
            return "paused"
        return "running" if self._state is not None else "starting"

    def _bar_style(self, tally: dict[str, int]) -> str:
        if tally["failed"]:
            return "danger"
        if tally["canceled"]:
            return "warning"
        if self._finished:
            return "success"
        return "info"

    def _label(self, state: RunState, tally: dict[str, int], ended: int, total: int) -> str:
        phase = self._phase(tally)
        parts = f"<b>{ended:,}</b>/{total:,} parts"
        records = f"{state.records_done:,}/{state.records_total:,} records"
        rate = f"{state.records_per_s:,.0f} rec/s"
        eta = self._eta(state, tally, ended, phase)
        return f"<b>{phase}</b> · {parts} · {records} · {rate} · ETA {eta}"

    def _eta(self, state: RunState, tally: dict[str, int], ended: int, phase: str) -> str:
        if phase in {"done", "canceled", "stopped"}:
            return "0s"
        if phase in {"paused", "canceling"}:
            return phase
        done_now = ended - self._ended_before
        if done_now <= 0:
            return "–"
        # Parts, not records: failed and canceled parts count as progress too.
        left = tally["pending"] + tally["running"]
        return _duration(left * state.elapsed_s / done_now)

    def _counts(self, tally: dict[str, int]) -> str:
        cells = [
            f'<span class="splitkit-count-{status}" style="color:{color}">'
            f"{status} <b>{tally[status]:,}</b></span>"
            for status, color in STATUS_COLORS.items()
        ]
        return " · ".join(cells)


def _unpin_comm(widget: widgets.Widget) -> None:
    """Let the front end's next message to `widget` be handled where the front end sends it.

    ipykernel 7 (`ipykernel.comm.comm.BaseComm`) remembers the subshell a comm last
    published from (`_reply_subshell_id`) and routes the comm's incoming messages there,
    overriding the message's own `subshell_id`. A widget created or changed from a cell is
    pinned to the main shell, so its first click waits for any busy cell. Forgetting the
    pin makes the kernel use the message's header: JupyterLab 4.6 sends widget messages on a
    subshell, so the click is handled at once. The attribute is private, hence the guards:
    on any other kernel, or a version without it, this does nothing.
    """
    comm = getattr(widget, "comm", None)
    lock = getattr(comm, "_reply_subshell_lock", None)
    if comm is None or lock is None:
        return
    with lock:
        comm.__dict__.pop("_reply_subshell_id", None)


def _duration(seconds: float) -> str:
    """12s, 3m 04s, 1h 02m: short enough for a progress label."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
