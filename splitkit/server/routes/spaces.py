"""POST /v1/spaces and GET /v1/spaces/{id}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from .. import resources
from .common import StoreDep, json_response

router = APIRouter(tags=["spaces"])


class SpaceCreate(BaseModel):
    """Every field is optional; fields beyond these are kept and returned as sent."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    environmentId: str | None = None
    namespace: str | None = None
    labels: list[str] | None = None
    metadata: Any = None
    primaryWorkbookId: str | None = None
    displayOrder: int | None = None


@router.post("/spaces")
def create_space(store: StoreDep, body: Annotated[SpaceCreate | None, Body()] = None) -> Response:
    fields = body.model_dump(exclude_none=True) if body is not None else {}
    return json_response(resources.create_space(store, fields))


@router.get("/spaces/{space_id}")
def get_space(store: StoreDep, space_id: str) -> Response:
    return json_response(resources.get_space(store, space_id))
