"""splitkit: Flatfile multi-part jobs, first-class in Python and Jupyter.

    counts ──► plan_parts ──► split_parent ──► dispatch ──► summarize ──► settle

Start with `connect()`: the real platform when FLATFILE_API_KEY is set, else the embedded
server with a sample sheet. `__all__` is the public surface (README.md, "The public API");
everything else is reached through its subpackage (`splitkit.api`, `splitkit.engine`,
`splitkit.notebook`, `splitkit.server`, ...).
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from splitkit.api import (
    ApiError,
    AsyncClient,
    AuthError,
    BadRequestError,
    Client,
    ClientConfig,
    ConnectionFailedError,
    InvalidTransitionError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    SplitkitError,
)
from splitkit.connection import Connection, connect
from splitkit.engine import (
    ClaimLostError,
    ClaimPolicy,
    LoopExecutor,
    ParentClaimedError,
    Part,
    PartLeftOpenError,
    PartTimeoutError,
    ProcessExecutor,
    RunHandle,
    ThreadExecutor,
    dispatch,
)
from splitkit.engine.handle import Panel as _Panel
from splitkit.engine.handle import notebook_views as _notebook_views
from splitkit.errors import SettleRefusedError, SplitMismatchError
from splitkit.lab import tune
from splitkit.lab.whatif import what_if
from splitkit.listener import Listener, multipart_listener
from splitkit.pipeline import split_parent, start_parent_job
from splitkit.plan import plan_parts
from splitkit.probing import probe
from splitkit.retry import retry_failed, retryable_parts
from splitkit.runlog import history
from splitkit.settlement import SettleResult, asettle, settle
from splitkit.simprofile import SimProfile
from splitkit.summary import counts_match, summarize

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthError",
    "BadRequestError",
    "ClaimLostError",
    "ClaimPolicy",
    "Client",
    "ClientConfig",
    "Connection",
    "ConnectionFailedError",
    "DaskExecutor",
    "InvalidTransitionError",
    "Listener",
    "LoopExecutor",
    "NotFoundError",
    "ParentClaimedError",
    "Part",
    "PartLeftOpenError",
    "PartTimeoutError",
    "ProcessExecutor",
    "RateLimitedError",
    "RetryPolicy",
    "RunHandle",
    "ServerError",
    "SettleRefusedError",
    "SettleResult",
    "SimProfile",
    "SplitMismatchError",
    "SplitkitError",
    "ThreadExecutor",
    "asettle",
    "connect",
    "counts_match",
    "dispatch",
    "history",
    "multipart_listener",
    "plan_parts",
    "probe",
    "retry_failed",
    "retryable_parts",
    "settle",
    "split_parent",
    "start_parent_job",
    "summarize",
    "tune",
    "what_if",
]


# The notebook layer builds on the engine; the engine shows a run in a notebook through
# `notebook_views`, filled in here (this module runs before any engine module does). The
# imports wait for the first use, so `import splitkit` does not load ipywidgets.
def _run_html(handle: RunHandle) -> str:
    from splitkit.notebook.reprs import run_html

    return run_html(handle)


def _control_panel() -> _Panel:
    from splitkit.notebook.panel import ControlPanel

    return ControlPanel()


_notebook_views.run_html = _run_html
_notebook_views.panel = _control_panel

if _TYPE_CHECKING:
    from splitkit.engine.dask_executor import DaskExecutor


def __getattr__(name: str) -> object:
    # DaskExecutor needs the optional dask extra (and distributed takes a second to
    # import): loaded on first use, so `import splitkit` stays light and works without it.
    if name == "DaskExecutor":
        from splitkit.engine.dask_executor import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
