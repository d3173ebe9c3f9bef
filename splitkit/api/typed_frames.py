"""A records page → DataFrame through msgspec's typed decoder: the fast path of `records_frame`.

msgspec decodes the page straight into small structs (a record's ``id``, ``valid`` and
cells; ``messages``, ``metadata`` and the like are skipped, never built), in the calling
thread, holding the GIL, starting no thread. The columns are then pulled out of the
structs; a column pandas would make Arrow strings, int64, float64 or bool of is handed to
it as that array, made directly; any other column goes as a list, for pandas to infer as
it always has. It gives the reference frame exactly or steps aside (None),
and the caller takes the reference path (orjson + lists). Two decoders, fastest first:

- **the sheet's layout**: a struct made for the field keys of the page's first record
  (cached per key set), unknown keys forbidden: no dict per record, no key string per cell;
- **any cells**: ``values`` as a dict of cells (or bare values, as the reference allows).

It steps aside on what it would read differently from orjson: a page without a
``{"data": {"records": [...]}}`` envelope (a top-level list, ``records`` at the top), an
empty page, anything msgspec refuses (a record that
is not an object, ``values`` that are not an object or null, a missing ``id``: the
reference then raises its own error), and integers outside int64/uint64 (orjson reads them
as floats, msgspec as ints).
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable
from functools import lru_cache
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pandas._config as _pandas_config
import pyarrow as pa

# Reads `future.infer_string` without pandas 3's deprecation warning (pandas >= 2.3).
_infers_strings: Callable[[], bool] | None = getattr(_pandas_config, "using_string_dtype", None)

__all__ = ["typed_records_frame"]

_RESERVED = ("_id", "_valid")


class Cell(msgspec.Struct, frozen=True, gc=False):
    """A cell as the frame reads it (``messages`` and the rest are skipped)."""

    # gc=False: decoded JSON holds no reference cycle, and untracked structs spare the
    # collector; frozen: a missing cell's default is one shared instance.
    value: Any = None
    valid: Any = True  # only `valid: false` makes a record invalid, as in the reference


_MISSING = Cell()
# A dict cell is a cell (the reference reads `value` of any object); anything else is bare.
_AnyCell = Cell | str | int | float | bool | None | list[Any]


class _Record(msgspec.Struct, gc=False):
    id: Any
    values: dict[str, _AnyCell] | None = None
    valid: Any = None


class _Data(msgspec.Struct, gc=False):
    records: list[_Record] = []


class _Page(msgspec.Struct, gc=False):
    data: _Data


_ANY_CELLS = msgspec.json.Decoder(_Page)
_STEP_ASIDE = (msgspec.DecodeError, RecursionError)  # ValidationError is a DecodeError

# The page's first record is read alone for its keys' order (a struct does not keep it):
# only where `"records":[` is data's first array, after scalar members only.
_HEAD = re.compile(rb'\{"data":\{(?:"\w+":(?:true|false|null|-?\d+|"[^"\\]*"),)*"records":\[')
_HINT_BYTES = 65_536  # the first record is looked for in this much of the page
_FIRST = json.JSONDecoder()
# A page whose records stray from the first one's keys costs a failed layout decode on top
# of the dict-of-cells one; after such a miss, the next pages of that layout skip it a while.
_SKIP_AFTER_MISS = 16
_skips: dict[tuple[str, ...], int] = {}  # a hint only: races between threads are harmless


@lru_cache(maxsize=64)
def _layout_decoder(keys: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
    """A decoder for pages whose records' values have these keys (some may be missing)."""
    names = [f"f{i}" for i in range(len(keys))]
    values = msgspec.defstruct(
        "Values",
        [(name, Cell, _MISSING) for name in names],
        rename=dict(zip(names, keys, strict=True)),
        forbid_unknown_fields=True,
        gc=False,
    )
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        ("id", Any),
        ("values", values),
        ("valid", Any, None),
    ]
    record = msgspec.defstruct("Record", fields, gc=False)
    data = msgspec.defstruct("Data", [("records", list[record], [])], gc=False)  # type: ignore[valid-type]
    page = msgspec.defstruct("Page", [("data", data)], gc=False)
    return msgspec.json.Decoder(page)


def _first_record(content: bytes) -> dict[str, Any] | None:
    head = _HEAD.match(content)
    if head is None:
        return None
    text = content[head.end() : head.end() + _HINT_BYTES].decode("utf-8", "ignore")
    try:
        record, _ = _FIRST.raw_decode(text)
    except (ValueError, RecursionError):  # empty, deep, or a first record past the hint
        return None
    return record if isinstance(record, dict) else None


