"""What every router shares: the store and config dependencies, JSON responses, paging."""

from __future__ import annotations

from math import ceil
from typing import Annotated, Any

import orjson
from fastapi import Depends, Query, Request
from fastapi.responses import Response

from ..config import ServerConfig
from ..errors import bad_request
from ..pages import MAX_IDS, Filter, Selection
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


# Flatfile's records / counts parameters this server does not implement: refused by name,
# never silently ignored (an ignored filter or sort would hand back the wrong records)
UNSUPPORTED_RECORD_PARAMS = (
    "q", "sortField", "sortDirection", "searchValue", "searchField", "filterField",
    "commitId", "sinceCommitId", "versionId", "sinceVersionId", "fields", "byField",
)  # fmt: skip


async def _check_record_params(request: Request) -> None:
    """Refuse what is not implemented, before the parameters are validated (so that
    ``filter=none`` gets its own message)."""
    for name in UNSUPPORTED_RECORD_PARAMS:
        if name in request.query_params:
            raise bad_request(
                name,
                f"{name}: this server does not implement the {name!r} query parameter; "
                "it supports filter (valid, error, all) and ids",
            )
    if request.query_params.get("filter") == "none":
        raise bad_request(
            "filter",
            "filter: 'none' is not supported (what it selects on Flatfile is not documented);"
            " use valid, error or all, or leave filter out",
        )


async def _selection(
    _checked: Annotated[None, Depends(_check_record_params)],
    filter: Annotated[
        Filter | None,
        Query(description="valid | error | all (with ids: every record of the filter but those)"),
    ] = None,
    ids: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_IDS,
            description=f"record ids, repeated, at most {MAX_IDS}: only these records, or,"
            " with filter, every record of the filter but these",
        ),
    ] = None,
) -> Selection:
    return Selection(filter, tuple(ids or ()))


SelectionDep = Annotated[Selection, Depends(_selection)]


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
