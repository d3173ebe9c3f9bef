"""How a part runs (`PartOptions`): the handler's timeout and retries, and the window in
which its end is delivered to the server, as the tenacity loops `run_part` drives
(`retrying()` for the handler, `delivering()` for the end). See `steps.py` for who retries
what, and for the most requests one part makes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from splitkit._checks import non_negative_int, positive_number
from splitkit.api.errors import ConnectionFailedError, RateLimitedError, ServerError

__all__ = ["TRANSIENT", "PartOptions"]

T = TypeVar("T")

TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionFailedError,
    RateLimitedError,
    ServerError,
)


@dataclass(frozen=True)
class PartOptions:
    """How a part runs: the handler's timeout and retries, and the delivery window.

    `retries` re-runs of the handler when it raised one of `retry_on`, with backoff from
    `backoff_initial_s` doubling up to `backoff_max_s` (the delivery loop backs off the
    same way); `delivery_window_s` bounds how long the part's end is delivered.
    """

    timeout_s: float | None = None
    retries: int = 2
    retry_on: tuple[type[BaseException], ...] = TRANSIENT
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    delivery_window_s: float = 60.0
    # Sample the handlers' peak allocation (`engine/memory.py`): the run's tracing is ours.
    measure_memory: bool = False

    def __post_init__(self) -> None:
        if self.timeout_s is not None:
            positive_number("timeout", self.timeout_s)
        non_negative_int("retries", self.retries)
        if not (
            isinstance(self.retry_on, tuple)
            and all(isinstance(t, type) and issubclass(t, BaseException) for t in self.retry_on)
        ):
            raise TypeError(f"retry_on must be a tuple of exception classes, got {self.retry_on!r}")
        positive_number("backoff_initial_s", self.backoff_initial_s)
        positive_number("backoff_max_s", self.backoff_max_s)
        positive_number("delivery_window", self.delivery_window_s)

    def _backoff(self) -> wait_exponential_jitter:
        return wait_exponential_jitter(
            multiplier=self.backoff_initial_s,
            jitter=self.backoff_initial_s,
            max=self.backoff_max_s,
        )

    def retrying(self) -> AsyncRetrying:
        """Runs of the handler: again after one of `retry_on`, `retries` times at most."""
        return AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._backoff(),
            retry=retry_if_exception_type(self.retry_on),
            reraise=True,
        )

    async def run_retrying(self, call: Callable[[int], Awaitable[T]]) -> T:
        """`call(attempt_number)` under `retrying()`. The first try runs bare (a tenacity loop
        costs a fifth of a no-op part's client CPU); only an error of `retry_on` enters the
        loop, whose first attempt replays it, so the waits and the bound are the loop's."""
        try:
            return await call(1)
        except BaseException as exc:  # as tenacity sees it: any error, judged by retry_on
            if not isinstance(exc, self.retry_on):
                raise
            first: BaseException | None = exc
        async for attempt in self.retrying():
            with attempt:
                if first is not None:
                    failure, first = first, None
                    raise failure
                result = await call(attempt.retry_state.attempt_number)
        return result

    async def deliver(self, round_: Callable[[], Awaitable[T | str]]) -> T | str:
        """`round_()` under `delivering()`: its first round runs bare (see `run_retrying`),
        a reason (str) sends it into the loop, whose window counts from that first round."""
        started = time.monotonic()
        first: T | str | None = await round_()
        if not isinstance(first, str):
            return first  # type: ignore[return-value]  # T itself is never None here

        async def replayed() -> T | str:
            nonlocal first
            if first is not None:
                outcome, first = first, None
                return outcome
            return await round_()

        result: T | str = await self.delivering(started)(replayed)
        return result

    def delivering(self, started: float | None = None) -> AsyncRetrying:
        """Rounds of ending a part: again while a round returns a reason (still open), until
        the next wait would end past the delivery window (counted from `started`, a
        `time.monotonic()`, when given); then the last reason is returned."""
        stop = (
            stop_before_delay(self.delivery_window_s)
            if started is None
            else _stop_before_window(started, self.delivery_window_s)
        )
        return AsyncRetrying(
            stop=stop,
            wait=self._backoff(),
            retry=retry_if_result(lambda outcome: isinstance(outcome, str)),
            retry_error_callback=_last_result,
        )

    def delivery_rounds(self) -> int:
        """The most rounds the delivery loop makes: 1 + the shortest waits that fit."""
        rounds, waited = 1, 0.0
        while True:
            wait = min(self.backoff_initial_s * 2 ** (rounds - 1), self.backoff_max_s)
            if waited + wait >= self.delivery_window_s:
                return rounds
            waited += wait
            rounds += 1


class _stop_before_window(stop_base):
    """tenacity's `stop_before_delay`, its clock started before the loop was (at `started`)."""

    def __init__(self, started: float, window_s: float) -> None:
        self.started = started
        self.window_s = window_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        ended = retry_state.outcome_timestamp
        assert ended is not None  # tenacity asks only once an attempt has ended
        return ended - self.started + retry_state.upcoming_sleep >= self.window_s


def _last_result(state: RetryCallState) -> Any:
    assert state.outcome is not None
    return state.outcome.result()
