"""The control panel, driven headless the way the front end drives it, against a real run.

Each test starts a real dispatch on the session's embedded server (over HTTP) with the
panel as an observer, then presses its widgets: `ToggleButton.value = True` is what the
front end sends for a click on Pause, `Button.click()` what it sends for Cancel, and a new
`IntSlider.value` what it sends when the slider is let go. The handlers record what they
see (which parts started, how many ran at once), so the assertions are about what the run
did, not about what the panel printed; the panel's own text is checked at the end, where
it must be exact.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from splitkit import Client, Part, RunHandle, dispatch, plan_parts, split_parent, summarize
from splitkit.engine.state import PartRow, RunState
from splitkit.notebook import ControlPanel
from splitkit.notebook.comms import _unpin_comm
from splitkit.pipeline import start_parent_job
from splitkit.server import EmbeddedServer

WAIT_S = 20.0  # generous: a loaded CI machine is slow, and a deadline only costs on failure


def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


def shown_count(panel: ControlPanel, status: str) -> int:
    """The number the panel shows for a status (parsed from its counts line)."""
    match = re.search(
        rf"splitkit-count-{status}\b[^>]*>{status} <b>([\d,]+)</b>", panel.counts.value
    )
    assert match, f"no {status} count in {panel.counts.value!r}"
    return int(match.group(1).replace(",", ""))


class Recorder:
    """A handler's diary: parts started, parts in flight now, and the most ever in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def enter(self, index: int) -> None:
        with self._lock:
            self.started.append(index)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def reset_max(self) -> None:
        with self._lock:
            self.max_in_flight = self.in_flight

    def sleeping(self, seconds: float) -> Callable[[Part], str]:
        def handler(part: Part) -> str:
            self.enter(part.index)
            try:
                time.sleep(seconds)
            finally:
                self.leave()
            return f"{len(part.records)} records"

        return handler


@pytest.fixture
def client(server: EmbeddedServer) -> Iterator[Client]:
    with Client(server.url, server.token, environment_id=server.environment_id) as c:
        yield c


@pytest.fixture
def new_parent(server: EmbeddedServer, client: Client) -> Callable[[int], str]:
    """A parent job on the session's sheet, split into `parts` parts of 10 records."""

    sheet_id = server.sheet_id
    assert sheet_id is not None

    def make(parts: int) -> str:
        assert client.get_counts(sheet_id).total >= parts * 10, "sample sheet too small"
        parent = start_parent_job(client, sheet_id)
        split_parent(client, parent.id, plan_parts(parts * 10, batch_size=10), check_counts=False)
        return parent.id

    return make


def start(
    client: Client,
    parent_id: str,
    handler: Callable[[Part], object],
    concurrency: int,
    claim: bool = True,
) -> tuple[RunHandle, ControlPanel]:
    panel = ControlPanel()
    handle = dispatch(
        client,
        parent_id,
        handler,
        concurrency=concurrency,
        retries=0,
        wait=False,
        panel=False,
        progress=False,
        observers=[panel],
        claim=claim,
    )
    panel.bind(handle)  # dispatch binds its own panel; one passed as an observer is ours to bind
    return handle, panel


def watch_controls(panel: ControlPanel) -> list[tuple[str, str]]:
    """(trait, thread) of every change to the panel's buttons and slider from now on."""
    seen: list[tuple[str, str]] = []
    for control in (panel.pause_button, panel.cancel_button, panel.concurrency):
        control.observe(lambda change: seen.append((change["name"], _thread())))
    return seen


def _thread() -> str:
    return threading.current_thread().name


