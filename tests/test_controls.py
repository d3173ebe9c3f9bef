"""Controls at the edges of a run: a change that arrives as the run ends is a no-op, never
an error ("Event loop is closed") on the clicking thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

import splitkit.engine.controls as controls_module
from splitkit.engine.controls import Controls

WAIT_S = 20.0


def bound(controls: Controls) -> asyncio.AbstractEventLoop:
    """A loop standing in for the engine's, with `controls` bound to it as a run does."""
    loop = asyncio.new_event_loop()

    async def bind() -> None:
        controls.bind(asyncio.get_running_loop())

    loop.run_until_complete(bind())
    return loop


def test_a_change_after_the_run_ended_is_a_no_op() -> None:
    controls = Controls(2)
    loop = bound(controls)
    controls.unbind()  # the engine's last step on its loop...
    loop.close()  # ...before the loop closes
    controls.pause()
    controls.stop()
    controls.cancel()
    controls.set_concurrency(5)
    assert not controls.paused and not controls.stopped and not controls.cancelled
    assert controls.concurrency == 2


def test_a_change_before_the_run_starts_is_kept() -> None:
    controls = Controls(2)
    controls.pause()
    controls.set_concurrency(3)
    assert controls.paused and controls.concurrency == 3


def test_a_click_racing_the_end_of_the_run_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run ends while a click is inside `pause()`: between its look at the engine's
    loop and its hand-over to it. That hand-over must not meet a closed loop."""
    controls = Controls(2)
    loop = bound(controls)
    inside = threading.Event()
    run_over = threading.Event()
    real_running_loop = controls_module.running_loop

    def slow_running_loop() -> asyncio.AbstractEventLoop | None:
        inside.set()  # the click is inside pause() now...
        assert run_over.wait(WAIT_S)  # ...and stays there until the run has ended
        return real_running_loop()

    monkeypatch.setattr(controls_module, "running_loop", slow_running_loop)
    errors: list[BaseException] = []

    def click() -> None:
        try:
            controls.pause()
        except BaseException as exc:
            errors.append(exc)

    clicker = threading.Thread(target=click)
    clicker.start()
    assert inside.wait(WAIT_S)
    controls.unbind()  # the run ends: the engine unbinds, then its loop closes
    loop.close()
    run_over.set()
    clicker.join(WAIT_S)
    assert not clicker.is_alive()
    assert errors == [], f"a click at the end of the run raised {errors[0]!r}"
    assert not controls.paused
