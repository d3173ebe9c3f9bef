"""The default executor keeps a sync handler's thread idle for the next call (issue 10: a
thread's start cost more CPU than a no-op handler's whole call), without giving up what a
thread of its own per call guaranteed: a call never waits for a thread, so a stuck
handler holds back nobody, and `concurrency` handlers run at once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from splitkit.engine.executors import LoopExecutor
from splitkit.engine.part import Part


def _part(index: int) -> Part:
    return Part(
        job_id=f"us_jb_{index}", parent_id="us_jb_p", index=index, part_data={}, records=b""
    )


def _run(*calls: Any) -> list[Any]:
    async def main() -> list[Any]:
        return list(await asyncio.gather(*calls))

    return asyncio.run(main())


def test_an_idle_thread_runs_the_next_call() -> None:
    executor = LoopExecutor()

    def where(part: Part) -> tuple[int, str]:
        return threading.get_ident(), threading.current_thread().name

    async def one_after_another() -> list[tuple[int, str]]:
        return [await executor.run(where, _part(i)) for i in range(3)]

    seen = asyncio.run(one_after_another())
    assert len({ident for ident, _ in seen}) == 1, seen
    assert [name for _, name in seen] == [f"splitkit-part-{i}" for i in range(3)]
    assert all(ident != threading.get_ident() for ident, _ in seen)  # never the loop's


def test_a_stuck_handler_holds_back_no_other_call() -> None:
    executor = LoopExecutor()
    release = threading.Event()

    def stuck(part: Part) -> str:
        release.wait(30)
        return "stuck"

    async def main() -> str:
        blocked = asyncio.ensure_future(executor.run(stuck, _part(0)))
        await asyncio.sleep(0.05)
        try:  # its thread is busy: the next call gets another one at once
            return await asyncio.wait_for(executor.run(lambda part: "free", _part(1)), 10)
        finally:
            release.set()
            await blocked

    assert asyncio.run(main()) == "free"


def test_as_many_calls_at_once_as_asked_for() -> None:
    executor = LoopExecutor()
    together = threading.Barrier(12, timeout=20)  # broken unless all 12 run at the same time

    def meet(part: Part) -> int:
        return together.wait()

    assert sorted(_run(*(executor.run(meet, _part(i)) for i in range(12)))) == list(range(12))
    # and again, now that idle threads are kept: reused ones and new ones alike
    together.reset()
    assert sorted(_run(*(executor.run(meet, _part(i)) for i in range(12)))) == list(range(12))
