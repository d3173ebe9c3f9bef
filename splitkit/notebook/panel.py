"""The notebook control panel: one run's progress, counts and controls, in stock ipywidgets.

`ControlPanel` is a `RunObserver` (the engine calls it on its own thread) and a small
widget tree: one aggregate progress bar with a label (parts, records, throughput, ETA), the
live counts by status, Pause/Resume, Cancel, a concurrency slider, and the last error.

Threads, and why the code is shaped this way:

- The engine calls `run_started` / `part_changed` / `run_finished` on its background
  thread. Redraws are throttled to `REDRAW_INTERVAL_S` (about ten a second) by time, with
  one trailing redraw scheduled on the engine's loop so the last change of a burst is never
  lost, and an unthrottled final redraw at `run_finished`, so the end state is exact. The
  drawn widgets (bar, label, counts, error) are set from the engine thread: their updates
  reach the page even while a cell keeps the kernel's main thread busy.
- Button clicks arrive wherever the kernel handles the widget's comm message: the main shell
  or, in JupyterLab 4 with ipykernel 7, a subshell thread. The callbacks only call the
  handle, which is thread-safe (`Controls` hands every change to the engine's loop).
- ipykernel 7 routes a comm's next incoming message to the shell the comm last *published*
  from, whatever subshell the front end addressed. Setting a control's trait publishes, and
  pins its next click to that shell: from a cell or the engine thread, the main shell, so
  the click would wait for a busy cell (`outcomes = await handle` right after `dispatch()`
  is the usual one). So the controls' traits are set in two places only: in the control's
  own callback (Pause flips its own description), and on the *home* loop, the kernel's
  loop that created the panel, right before `_unpin_comm` forgets the pin (see `comms.py`).
- Changes made from code (`handle.pause()`, `handle.set_concurrency(n)` in another cell)
  reach the panel as a notification on the engine thread. The panel notes that the
  controls changed and schedules `_follow_controls` on the home loop, which sets the toggle
  and the slider to the true state (with their callbacks muted, so the echo does not steer
  the run again). Outside a kernel (no loop at construction) it runs where it is called.
- At the run's end the controls are disabled from the engine thread (a disabled widget
  sends nothing, so its pin cannot hold up a click). A panel shown with `display()` then
  closes itself on the home loop: its output is replaced by a static HTML view of the final
  state and every comm of its widgets (layouts and styles too) is closed, so a notebook
  that dispatches many runs keeps no live widgets of ended runs. `close()` does the same on
  request.
- Throughput and ETA count this run's active time: the clock (`clock=`, injectable) from
  `run_started`, less every interval the run was paused (`pace.py`).

What the widgets show (label, counts, error) and the static final view are built as HTML in
`panel_view.py`; this module wires the widgets, the threads and the run together.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from splitkit._checks import positive_int, positive_number
from splitkit.engine.controls import running_loop
from splitkit.engine.progress import REDRAW_INTERVAL_S
from splitkit.engine.state import RunState
from splitkit.notebook import panel_view as view
from splitkit.notebook.comms import _unpin_comm, widget_tree
from splitkit.notebook.pace import ActiveTime

if TYPE_CHECKING:
    from splitkit.engine.handle import RunHandle

__all__ = ["ControlPanel"]

log = logging.getLogger("splitkit.notebook")


class ControlPanel:
    """Progress and controls of one run. `bind(handle)`, `display()`, then let it observe.

    `dispatch()` does all of that in a notebook. To watch a run started with `panel=False`,
    pass a panel in `observers=[panel]` and `bind()` it to the returned handle.

    `redraw_interval_s` is the least time between two redraws (0 redraws on every change);
    `max_concurrency` is the slider's top (raised to the run's concurrency if that is more);
    `clock` is the monotonic clock the throughput and ETA are measured with (tests).

    A panel shown with `display()` closes itself when the run ends: its output becomes a
    static HTML view of the final state and its widgets' comms are closed. A panel shown any
    other way (as a cell's last expression) stays live until `close()`.
    """

    def __init__(
        self,
        *,
        redraw_interval_s: float = REDRAW_INTERVAL_S,
        max_concurrency: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = positive_number("redraw_interval_s", redraw_interval_s, allow_zero=True)
        max_concurrency = positive_int("max_concurrency", max_concurrency)
        if not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
        self._handle: RunHandle | None = None
        self._state: RunState | None = None
        self._ended_before = 0  # parts ended by earlier runs: not this run's pace
        self._finished = False
        self._run_error: str | None = None
        self._last_draw = float("-inf")
        self._trailing: asyncio.TimerHandle | None = None
        # Draws come from the engine thread, and from bind()/display() on the cell's thread.
        self._lock = threading.RLock()
        # The kernel's loop (the thread that made the panel): the controls' traits are set
        # there only. None outside a running loop (a script, a test): no kernel to pin.
        self._home = running_loop()
        # What the controls showed at the last look: a change from code is a difference.
        self._seen: tuple[bool, int] = (False, 1)
        self._follow_due = False
        self._muted_thread: int | None = None  # the thread setting the controls to follow
        # This run's active time on `clock`: pauses do not count towards throughput or ETA.
        self._active = ActiveTime(clock)
        self._displays: list[Any] = []  # display handles of display(): the final view goes there
        self._displayed = False  # by display(): then the run's end closes the panel
        self._closed = False
        self._final_html: str | None = None

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
        with self._lock:
            self._seen = (self.pause_button.value, limit)
        self._unpin_controls()  # setting the slider above published from the cell's shell
        self._draw()
        return self

    def display(self) -> None:
        """Show the panel in the notebook (below the cell that started the run)."""
        from IPython.display import HTML, display

        if self._closed:  # the run is over: its final view
            display(HTML(self.final_html()))
            return
        self._draw()
        self._unpin_controls()
        shown = display(self.widget, display_id=True)  # None outside IPython
        with self._lock:
            if shown is not None:
                self._displays.append(shown)
            self._displayed = True
        if self._finished:  # shown after the end: nothing left to steer
            self._call_home(self.close)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # `panel` as a cell's last line shows the widgets, like any ipywidget; once closed,
        # the final view.
        if self._closed:
            return {"text/html": self.final_html(), "text/plain": view.plain_text(self.label.value)}
        return self.widget._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        """Replace the shown panel by a static HTML view of its state, and close every comm
        of its widgets (in the kernel and the front end). Safe to call twice, from any
        thread; the run goes on if it was still running (only the panel is gone)."""
        from IPython.display import HTML

        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._trailing is not None:
                self._trailing.cancel()
                self._trailing = None
            final = self._final_html = self._snapshot()
            displays, self._displays = self._displays, []
        # The output first, then the comms: the front end never shows a closed widget.
        for shown in displays:
            shown.update(HTML(final))
        for widget in widget_tree(self.widget):
            widget.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def final_html(self) -> str:
        """The static view of the panel as it is now (what `close()` leaves in the output)."""
        with self._lock:
            return self._final_html if self._final_html is not None else self._snapshot()

    def _unpin_controls(self) -> None:
        for control in (self.pause_button, self.cancel_button, self.concurrency):
            _unpin_comm(control)

    def _call_home(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the home loop (the kernel's), or here when there is none."""
        loop = self._home
        if loop is None or running_loop() is loop:
            callback()
            return
        try:
            loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the home loop is closed: its kernel is gone, nothing to show
            log.debug("control panel: the kernel's loop is closed, %s skipped", callback)

    # -- button callbacks (kernel's comm thread: main shell or a subshell) ---------------
    def _muted(self) -> bool:
        """True while `_follow_controls` sets the controls on this thread: not a click."""
        return self._muted_thread == threading.get_ident()

    def _on_pause(self, change: dict[str, Any]) -> None:
        paused = bool(change["new"])
        # The button's own traits, from its own callback: see the module docstring.
        self.pause_button.description = "Resume" if paused else "Pause"
        self.pause_button.icon = "play" if paused else "pause"
        if self._muted():
            return
        with self._lock:
            self._seen = (paused, self._seen[1])
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
        if self._muted():
            return
        with self._lock:
            self._seen = (self._seen[0], value)
        if self._handle is not None and value != self._handle.concurrency:
            self._handle.set_concurrency(value)

    # -- following changes made from code ------------------------------------------------
    def _notice_controls(self) -> None:
        """Engine thread: if the controls changed since the last look (code called
        `pause()` or `set_concurrency()`), have the home loop show it."""
        handle = self._handle
        if handle is None:
            return
        controls = (handle.controls.paused, handle.concurrency)
        with self._lock:
            if self._closed or controls == self._seen or self._follow_due:
                return
            self._follow_due = True
        self._call_home(self._follow_controls)

    def _follow_controls(self) -> None:
        """Home loop: set the toggle and the slider to the controls' true state."""
        handle = self._handle
        with self._lock:
            self._follow_due = False
            if handle is None or self._closed:
                return
            paused, limit = handle.controls.paused, handle.concurrency
            self._seen = (paused, limit)
        self._muted_thread = threading.get_ident()
        try:
            if limit > self.concurrency.max:
                self.concurrency.max = limit
            self.concurrency.value = limit
            self.pause_button.value = paused  # its callback flips the description, muted
        finally:
            self._muted_thread = None
        self._unpin_controls()  # those sets published from the main shell: see the docstring

    # -- RunObserver (engine thread) -----------------------------------------------------
    def run_started(self, state: RunState) -> None:
        with self._lock:
            self._state = state
            self._ended_before = state.ended
            self._active.start()
            self._track_pause()
        self._notice_controls()
        self._draw()

    def part_changed(self, state: RunState) -> None:
        with self._lock:
            self._track_pause()
        self._notice_controls()
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
            self._active.finish()  # closes a pause still open: the run's time ends here
            if error is not None:
                self._run_error = f"{type(error).__name__}: {error}"
            displayed = self._displayed
        self._draw()
        # Disabled from this thread on purpose: see the module docstring.
        for control in (self.pause_button, self.cancel_button, self.concurrency):
            control.disabled = True
        if displayed:
            self._call_home(self.close)

    def _track_pause(self) -> None:
        """Note when the run was paused and resumed (under the lock, on every notice)."""
        handle = self._handle
        self._active.track(handle is not None and handle.controls.paused and not self._finished)

    # -- drawing -------------------------------------------------------------------------
    def _trailing_draw(self) -> None:
        self._trailing = None
        self._draw()

    def _draw(self) -> None:
        with self._lock:
            if self._closed:
                return  # the final view is out; the widgets are gone
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
                self.bar.bar_style = view.bar_style(tally, finished=self._finished)
            self.label.value = view.label_html(
                self._phase(tally),
                state,
                tally,
                ended,
                total,
                active_s=self._active.seconds(),
                ended_before=self._ended_before,
            )
            self.counts.value = view.counts_html(tally)
            self.error.value = view.error_html(self._run_error or state.last_error)

    def _phase(self, tally: dict[str, int] | None) -> str:
        handle = self._handle
        return view.phase(
            tally,
            None if handle is None else handle.controls,
            started=self._state is not None,
            finished=self._finished,
            run_error=self._run_error,
        )

    def _snapshot(self) -> str:
        """The panel's drawn state as static HTML (see `panel_view.py`)."""
        return view.final_html(
            value=self.bar.value,
            max_value=self.bar.max,
            bar_style=self.bar.bar_style,
            label=self.label.value,
            counts=self.counts.value,
            error=self.error.value,
        )
