"""Every endpoint, once: what to send and how to read the answer. No I/O.

Each function checks its arguments (``ValueError``) and returns an
``Operation``: method, path (relative to the base URL), query params, JSON
body and a ``parse`` function from response bytes to the result. ``Client``
and ``AsyncClient`` only send them.

Work that takes several requests (paging through a job's parts) is a
generator that yields operations and receives their parsed results; both send
loops drive the same generator (the shape of ``httpx/_auth.py``).

The modules: ``operation.py`` (``Operation``, ``Page``, ``Flow``), ``wire.py`` (query,
body fields and path segments out; the answer's ``data`` in), and one module per resource:
``resources.py`` (environments, spaces, workbooks, sheets), ``records.py``, ``jobs.py``
(jobs and their parts), ``events.py``. Callers import this package only, as
``from splitkit.api import operations as ops`` and ``ops.get_job(...)``.
"""

from __future__ import annotations

from splitkit.api.operations.events import (
    MAX_EVENTS_PAGE_SIZE,
    ack_event,
    get_event,
    list_events,
)
from splitkit.api.operations.jobs import (
    MAX_JOBS_PAGE_SIZE,
    TRIGGERS,
    ack_job,
    cancel_job,
    complete_job,
    create_job,
    execute_job,
    fail_job,
    fold_parts,
    get_job,
    list_jobs,
    list_jobs_page,
    list_parts,
    retry_job,
    split_job,
    update_job,
)
from splitkit.api.operations.operation import IDEMPOTENT_METHODS, Flow, Operation, Page
from splitkit.api.operations.records import (
    MAX_RECORDS_PAGE_SIZE,
    get_counts,
    get_records,
    get_records_raw,
    insert_records,
)
from splitkit.api.operations.resources import (
    create_space,
    create_workbook,
    get_sheet,
    get_workbook,
    list_environments,
    list_sheets,
)
from splitkit.api.operations.wire import encode_query

__all__ = [
    "IDEMPOTENT_METHODS",
    "MAX_EVENTS_PAGE_SIZE",
    "MAX_JOBS_PAGE_SIZE",
    "MAX_RECORDS_PAGE_SIZE",
    "TRIGGERS",
    "Flow",
    "Operation",
    "Page",
    "ack_event",
    "ack_job",
    "cancel_job",
    "complete_job",
    "create_job",
    "create_space",
    "create_workbook",
    "encode_query",
    "execute_job",
    "fail_job",
    "fold_parts",
    "get_counts",
    "get_event",
    "get_job",
    "get_records",
    "get_records_raw",
    "get_sheet",
    "get_workbook",
    "insert_records",
    "list_environments",
    "list_events",
    "list_jobs",
    "list_jobs_page",
    "list_parts",
    "list_sheets",
    "retry_job",
    "split_job",
    "update_job",
]
