"""What every router shares: the store and config dependencies, JSON responses, paging."""

from __future__ import annotations

from math import ceil
from typing import Annotated, Any

import orjson
from fastapi import Depends, Query, Request
from fastapi.responses import Response

from ..config import ServerConfig
from ..store import Store

# page numbers are bounded so offsets stay far inside SQLite's 64-bit integers
MAX_PAGE_NUMBER = 2**31 - 1


async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def _config(request: Request) -> ServerConfig:
    config: ServerConfig = request.app.state.config
    return config


StoreDep = Annotated[Store, Depends(_store)]
ConfigDep = Annotated[ServerConfig, Depends(_config)]
PageNumber = Annotated[
    int, Query(alias="pageNumber", ge=1, le=MAX_PAGE_NUMBER, description="1-based page number")
]


def page_size_query(default: int, maximum: int) -> Any:
    return Query(default, alias="pageSize", ge=1, le=maximum, description=f"at most {maximum}")


def json_response(body: Any, status: int = 200) -> Response:
    """``{"data": body}``, encoded with orjson."""
    return raw_json(orjson.dumps({"data": body}), status)


def raw_json(content: bytes, status: int = 200) -> Response:
    return Response(content, status_code=status, media_type="application/json")


def paged_response(items: list[Any], total: int, page_number: int, page_size: int) -> Response:
    pagination = {
        "currentPage": page_number,
        "pageCount": ceil(total / page_size),
        "totalCount": total,
    }
    return raw_json(orjson.dumps({"data": items, "pagination": pagination}))


SUCCESS = orjson.dumps({"data": {"success": True}})
