"""The client side of splitkit: talk to Flatfile, or to the embedded server, over HTTP.

    client = Client.from_env()            # or Client(base_url, token, environment_id=...)
    job = client.get_job("us_jb_...")
    frame = client.get_records(job.source, page_number=1, page_size=1_000)

``AsyncClient`` has the same methods, awaited. Errors: see ``splitkit.api.errors``.
This package never imports ``splitkit.server``. The operations core (``operations/``:
``Operation``, ``Flow``) is internal: import it from its module.
"""

from splitkit.api.async_client import AsyncClient
from splitkit.api.client import Client
from splitkit.api.config import PRODUCTION_URL, ClientConfig, RetryPolicy
from splitkit.api.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    ConnectionFailedError,
    InvalidTransitionError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SplitkitError,
)
from splitkit.api.frames import RESERVED_COLUMNS, records_body, records_frame
from splitkit.api.models import TERMINAL_STATUSES, Event, Job, RecordCounts

__all__ = [
    "PRODUCTION_URL",
    "RESERVED_COLUMNS",
    "TERMINAL_STATUSES",
    "ApiError",
    "AsyncClient",
    "AuthError",
    "BadRequestError",
    "Client",
    "ClientConfig",
    "ConnectionFailedError",
    "Event",
    "InvalidTransitionError",
    "Job",
    "NotFoundError",
    "RateLimitedError",
    "RecordCounts",
    "RetryPolicy",
    "ServerError",
    "SplitkitError",
    "records_body",
    "records_frame",
]
