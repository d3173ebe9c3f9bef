"""How the operations speak the wire: query params, body fields and path segments out;
the ``data`` of a JSON answer in.

Query values are encoded as the official SDKs do: ``true``/``false`` for bools, repeated
keys for lists, ISO-8601 with ``Z`` for datetimes. Extra ``**fields`` may be given in
snake_case or camelCase; top-level keys become camelCase on the wire (nested dicts are
sent untouched). (Request bodies are encoded by the client with
``splitkit.api.encoding.dumps``, the one encoder.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson

from splitkit._checks import non_empty_str
from splitkit.api.operations.operation import Params

__all__ = ["data", "data_dict", "data_dicts", "encode_query", "nothing", "segment", "wire_fields"]


# -- encoding ------------------------------------------------------------------------------


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def wire_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Body fields with camelCase keys, ``None`` dropped."""
    return {_camel(k): v for k, v in fields.items() if v is not None}


def _iso(value: datetime) -> str:
    # Naive datetimes are taken as UTC, like the server's own timestamps.
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def _query_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(
        f"{key} must be a string, number, bool, datetime or a list of them, got {value!r:.100}"
    )


def encode_query(params: Mapping[str, Any]) -> Params:
    """Query params as pairs: ``None`` dropped, bools lower-case, lists repeated."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        pairs.extend((_camel(key), _query_value(key, v)) for v in values)
    return tuple(pairs)


def segment(name: str, value: object) -> str:
    """An id as one path segment, escaped so it can never change the route."""
    return quote(non_empty_str(name, value), safe="")


# -- decoding ------------------------------------------------------------------------------


def data(content: bytes) -> Any:
    return orjson.loads(content)["data"]


def data_dict(content: bytes) -> dict[str, Any]:
    value = data(content)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object in data, got {type(value).__name__}")
    return value


def data_dicts(content: bytes) -> list[dict[str, Any]]:
    value = data(content)
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON array in data, got {type(value).__name__}")
    return value


def nothing(content: bytes) -> None:
    return None
