"""``AsyncClient``: the asynchronous send loop over ``httpx.AsyncClient``.

Every method builds its request with ``operations`` and sends it here. Work that
takes several requests (paging through parts, settling a parent) is a flow of
operations that ``_drive`` runs: each result is sent back into the flow, and the
error of a request that failed is thrown into it, so the flow may reconcile it.
The httpx client and its default transport come from ``_transports``.
"""

# client.py is generated from this file: edit here, then run `python scripts/unasync.py`
# (tests/api/test_unasync.py fails while client.py is stale).

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pandas as pd
from tenacity import AsyncRetrying

from splitkit.api import operations as ops
from splitkit.api._base import Answer, BaseClient, RequestBuilder
from splitkit.api._transports import (
    ASYNC_TRANSPORT_ERRORS,
    async_http_client,
    async_transport_failure,
)
from splitkit.api.config import ClientConfig, RetryPolicy
from splitkit.api.models import Event, Job, RecordCounts
from splitkit.api.operations import Flow, Operation

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient(BaseClient):
    """The asynchronous Flatfile API client (real platform or the embedded server).

    ``base_url`` includes ``/v1``. ``transport`` replaces the default one (tests,
    proxies, in-process apps). Use as a context manager (``async with``) or call
    ``aclose()``.
    The default transport (aiohttp) binds to the event loop of its first request:
    use one ``AsyncClient`` per event loop.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        environment_id: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        config = ClientConfig(
            base_url, token, environment_id, timeout, RetryPolicy() if retry is None else retry
        )
        super().__init__(config)
        self._http, self._direct = async_http_client(config, self._headers(), transport)
        self._requests = RequestBuilder(self._http)

    @classmethod
    def from_config(
        cls, config: ClientConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> AsyncClient:
        if not isinstance(config, ClientConfig):
            raise ValueError(f"config must be a ClientConfig, got {type(config).__name__}")
        return cls(
            config.base_url,
            config.token,
            environment_id=config.environment_id,
            timeout=config.timeout,
            retry=config.retry,
            transport=transport,
        )

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> AsyncClient:
        """See ``ClientConfig.from_env`` for the variables read."""
        return cls.from_config(ClientConfig.from_env(env), transport=transport)

    # -- the send loop ----------------------------------------------------------------------

    async def _send_once(self, op: Operation[T]) -> T:
        sender = self._direct
        direct = None if sender is None else sender.prepare(op)
        try:
            if sender is not None and direct is not None:
                response: Answer = await sender.send(direct)
            else:
                response = await self._http.send(self._requests.build(op))
        except ASYNC_TRANSPORT_ERRORS as exc:
            raise self._connection_failed(op, async_transport_failure(exc)) from exc
        return self._result(op, response)

    async def _send(self, op: Operation[T]) -> T:
        # The first try runs bare: a retry loop costs more than the request's own client
        # CPU. Only a failure worth resending enters tenacity, whose first attempt replays
        # it, so the waits, the log lines and the attempts bound are the loop's as ever.
        try:
            return await self._send_once(op)
        except Exception as exc:
            if not self._resend_worthy(exc):
                raise
            first: BaseException | None = exc

        async def attempt(op: Operation[T]) -> T:
            nonlocal first
            if first is not None:
                failure, first = first, None
                raise failure
            return await self._send_once(op)

        result: T = await AsyncRetrying(**self._retry_options())(attempt, op)
        return result

    async def _drive(self, flow: Flow[T]) -> T:
        """Run a flow to its end: send what it yields, hand it each result or error.

        A request that failed (after the client's retries) has its error thrown
        into the flow at its ``yield``: the flow may catch it and reconcile (settle
        does), or let it propagate out of here.
        """
        try:
            op = next(flow)
            while True:
                try:
                    result = await self._send(op)
                except Exception as exc:
                    op = flow.throw(exc)
                else:
                    op = flow.send(result)
        except StopIteration as done:
            value: T = done.value
            return value

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- environments, spaces, workbooks, sheets --------------------------------------------

    async def list_environments(self) -> list[dict[str, Any]]:
        return await self._send(ops.list_environments())

    async def create_space(
        self, name: str | None = None, environment_id: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        return await self._send(ops.create_space(name, self._environment(environment_id), **fields))

    async def create_workbook(
        self,
        name: str,
        sheets: Sequence[Mapping[str, Any]],
        *,
        space_id: str,
        environment_id: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        env = self._environment(environment_id)
        return await self._send(
            ops.create_workbook(name, sheets, space_id=space_id, environment_id=env, **fields)
        )

    async def get_workbook(self, workbook_id: str) -> dict[str, Any]:
        return await self._send(ops.get_workbook(workbook_id))

    async def list_sheets(self, workbook_id: str) -> list[dict[str, Any]]:
        return await self._send(ops.list_sheets(workbook_id))

    async def get_sheet(self, sheet_id: str) -> dict[str, Any]:
        return await self._send(ops.get_sheet(sheet_id))

    # -- records ----------------------------------------------------------------------------

    async def get_counts(self, sheet_id: str) -> RecordCounts:
        return await self._send(ops.get_counts(sheet_id))

    async def get_records(
        self, sheet_id: str, *, page_number: int = 1, page_size: int = 10_000
    ) -> pd.DataFrame:
        """One page of records: columns ``_id``, ``_valid``, then one per field."""
        return await self._send(
            ops.get_records(sheet_id, page_number=page_number, page_size=page_size)
        )

    async def get_records_raw(
        self, sheet_id: str, *, page_number: int = 1, page_size: int = 10_000
    ) -> bytes:
        """One page of records as the response body, unparsed (``records_frame`` reads it)."""
        return await self._send(
            ops.get_records_raw(sheet_id, page_number=page_number, page_size=page_size)
        )

    async def insert_records(
        self, sheet_id: str, records: pd.DataFrame | Sequence[Mapping[str, Any]]
    ) -> int:
        """Insert ``[{field: value | cell}]`` or a DataFrame; returns how many were inserted."""
        return await self._send(ops.insert_records(sheet_id, records))

    # -- jobs -------------------------------------------------------------------------------

    async def create_job(
        self,
        type: str,
        operation: str,
        source: str,
        *,
        trigger: str = "immediate",
        **fields: Any,
    ) -> Job:
        env = self._environment(fields.pop("environment_id", None))
        return await self._send(
            ops.create_job(type, operation, source, trigger=trigger, environment_id=env, **fields)
        )

    async def get_job(self, job_id: str) -> Job:
        return await self._send(ops.get_job(job_id))

    async def list_jobs(
        self,
        *,
        parent_id: str | None = None,
        page_number: int = 1,
        page_size: int = 100,
        **filters: Any,
    ) -> list[Job]:
        """One page of jobs. Without ``parent_id`` it is limited to the configured environment."""
        if parent_id is None and "environmentId" not in filters:
            filters.setdefault("environment_id", self._config.environment_id)
        return await self._send(
            ops.list_jobs(
                parent_id=parent_id, page_number=page_number, page_size=page_size, **filters
            )
        )

    async def list_parts(self, parent_id: str, *, page_size: int = 1_000) -> list[Job]:
        """Every part of a split job (all pages of ``page_size``), ordered by part index."""
        return await self._drive(ops.list_parts(parent_id, page_size=page_size))

    async def update_job(self, job_id: str, **fields: Any) -> Job:
        return await self._send(ops.update_job(job_id, **fields))

    async def execute_job(self, job_id: str) -> None:
        await self._send(ops.execute_job(job_id))

    async def ack_job(
        self, job_id: str, *, info: str | None = None, progress: int | None = None
    ) -> Job:
        return await self._send(ops.ack_job(job_id, info=info, progress=progress))

    async def complete_job(
        self,
        job_id: str,
        *,
        message: str | None = None,
        outcome: Mapping[str, Any] | None = None,
        info: str | None = None,
    ) -> Job:
        return await self._send(
            ops.complete_job(job_id, message=message, outcome=outcome, info=info)
        )

    async def fail_job(
        self,
        job_id: str,
        *,
        message: str | None = None,
        outcome: Mapping[str, Any] | None = None,
        info: str | None = None,
    ) -> Job:
        return await self._send(ops.fail_job(job_id, message=message, outcome=outcome, info=info))

    async def cancel_job(self, job_id: str, *, info: str | None = None) -> Job:
        return await self._send(ops.cancel_job(job_id, info=info))

    async def retry_job(self, job_id: str) -> Job:
        return await self._send(ops.retry_job(job_id))

    async def split_job(
        self,
        job_id: str,
        parts: int | Sequence[Mapping[str, Any]],
        *,
        run_in_parallel: bool = True,
    ) -> Job:
        """Split into parts; returns the parent. Find the parts with ``list_parts``."""
        return await self._send(ops.split_job(job_id, parts, run_in_parallel=run_in_parallel))

    # -- events -----------------------------------------------------------------------------

    async def list_events(
        self,
        *,
        since: datetime | str | None = None,
        topic: str | None = None,
        domain: str | None = None,
        include_acknowledged: bool = False,
        page_number: int = 1,
        page_size: int = 100,
        after_sequence: int | None = None,
    ) -> list[Event]:
        """Events of the configured environment in creation order; ``since`` is exclusive.

        ``after_sequence`` (exclusive) pages by the embedded server's event ``sequence``;
        the real platform has no such cursor."""
        return await self._send(
            ops.list_events(
                since=since,
                topic=topic,
                domain=domain,
                include_acknowledged=include_acknowledged,
                page_number=page_number,
                page_size=page_size,
                environment_id=self._config.environment_id,
                after_sequence=after_sequence,
            )
        )

    async def get_event(self, event_id: str) -> Event:
        return await self._send(ops.get_event(event_id))

    async def ack_event(self, event_id: str) -> None:
        await self._send(ops.ack_event(event_id))