def test_pause_stops_new_parts_and_resume_goes_on(
    client: Client, new_parent: Callable[[int], str]
) -> None:
    parts = 12
    diary = Recorder()
    handle, panel = start(client, new_parent(parts), diary.sleeping(0.2), concurrency=3)
    changes = watch_controls(panel)
    until(lambda: len(diary.started) >= 3, "the first parts to start")

    panel.pause_button.value = True  # what the front end sends when Pause is clicked
    assert panel.pause_button.description == "Resume"
    until(lambda: handle.controls.paused, "the engine's loop to take the pause")

    # Parts that were running (or started before the pause reached the engine) finish...
    until(lambda: handle.state.running == 0, "the running parts to finish")
    at_pause = set(diary.started)
    assert all(row.status == "completed" for row in handle.state.rows if row.part in at_pause), (
        "a part running at Pause did not finish normally"
    )
    # ...and no new part starts: three handler durations pass with nothing new.
    time.sleep(0.6)
    assert set(diary.started) == at_pause
    assert len(at_pause) < parts, "every part had started: the pause was never tested"
    assert not handle.done
    until(lambda: "paused" in panel.label.value, "the panel to show the pause")

    panel.pause_button.value = False  # Resume
    assert panel.pause_button.description == "Pause"
    outcomes = handle.wait(timeout=WAIT_S)

    assert sorted(diary.started) == list(range(parts)), "each part runs exactly once"
    assert (outcomes["status"] == "completed").all()
    # The end state is exact: the final redraw is not throttled.
    assert panel.bar.value == parts and panel.bar.max == parts
    assert panel.bar.bar_style == "success"
    assert shown_count(panel, "completed") == parts
    assert shown_count(panel, "pending") == shown_count(panel, "running") == 0
    assert panel.label.value.startswith("<b>done</b>")
    assert f"<b>{parts}</b>/{parts} parts" in panel.label.value
    assert f"{parts * 10}/{parts * 10} records" in panel.label.value
    assert all(w.disabled for w in (panel.pause_button, panel.cancel_button, panel.concurrency))
    # The run's own thread never touched the controls but to disable them at the end (a
    # publish from there would make the next click wait for a busy cell).
    assert {name for name, thread in changes if thread != _thread()} == {"disabled"}
    assert ("description", _thread()) in changes  # Pause flipped itself, in its callback


def test_cancel_ends_pending_parts_canceled_on_the_server(
    client: Client, new_parent: Callable[[int], str]
) -> None:
    parts = 16
    diary = Recorder()
    parent_id = new_parent(parts)
    handle, panel = start(client, parent_id, diary.sleeping(0.2), concurrency=2)
    until(lambda: len(diary.started) >= 2, "the first parts to start")

    panel.cancel_button.click()
    assert panel.cancel_button.disabled  # cancel happens once
    outcomes = handle.wait(timeout=WAIT_S)

    started = set(diary.started)
    assert 2 <= len(started) < parts
    on_server = {job.part: job.status for job in client.list_parts(parent_id)}
    assert {p for p, s in on_server.items() if s == "canceled"} == set(range(parts)) - started
    assert {p for p, s in on_server.items() if s == "complete"} == started, (
        "parts running at Cancel finish normally"
    )
    summary = summarize(outcomes)
    assert int(summary["canceled"].iloc[0]) == parts - len(started)
    assert int(summary["completed"].iloc[0]) == len(started)
    assert int(summary["pending"].iloc[0]) == 0

    assert shown_count(panel, "canceled") == parts - len(started)
    assert shown_count(panel, "completed") == len(started)
    assert panel.bar.value == parts  # canceled parts have ended too
    assert panel.label.value.startswith("<b>canceled</b>")
    assert panel.bar.bar_style == "warning"


def test_concurrency_slider_changes_parts_in_flight(
    client: Client, new_parent: Callable[[int], str]
) -> None:
    parts = 60
    diary = Recorder()

    # An async handler runs on the engine's loop: no thread pool caps how many run at once.
    async def handler(part: Part) -> None:
        diary.enter(part.index)
        try:
            await asyncio.sleep(0.2)
        finally:
            diary.leave()

    handle, panel = start(client, new_parent(parts), handler, concurrency=2)
    assert panel.concurrency.value == 2
    until(lambda: len(diary.started) >= 4, "a few parts at concurrency 2")
    assert diary.max_in_flight == 2

    panel.concurrency.value = 5  # the slider, let go at 5
    until(lambda: handle.concurrency == 5, "the engine's loop to take the new limit")
    until(lambda: diary.max_in_flight == 5, "five parts in flight at once")

    panel.concurrency.value = 1
    until(lambda: diary.in_flight <= 1, "the extra parts to drain")
    diary.reset_max()
    mark = len(diary.started)
    until(lambda: len(diary.started) >= mark + 4 or handle.done, "parts at concurrency 1")
    assert diary.max_in_flight == 1

    panel.concurrency.value = 10  # and the rest quickly
    handle.wait(timeout=WAIT_S)
    assert sorted(diary.started) == list(range(parts))
    assert shown_count(panel, "completed") == parts


