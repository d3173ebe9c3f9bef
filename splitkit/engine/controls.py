"""Pause, resume, stop, cancel and concurrency: set from any thread, obeyed by the engine's
loop.

The engine runs on its own event loop in a background thread (so notebook buttons keep
working while parts run). Calls from other threads are handed to that loop with
`call_soon_threadsafe`; the state itself only ever changes on the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from splitkit._checks import positive_int


class Controls:
    """The run's steering wheel. Safe to call from any thread, before or during the run."""

    def __init__(self, concurrency: int) -> None:
        self._limit = positive_int("concurrency", concurrency)
        self._paused = False
        self._stopped = False
        self._cancelled = False
        self._ended = False  # set by unbind(): the run is over, changes are no-ops
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._changed: asyncio.Condition | None = None
        self._listeners: list[Callable[[], None]] = []

    # -- read from anywhere ------------------------------------------------------------
    @property
    def concurrency(self) -> int:
        return self._limit

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        """Stopped here (Ctrl-C, `stop()`): no new part starts; the rest stay open."""
        return self._stopped

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the engine's thread) whenever a control changes."""
        self._listeners.append(callback)

    # -- set from anywhere -------------------------------------------------------------
    def pause(self) -> None:
        """Start no new part until `resume()`; running parts go on to the end."""
        self._apply(lambda: setattr(self, "_paused", True))

    def resume(self) -> None:
        self._apply(lambda: setattr(self, "_paused", False))

    def stop(self) -> None:
        """Start no new part; running parts finish; the rest stay open on the server."""
        self._apply(lambda: setattr(self, "_stopped", True))

    def cancel(self) -> None:
        """Start no new part; the engine then cancels the parts that never started."""
        self._apply(lambda: setattr(self, "_cancelled", True))

    def set_concurrency(self, value: int) -> None:
        """Change how many parts may run at once, while the run goes on."""
        value = positive_int("concurrency", value)
        self._apply(lambda: setattr(self, "_limit", value))

    def _apply(self, change: Callable[[], None]) -> None:
        here = running_loop()  # this thread's loop: read before the lock, it is ours alone
        with self._lock:
            if self._ended:
                return  # the run is over: a late click (or call) changes nothing
            loop = self._loop
            if loop is None:
                change()  # not running yet: the run starts with this state
                return
            if here is not loop:
                # Scheduled under the lock: the engine unbinds (under it) before its loop
                # closes, so the loop cannot close between this check and this call.
                loop.call_soon_threadsafe(self._changed_now, change)
                return
        self._changed_now(change)  # on the engine's loop: listeners run now, lock released

    def _changed_now(self, change: Callable[[], None]) -> None:
        change()
        if self._changed is not None:
            asyncio.get_running_loop().create_task(self._notify())
        for listener in self._listeners:
            listener()

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    # -- used by the engine, on its loop -----------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loop = loop
            self._changed = asyncio.Condition()

    def unbind(self) -> None:
        """The run is over (called on its loop, before the loop closes)."""
        with self._lock:
            self._ended = True
            self._loop = None
            self._changed = None

    async def slot(self, running: Callable[[], int], cap: int | None = None) -> bool:
        """Wait until a new part may start (fewer than the concurrency, or `cap`, running);
        False once the run is stopped or cancelled."""
        assert self._changed is not None, "bind() first"

        def may_start() -> bool:
            limit = self._limit if cap is None else min(self._limit, cap)
            return not self._paused and running() < limit

        async with self._changed:
            await self._changed.wait_for(lambda: self._ending or may_start())
        return not self._ending

    @property
    def _ending(self) -> bool:
        return self._stopped or self._cancelled

    async def part_ended(self) -> None:
        """A running part ended: a slot may have opened."""
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any (Jupyter's kernel has one)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
