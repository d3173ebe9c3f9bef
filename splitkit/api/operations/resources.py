"""Environments, spaces, workbooks and sheets: the containers the records live in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from splitkit._checks import non_empty_str, optional_str
from splitkit.api.operations.operation import Operation
from splitkit.api.operations.wire import data_dict, data_dicts, encode_query, segment, wire_fields

__all__ = [
    "create_space",
    "create_workbook",
    "get_sheet",
    "get_workbook",
    "list_environments",
    "list_sheets",
]


def list_environments() -> Operation[list[dict[str, Any]]]:
    return Operation("GET", "/environments", data_dicts)


def create_space(
    name: str | None = None, environment_id: str | None = None, **fields: Any
) -> Operation[dict[str, Any]]:
    body = wire_fields(
        {"name": optional_str("name", name), "environment_id": environment_id, **fields}
    )
    return Operation("POST", "/spaces", data_dict, json=body)


def create_workbook(
    name: str,
    sheets: Sequence[Mapping[str, Any]],
    *,
    space_id: str,
    environment_id: str | None = None,
    **fields: Any,
) -> Operation[dict[str, Any]]:
    non_empty_str("name", name)
    if isinstance(sheets, str | bytes | Mapping) or not isinstance(sheets, Sequence):
        raise ValueError(f"sheets must be a list of sheet configs, got {sheets!r:.100}")
    for i, sheet in enumerate(sheets):
        if not isinstance(sheet, Mapping):
            raise ValueError(f"sheets[{i}] must be a dict (a sheet config), got {sheet!r:.100}")
    segment("space_id", space_id)
    body = wire_fields(
        {
            "name": name,
            "space_id": space_id,
            "environment_id": environment_id,
            "sheets": [dict(s) for s in sheets],
            **fields,
        }
    )
    return Operation("POST", "/workbooks", data_dict, json=body)


def get_workbook(workbook_id: str) -> Operation[dict[str, Any]]:
    return Operation("GET", f"/workbooks/{segment('workbook_id', workbook_id)}", data_dict)


def list_sheets(workbook_id: str) -> Operation[list[dict[str, Any]]]:
    segment("workbook_id", workbook_id)
    return Operation("GET", "/sheets", data_dicts, encode_query({"workbook_id": workbook_id}))


def get_sheet(sheet_id: str) -> Operation[dict[str, Any]]:
    return Operation("GET", f"/sheets/{segment('sheet_id', sheet_id)}", data_dict)
