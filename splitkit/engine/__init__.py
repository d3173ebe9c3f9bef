"""The dispatch engine: every part of a split parent run to its end.

`dispatch()` (in `dispatcher.py`) wires the pieces: the `Engine` (one run on its own event
loop), `steps.run_part` (one part, shared with the listener), the executors (where a
handler runs), the controls (pause, resume, stop, cancel, concurrency), the claim (one
dispatcher per parent), the run's state and its observers (tqdm, the notebook panel).

The package is not named like the `dispatch()` function it serves, so that
`import splitkit.engine.engine` and `splitkit.dispatch` (the function) never shadow each other.
"""

from splitkit.engine.claim import ClaimError, ClaimLostError, ClaimPolicy, ParentClaimedError
from splitkit.engine.dispatcher import dispatch
from splitkit.engine.executors import (
    DaskExecutor,
    Executor,
    LoopExecutor,
    ProcessExecutor,
    ThreadExecutor,
)
from splitkit.engine.handle import RunHandle
from splitkit.engine.part import Part
from splitkit.engine.progress import RunObserver
from splitkit.engine.state import RunState
from splitkit.engine.steps import PartLeftOpenError, PartOptions, PartTimeoutError

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
    "PartOptions",
    "PartTimeoutError",
    "ProcessExecutor",
    "RunHandle",
    "RunObserver",
    "RunState",
    "ThreadExecutor",
    "dispatch",
]
