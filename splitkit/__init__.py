"""splitkit: Flatfile multi-part jobs, first-class in Python and Jupyter.

    counts ──► plan_parts ──► split_parent ──► dispatch ──► summarize ──► settle

Start with `connect()`: the real platform when FLATFILE_API_KEY is set, else the embedded
server with a sample sheet.
"""

from splitkit.api import AsyncClient, Client, ClientConfig, RetryPolicy
from splitkit.connect import Connection, connect
from splitkit.engine import (
    DaskExecutor,
    LoopExecutor,
    Part,
    ProcessExecutor,
    RunHandle,
    ThreadExecutor,
    dispatch,
)
from splitkit.pipeline import split_parent, start_parent_job
from splitkit.plan import plan_parts, what_if
from splitkit.retry import retry_failed
from splitkit.settlement import SettleResult, asettle, settle
from splitkit.summary import summarize

__all__ = [
    "AsyncClient",
    "Client",
    "ClientConfig",
    "Connection",
    "DaskExecutor",
    "LoopExecutor",
    "Part",
    "ProcessExecutor",
    "RetryPolicy",
    "RunHandle",
    "SettleResult",
    "ThreadExecutor",
    "asettle",
    "connect",
    "dispatch",
    "plan_parts",
    "retry_failed",
    "settle",
    "split_parent",
    "start_parent_job",
    "summarize",
    "what_if",
]