def test_a_run_that_cannot_start_shows_why(server: EmbeddedServer, client: Client) -> None:
    assert server.sheet_id is not None
    parent = start_parent_job(client, server.sheet_id)  # never split: no parts to run
    panel = ControlPanel()
    with pytest.raises(ValueError, match="has no parts"):
        dispatch(
            client,
            parent.id,
            lambda part: None,
            panel=False,
            progress=False,
            observers=[panel],
            wait=True,
        )
    assert "stopped" in panel.label.value
    assert "has no parts" in panel.error.value
    assert panel.pause_button.disabled and panel.cancel_button.disabled


# -- without a server: before a run, throttling, comm routing -----------------------------------
def test_unpinning_forgets_the_shell_a_control_last_published_from() -> None:
    class Comm:  # the two attributes of ipykernel 7's BaseComm that matter
        def __init__(self) -> None:
            self._reply_subshell_lock = threading.Lock()
            self._reply_subshell_id: str | None = None  # None: the main shell

    class Widget:
        comm = Comm()

    widget = Widget()
    _unpin_comm(widget)
    assert not hasattr(widget.comm, "_reply_subshell_id")
    _unpin_comm(widget)  # twice is fine
    _unpin_comm(ControlPanel().pause_button)  # no kernel: nothing to unpin, no error


def fake_state(parts: int) -> RunState:
    state = RunState(parent_id="us_jb_fake")
    state.add(PartRow(part=i, job_id=f"us_jb_{i}", records=10) for i in range(parts))
    return state


def test_before_a_run_the_panel_waits_and_its_buttons_are_harmless() -> None:
    panel = ControlPanel()
    panel.display()  # outside IPython: prints the widget's repr, must not fail
    assert "waiting" in panel.label.value
    panel.pause_button.value = True
    panel.cancel_button.click()
    panel.concurrency.value = 3
    assert panel.pause_button.description == "Resume"


def test_redraws_are_throttled_and_the_last_change_is_drawn() -> None:
    panel = ControlPanel(redraw_interval_s=0.05)
    state = fake_state(200)
    draws = 0
    draw = panel._draw

    def counting_draw() -> None:
        nonlocal draws
        draws += 1
        draw()

    panel._draw = counting_draw  # type: ignore[method-assign]

    async def run() -> float:
        began = time.monotonic()
        panel.run_started(state)
        for row in state.rows:  # 200 changes, as fast as the loop goes
            state.move(row, "completed")
            panel.part_changed(state)
        burst = time.monotonic() - began
        await asyncio.sleep(0.2)  # the trailing redraw is due within one interval
        return burst

    burst_s = asyncio.run(run())
    # One draw at the start, at most one per interval during the burst, one trailing.
    allowed = 2 + int(burst_s / 0.05) + 1
    assert draws <= allowed, f"{draws} redraws for 200 changes in {burst_s:.3f} s"
    assert draws < 50
    assert panel.bar.value == 200, "the trailing redraw shows the last change"
    assert shown_count(panel, "completed") == 200


