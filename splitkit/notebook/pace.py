"""A run's pace for the panel's label: its active time, throughput and ETA.

Throughput and ETA count the run's *active* time: the clock (injectable, for tests) from
the run's start, less every interval it was paused, up to its end. A long pause therefore
neither drags the records per second down nor pushes the ETA out.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ActiveTime", "duration", "eta", "throughput"]


class ActiveTime:
    """A run's time on `clock` from `start()` to `finish()`, less its pauses.

    `track(paused)` is told the run's paused state at every notice; a pause counts from the
    first notice that sees it to the first that does not (or to `finish()`). Not
    thread-safe: the panel calls it under its lock.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._began: float | None = None
        self._ended_at: float | None = None
        self._paused_total = 0.0
        self._paused_since: float | None = None

    def start(self) -> None:
        self._began = self._clock()

    def track(self, paused: bool) -> None:
        """Note when the run was paused and resumed."""
        if paused and self._paused_since is None:
            self._paused_since = self._clock()
        elif not paused and self._paused_since is not None:
            self._paused_total += self._clock() - self._paused_since
            self._paused_since = None

    def finish(self) -> None:
        """The run's time ends here (a pause still open ends with it)."""
        self.track(False)
        self._ended_at = self._clock()

    def seconds(self) -> float:
        """This run's time so far, less its pauses."""
        if self._began is None:
            return 0.0
        end = self._ended_at if self._ended_at is not None else self._clock()
        paused = self._paused_total
        if self._paused_since is not None:
            paused += end - self._paused_since
        return max(end - self._began - paused, 0.0)


def throughput(records: int, active_s: float) -> str:
    """Records per second of active time, for the label."""
    return f"{records / max(active_s, 1e-9):,.0f} rec/s"


def eta(left: int, done: int, active_s: float) -> str:
    """The time the `left` parts will take at this run's pace (`done` parts in
    `active_s`); "–" before any part has ended."""
    if done <= 0:
        return "–"
    return duration(left * active_s / done)


def duration(seconds: float) -> str:
    """12s, 3m 04s, 1h 02m: short enough for a progress label."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
