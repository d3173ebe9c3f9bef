"""/v1/jobs: create, list, get, update, delete, and the lifecycle actions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from splitkit.statuses import JobStatus

from .. import jobs, parts
from .common import (
    SUCCESS,
    ConfigDep,
    PageNumber,
    StoreDep,
    json_response,
    page_size_query,
    paged_response,
    raw_json,
)

router = APIRouter(tags=["jobs"])

Progress = Annotated[int, Field(ge=0, le=100)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class JobCreate(_Body):
    """Flatfile's ``JobConfig``. Part fields (parentId, part, ...) are set by split only."""

    type: str = Field(min_length=1)
    operation: str = Field(min_length=1)
    source: str = Field(min_length=1)
    destination: str | None = None
    config: dict[str, Any] | None = None
    trigger: Literal["manual", "immediate"] | None = None
    progress: Progress | None = None
    fileId: str | None = None
    mode: str | None = None
    input: dict[str, Any] | None = None
    subject: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    info: str | None = None
    managed: bool | None = None
    environmentId: str | None = None
    metadata: dict[str, Any] | None = None


class JobUpdate(_Body):
    config: dict[str, Any] | None = None
    status: JobStatus | None = None
    progress: Progress | None = None
    outcomeAcknowledgedAt: datetime | None = None
    info: str | None = None
    metadata: dict[str, Any] | None = None


class AckDetails(_Body):
    info: str | None = None
    progress: Progress | None = None
    estimatedCompletionAt: datetime | None = None


class CompleteDetails(_Body):
    outcome: dict[str, Any] | None = None
    info: str | None = None


class CancelDetails(_Body):
    info: str | None = None


class SplitDetails(_Body):
    parts: Annotated[
        Any,
        Field(
            description="the number of parts, or one object of part data per part",
            json_schema_extra={
                "oneOf": [
                    {"type": "integer", "minimum": 1},
                    {"type": "array", "items": {"type": "object"}, "minItems": 1},
                ]
            },
        ),
    ]
    runInParallel: bool | None = None


def _fields(body: _Body | None) -> dict[str, Any]:
    return body.fields() if body is not None else {}


@router.post("/jobs")
def create_job(store: StoreDep, body: JobCreate) -> Response:
    return json_response(jobs.create(store, body.fields()))


@router.get("/jobs")
def list_jobs(
    store: StoreDep,
    environment_id: Annotated[str | None, Query(alias="environmentId")] = None,
    space_id: Annotated[str | None, Query(alias="spaceId")] = None,
    workbook_id: Annotated[str | None, Query(alias="workbookId")] = None,
    file_id: Annotated[str | None, Query(alias="fileId")] = None,
    parent_id: Annotated[str | None, Query(alias="parentId")] = None,
    sort_direction: Annotated[Literal["asc", "desc"], Query(alias="sortDirection")] = "asc",
    exclude_child_jobs: Annotated[bool, Query(alias="excludeChildJobs")] = False,
    page_number: PageNumber = 1,
    page_size: int = page_size_query(20, 10_000),
) -> Response:
    items, total = jobs.list_jobs(
        store,
        page_number=page_number,
        page_size=page_size,
        descending=sort_direction == "desc",
        exclude_parts=exclude_child_jobs,
        environment_id=environment_id,
        space_id=space_id,
        workbook_id=workbook_id,
        file_id=file_id,
        parent_id=parent_id,
    )
    return paged_response(items, total, page_number, page_size)


@router.get("/jobs/{job_id}")
def get_job(store: StoreDep, job_id: str) -> Response:
    return json_response(jobs.get(store, job_id))


@router.patch("/jobs/{job_id}")
def update_job(
    store: StoreDep, job_id: str, body: Annotated[JobUpdate | None, Body()] = None
) -> Response:
    return json_response(jobs.update(store, job_id, _fields(body)))


@router.delete("/jobs/{job_id}")
def delete_job(store: StoreDep, job_id: str) -> Response:
    jobs.delete(store, job_id)
    return raw_json(SUCCESS)


@router.post("/jobs/{job_id}/execute")
def execute_job(store: StoreDep, job_id: str) -> Response:
    jobs.execute(store, job_id)
    return raw_json(SUCCESS)


@router.post("/jobs/{job_id}/ack")
def ack_job(
    store: StoreDep, job_id: str, body: Annotated[AckDetails | None, Body()] = None
) -> Response:
    """Acknowledge: the job is executing. No body (and no Content-Type) is fine; a later
    ack only updates progress and info."""
    return json_response(jobs.ack(store, job_id, _fields(body)))


@router.post("/jobs/{job_id}/complete")
def complete_job(
    store: StoreDep, job_id: str, body: Annotated[CompleteDetails | None, Body()] = None
) -> Response:
    return json_response(jobs.complete(store, job_id, _fields(body)))


@router.post("/jobs/{job_id}/fail")
def fail_job(
    store: StoreDep, job_id: str, body: Annotated[CompleteDetails | None, Body()] = None
) -> Response:
    return json_response(jobs.fail(store, job_id, _fields(body)))


@router.post("/jobs/{job_id}/cancel")
def cancel_job(
    store: StoreDep, job_id: str, body: Annotated[CancelDetails | None, Body()] = None
) -> Response:
    return json_response(jobs.cancel(store, job_id, _fields(body)))


@router.post("/jobs/{job_id}/retry")
def retry_job(store: StoreDep, job_id: str) -> Response:
    return json_response(parts.retry(store, job_id))


@router.post("/jobs/{job_id}/split")
def split_job(store: StoreDep, config: ConfigDep, job_id: str, body: SplitDetails) -> Response:
    """Split into parts (all or none); returns the parent. List parts with ?parentId=."""
    in_parallel = body.runInParallel is not False
    return json_response(parts.split(store, job_id, body.parts, in_parallel, config.max_parts))


@router.post("/jobs/{job_id}/outcome/ack")
def acknowledge_outcome(store: StoreDep, job_id: str) -> Response:
    return json_response(jobs.acknowledge_outcome(store, job_id))