def _by_layout(content: bytes) -> dict[str, list[Any]] | None:
    """Columns through the layout decoder; None when the page does not fit it."""
    first = _first_record(content)
    if first is None:
        return None
    values = first.get("values")
    if not isinstance(values, dict) or not values or not all(type(k) is str for k in values):
        return None
    keys = tuple(values)
    if skip := _skips.get(keys, 0):
        _skips[keys] = skip - 1
        return None
    try:
        records = _layout_decoder(keys).decode(content).data.records
    except _STEP_ASIDE:
        if len(_skips) >= 256:
            _skips.clear()
        _skips[keys] = _SKIP_AFTER_MISS
        return None
    getters = [attrgetter(f"f{i}") for i in range(len(keys))]
    # The struct's order is the first record's only if that record is the one read alone.
    head = records[0] if records else None
    if (
        head is None
        or head.id != first.get("id")
        or any(g(head.values) is _MISSING for g in getters)
    ):
        return None
    columns: dict[str, list[Any]] = {"_id": [r.id for r in records]}
    columns["_valid"] = [
        r.valid
        if r.valid is True or r.valid is False
        else bool(r.valid)
        if r.valid is not None
        else all(c.valid is not False for c in msgspec.structs.astuple(r.values))
        for r in records
    ]
    cells = [r.values for r in records]
    for key, get in zip(keys, getters, strict=True):
        if key not in _RESERVED:  # a field cannot shadow a reserved column
            columns[key] = [c.value for c in map(get, cells)]
    return columns


def _by_any_cells(content: bytes) -> dict[str, list[Any]] | None:
    """Columns through the dict-of-cells decoder; None when msgspec refuses the page."""
    try:
        records = _ANY_CELLS.decode(content).data.records
    except _STEP_ASIDE:
        return None
    values = [r.values or {} for r in records]
    columns: dict[str, list[Any]] = {"_id": [r.id for r in records]}
    columns["_valid"] = [
        bool(r.valid)
        if r.valid is not None
        else all(c.valid is not False for c in v.values() if c.__class__ is Cell)
        for r, v in zip(records, values, strict=True)
    ]
    for key in dict.fromkeys(k for v in values for k in v):
        if key not in columns:
            columns[key] = [c.value if (c := v.get(key)).__class__ is Cell else c for v in values]
    return columns


def _wide(item: Any) -> bool:
    """Holds an int orjson would read as a float (outside int64 and uint64)."""
    kind = item.__class__
    if kind is int:
        return not -(2**63) <= item < 2**64
    if kind is list:
        return any(map(_wide, item))
    if kind is dict:
        return any(map(_wide, item.values()))
    return False


def _string_dtype() -> pd.StringDtype | None:
    """The dtype pandas gives a list of strings, when it is Arrow-backed."""
    infers = _infers_strings() if _infers_strings is not None else None
    if infers is None:  # no cheap way to read the option: ask pandas each time
        return _string_dtype_now()
    return _string_dtype_for(infers, pd.get_option("mode.string_storage"))


@lru_cache(maxsize=8)
def _string_dtype_for(infers: bool, storage: str) -> pd.StringDtype | None:
    return _string_dtype_now()  # the options are the cache key


def _string_dtype_now() -> pd.StringDtype | None:
    dtype = pd.Series(["x"]).dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        return dtype
    return None


class _Wide(Exception):
    """An int orjson reads as a float: the page is left to the reference path."""


_NONE = type(None)


def _column(items: list[Any], strings: pd.StringDtype | None) -> Any:
    """The array pandas would make of `items` (Arrow strings, int64, float64, bool), made
    directly; else `items`, for pandas to infer as it always has."""
    if items[0].__class__ is str and strings is not None:
        try:  # in the calling thread; refuses anything but str and None
            array = pa.array(items, type=pa.large_string())
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass
        else:
            return pd.arrays.ArrowStringArray(array, dtype=strings)  # type: ignore[call-arg]
    kinds = set(map(type, items))  # one pass in C
    if kinds <= {str, _NONE}:
        if str not in kinds or strings is None:
            return items  # all missing: an object column; or strings not Arrow-backed
        array = pa.array(items, type=pa.large_string())
        return pd.arrays.ArrowStringArray(array, dtype=strings)  # type: ignore[call-arg]
    if list in kinds or dict in kinds:
        if any(map(_wide, items)):
            raise _Wide
        return items
    if int in kinds:
        ints = items if len(kinds) == 1 else [i for i in items if i.__class__ is int]
        low, high = min(ints), max(ints)
        if low < -(2**63) or high >= 2**64:
            raise _Wide
        if high >= 2**63:
            return items  # uint64 or object: pandas' rules
    if kinds == {int}:
        return np.array(items, dtype=np.int64)
    if kinds <= {int, float, _NONE} and kinds & {int, float}:
        return np.array(items, dtype=np.float64)  # None becomes NaN, as pandas makes it
    if kinds == {bool}:
        return np.array(items, dtype=bool)
    return items


def typed_records_frame(content: bytes) -> pd.DataFrame | None:
    """The frame `records_frame` makes of `content`, or None to take the reference path."""
    was_enabled = gc.isenabled()
    gc.disable()  # ~10 objects per record, none garbage yet: the collector would only rescan
    try:
        columns = _by_layout(content)
        if columns is None:
            columns = _by_any_cells(content)
        if columns is None or not columns["_id"]:
            return None
        strings = _string_dtype()
        valid = np.array(columns.pop("_valid"), dtype=bool)  # bools by construction
        try:
            built = {name: _column(items, strings) for name, items in columns.items()}
        except _Wide:
            return None
        built = {"_id": built.pop("_id"), "_valid": valid, **built}
        del columns  # the lists pandas copies are freed as it goes
        # copy=False: every array here is new and ours alone
        return pd.DataFrame(built, copy=False)
    finally:
        if was_enabled:
            gc.enable()
