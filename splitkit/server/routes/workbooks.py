"""POST /v1/workbooks (with its sheets) and GET /v1/workbooks/{id}."""

from __future__ import annotations

from typing import Any, Literal, Self

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import resources
from .common import StoreDep, json_response

router = APIRouter(tags=["workbooks"])

FieldType = Literal[
    "string", "number", "boolean", "date", "enum", "reference", "reference-list",
    "string-list", "enum-list",
]  # fmt: skip


class FieldConfig(BaseModel):
    """A sheet field (Flatfile's ``Property``); other keys are kept as sent."""

    model_config = ConfigDict(extra="allow")

    key: str = Field(min_length=1)
    type: FieldType
    label: str | None = None
    description: str | None = None
    constraints: list[dict[str, Any]] | None = None
    config: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _config_for_type(self) -> Self:
        # the SDK's models require these configs, so a sheet without them could not be read back
        config = self.config or {}
        if self.type in ("enum", "enum-list") and not isinstance(config.get("options"), list):
            raise ValueError(
                f"field {self.key!r} of type {self.type} needs config.options (a list)"
            )
        if self.type in ("reference", "reference-list") and not (
            isinstance(config.get("ref"), str) and isinstance(config.get("key"), str)
        ):
            raise ValueError(
                f"field {self.key!r} of type {self.type} needs config.ref and config.key"
            )
        return self


class SheetConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    slug: str | None = None
    description: str | None = None
    fields: list[FieldConfig]

    @model_validator(mode="after")
    def _unique_keys(self) -> Self:
        keys = [field.key for field in self.fields]
        duplicated = sorted({key for key in keys if keys.count(key) > 1})
        if duplicated:
            raise ValueError(f"field keys must be unique within a sheet; repeated: {duplicated}")
        return self


class WorkbookCreate(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    spaceId: str | None = None
    environmentId: str | None = None
    namespace: str | None = None
    labels: list[str] | None = None
    sheets: list[SheetConfig] | None = None
    settings: dict[str, Any] | None = None
    metadata: Any = None


@router.post("/workbooks")
def create_workbook(store: StoreDep, body: WorkbookCreate) -> Response:
    return json_response(resources.create_workbook(store, body.model_dump(exclude_none=True)))


@router.get("/workbooks/{workbook_id}")
def get_workbook(store: StoreDep, workbook_id: str) -> Response:
    return json_response(resources.get_workbook(store, workbook_id))
