"""The one JSON encoder for what the client sends.

Every request body goes through :func:`dumps`, and so does every check of whether a value
*can* be sent (a handler's outcome, before the part is completed with it): a check with a
stricter or looser encoder than the wire's would refuse what the wire takes, or let
through what it then refuses. numpy scalars and arrays, dates, times and pandas
Timestamps are welcome; anything else orjson does not take is a ``TypeError`` naming it.

The embedded server answers with its own ``orjson.dumps`` calls: it encodes only what it
stored or built itself (plain JSON types), so it needs none of these conversions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pandas as pd

__all__ = ["dumps"]


def dumps(value: Any) -> bytes:
    """A JSON request body; numpy scalars and dates are welcome."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.time | pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # a numpy scalar orjson does not take natively
        return value.item()
    raise TypeError(f"cannot send {type(value).__name__} as JSON: {value!r:.100}")
