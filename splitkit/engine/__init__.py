"""The dispatch engine: every part of a split parent run to its end.

`dispatch()` (in `dispatcher.py`) wires the pieces: the `Engine` (one run on its own event
loop), `steps.run_part` (one part, shared with the listener), the executors (where a
handler runs), the controls (pause, resume, stop, cancel, concurrency), the claim (one
dispatcher per parent), the run's state and its observers (tqdm, the notebook panel).

The package is not named like the `dispatch()` function it serves, so that
`import splitkit.engine.engine` and `splitkit.dispatch` (the function) never shadow each other.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from splitkit.engine.claim import ClaimError, ClaimLostError, ClaimPolicy, ParentClaimedError
from splitkit.engine.dispatcher import dispatch
from splitkit.engine.executors import (
    Executor,
    LoopExecutor,
    ProcessExecutor,
    ThreadExecutor,
)
from splitkit.engine.handle import RunHandle
from splitkit.engine.part import Part
from splitkit.engine.progress import RunObserver
from splitkit.engine.state import RunState
from splitkit.errors import PartLeftOpenError, PartTimeoutError

if _TYPE_CHECKING:
    from splitkit.engine.dask_executor import DaskExecutor


def __getattr__(name: str) -> object:
    # DaskExecutor needs the optional dask extra: imported on first use, not with splitkit.
    if name == "DaskExecutor":
        from splitkit.engine.dask_executor import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ClaimError",
    "ClaimLostError",
    "ClaimPolicy",
    "DaskExecutor",
    "Executor",
    "LoopExecutor",
    "ParentClaimedError",
    "Part",
    "PartLeftOpenError",
    "PartTimeoutError",
    "ProcessExecutor",
    "RunHandle",
    "RunObserver",
    "RunState",
    "ThreadExecutor",
    "dispatch",
]