# -- the panel's lifecycle over a long notebook session (issue 13) --------------------------
class Kernel:
    """The kernel's main thread, headless: a thread running an asyncio loop. `run()` calls
    a function there inside a coroutine (a running loop, as in a cell), and `call()` runs a
    coroutine there. What `dispatch()` does in a notebook is then what it does here."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kernel", daemon=True)
        self.thread.start()

    def run(self, fn: Callable[..., object], *args: object) -> object:
        async def cell() -> object:
            return fn(*args)

        return self.call(cell())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT_S)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT_S)
        self.loop.close()


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    running = Kernel()
    yield running
    running.close()


class Gates:
    """A handler whose part i ends when the test opens gate i (or all of them)."""

    def __init__(self, parts: int) -> None:
        self.diary = Recorder()
        self.gates = [threading.Event() for _ in range(parts)]

    def open(self, *indexes: int) -> None:
        for index in indexes or range(len(self.gates)):
            self.gates[index].set()

    def handler(self, part: Part) -> None:
        self.diary.enter(part.index)
        try:
            assert self.gates[part.index].wait(WAIT_S), f"gate {part.index} never opened"
        finally:
            self.diary.leave()


def open_widgets() -> int:
    """Widgets with an open comm in this process (ipywidgets' own registry)."""
    from ipywidgets.widgets.widget import _instances

    return len(_instances)


def test_the_panel_follows_changes_made_from_code_and_steers_from_clicks(
    client: Client, new_parent: Callable[[int], str], kernel: Kernel
) -> None:
    parts = 8
    gates = Gates(parts)
    # Made and bound on the kernel's thread, as dispatch() does in a cell.
    panel = kernel.run(ControlPanel)
    assert isinstance(panel, ControlPanel)
    handle = dispatch(
        client,
        new_parent(parts),
        gates.handler,
        concurrency=2,
        retries=0,
        wait=False,
        panel=False,
        progress=False,
        observers=[panel],
        claim=False,
    )
    kernel.run(panel.bind, handle)
    changes = watch_controls(panel)
    until(lambda: len(gates.diary.started) == 2, "the first two parts to start")

    # Code -> panel: another cell pauses and raises the concurrency.
    handle.pause()
    until(lambda: panel.pause_button.value, "the toggle to follow handle.pause()")
    until(lambda: panel.pause_button.description == "Resume", "the toggle to say Resume")
    handle.set_concurrency(5)
    until(lambda: panel.concurrency.value == 5, "the slider to follow set_concurrency(5)")
    until(lambda: "paused" in panel.label.value, "the label to say paused")
    assert handle.controls.paused and handle.concurrency == 5  # the echo changed nothing

    gates.open(0, 1)
    until(lambda: handle.state.running == 0, "the running parts to end")
    assert sorted(gates.diary.started) == [0, 1], "a part started while paused"

    # Panel -> code: clicks (handled on the kernel's thread) steer the run.
    kernel.run(setattr, panel.concurrency, "value", 3)
    until(lambda: handle.concurrency == 3, "the slider to set the run's concurrency")
    kernel.run(setattr, panel.pause_button, "value", False)
    until(lambda: not handle.controls.paused, "Resume to reach the run")
    until(lambda: len(gates.diary.started) == 5, "three parts at concurrency 3")
    assert gates.diary.max_in_flight <= 3

    # A pause and a resume in a row from code: the toggle ends where the run is (no echo
    # of the first one undoes the second).
    handle.pause()
    handle.resume()
    gates.open()
    handle.wait(timeout=WAIT_S)
    kernel.run(lambda: None)  # whatever was scheduled on the kernel's loop has run
    assert sorted(gates.diary.started) == list(range(parts))
    assert panel.pause_button.value is False and panel.pause_button.description == "Pause"
    assert panel.concurrency.value == 3
    # The controls' traits were set on the kernel's thread only; the engine's thread only
    # disabled them at the end.
    assert {name for name, thread in changes if thread != "kernel"} == {"disabled"}
    assert ("value", "kernel") in changes


def test_a_local_stop_shows_as_stopping_then_stopped(
    client: Client, new_parent: Callable[[int], str]
) -> None:
    parts = 6
    gates = Gates(parts)
    handle, panel = start(client, new_parent(parts), gates.handler, concurrency=2, claim=False)
    until(lambda: len(gates.diary.started) == 2, "the first two parts to start")

    handle.stop()  # what Ctrl-C does
    until(lambda: panel.label.value.startswith("<b>stopping</b>"), "the label to say stopping")
    assert "ETA stopping" in panel.label.value
    gates.open()
    handle.wait(timeout=WAIT_S)

    assert panel.label.value.startswith("<b>stopped</b>"), panel.label.value
    assert shown_count(panel, "pending") == parts - 2  # left open for the next dispatch()
    assert shown_count(panel, "completed") == 2
    assert panel.bar.bar_style == "warning"

    # A click after the run ended changes nothing (and raises nothing).
    panel.pause_button.value = True
    handle.set_concurrency(7)
    assert not handle.controls.paused and handle.concurrency == 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throughput_and_eta_leave_out_paused_time(
    client: Client, new_parent: Callable[[int], str]
) -> None:
    parts = 4  # of 10 records each
    gates = Gates(parts)
    clock = FakeClock()
    panel = ControlPanel(redraw_interval_s=0, clock=clock)
    handle = dispatch(
        client,
        new_parent(parts),
        gates.handler,
        concurrency=1,
        retries=0,
        wait=False,
        panel=False,
        progress=False,
        observers=[panel],
        claim=False,
    )
    panel.bind(handle)
    until(lambda: gates.diary.started == [0], "part 0 to start")

    clock.now = 10.0
    gates.open(0)
    until(lambda: shown_count(panel, "completed") == 1, "part 0 to complete")
    # One part (10 records) in 10 s: 1 rec/s, three parts left: 30 s.
    assert "· 1 rec/s · ETA 30s" in panel.label.value, panel.label.value

    handle.pause()
    until(lambda: "paused" in panel.label.value, "the panel to see the pause")
    clock.now = 1_010.0  # a long pause
    handle.resume()
    until(lambda: panel.label.value.startswith("<b>running</b>"), "the panel to see Resume")
    # Still 10 s of running for one part: the 1,000 s paused count for nothing.
    assert "· 1 rec/s · ETA 30s" in panel.label.value, panel.label.value

    clock.now = 1_020.0
    gates.open()
    handle.wait(timeout=WAIT_S)
    # 40 records in 20 s of running.
    assert panel.label.value.startswith("<b>done</b>")
    assert "· 2 rec/s · ETA 0s" in panel.label.value, panel.label.value


def test_runs_in_one_kernel_leave_no_widget_open(
    client: Client, new_parent: Callable[[int], str], kernel: Kernel
) -> None:
    before = open_widgets()
    handles: list[RunHandle] = []

    async def cell(parent_id: str) -> None:
        # The notebook path: dispatch() in a running loop shows a panel and returns at once.
        handle = dispatch(
            client, parent_id, lambda part: None, panel=True, progress=False, claim=False
        )
        handles.append(handle)
        await handle

    peak = 0
    for _ in range(5):  # 30 in a real kernel: test_kernel.py
        kernel.call(cell(new_parent(1)))
        peak = max(peak, open_widgets())
    kernel.run(lambda: None)  # the last close, scheduled on the kernel's loop, has run
    assert all(h.done and h.error is None for h in handles)
    assert open_widgets() == before, f"{open_widgets() - before} widgets left open by 5 runs"
    assert peak == before, "a run's widgets were still open after `await handle`"


def test_a_closed_panel_keeps_its_final_view(
    client: Client, new_parent: Callable[[int], str]
) -> None:
    before = open_widgets()
    handle, panel = start(client, new_parent(2), lambda part: None, concurrency=2, claim=False)
    assert open_widgets() > before
    handle.wait(timeout=WAIT_S)
    assert not panel.closed  # not shown by display(): it stays live until close()
    panel.close()
    panel.close()  # twice is fine
    assert panel.closed and open_widgets() == before
    final = panel.final_html()
    assert 'class="splitkit-panel splitkit-panel-final"' in final
    assert "<b>done</b>" in final and "splitkit-count-completed" in final
    bundle = panel._repr_mimebundle_()
    assert bundle["text/html"] == final
    assert bundle["text/plain"].startswith("done · 2/2 parts")


def test_a_refused_run_shows_no_panel(
    client: Client, new_parent: Callable[[int], str], capsys: pytest.CaptureFixture[str]
) -> None:
    parent_id = new_parent(2)
    gates = Gates(2)
    handle = dispatch(
        client,
        parent_id,
        gates.handler,
        wait=False,
        panel=False,
        progress=False,
        retries=0,
        claim=False,
    )
    until(lambda: len(gates.diary.started) >= 1, "the first run to start")
    before = open_widgets()
    capsys.readouterr()

    with pytest.raises(RuntimeError, match="still going in this process"):
        dispatch(
            client,
            parent_id,
            lambda part: None,
            wait=False,
            panel=True,
            progress=False,
            claim=False,
        )
    # Outside IPython, display() prints the widget: nothing was shown, and no widget is open.
    assert capsys.readouterr().out == ""
    assert open_widgets() == before
    gates.open()
    handle.wait(timeout=WAIT_S)
