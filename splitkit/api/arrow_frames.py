"""A records page → DataFrame through pyarrow's JSON reader: the fast path of `records_frame`.

pyarrow parses the page into columns in C++ (no Python object per cell), faster than
`orjson.loads` makes the dicts the reference path then walks. It gives the reference
frame exactly or gives up (`None`): the caller then takes the reference path. It gives
up on what Arrow would read differently from orjson + pandas:

- a field whose values mix types (Arrow refuses), or hold lists or objects (Arrow makes
  structs, pandas keeps dicts), or numbers that are not exact as float64 (2**63 becomes a
  float in Arrow, an int in orjson);
- strings Arrow would read as timestamps. Arrow infers a timestamp from an ISO-looking
  string ("2022-03-01"); so the string fields of the first record are declared strings
  up front (the page's first record is decoded alone, with `json`), and a page whose
  later fields still came out as timestamps is left to the reference path;
- an envelope other than ``{"data": {"records": [...]}}`` on one line, an empty page,
  a record without a string ``id``, a ``valid`` that is not a boolean.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

__all__ = ["arrow_records_frame"]

_RESERVED = ("_id", "_valid")
_RECORDS = b'"records":['
_HINT_BYTES = 65_536  # the first record is looked for in this much of the page
_EXACT = 2.0**53  # a float64 at or past this may have been an int orjson keeps exact
_DECODER = json.JSONDecoder()


def _plain(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_int64(kind)
        or pa.types.is_float64(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    )


def _first_record(content: bytes) -> dict[str, Any] | None:
    """The page's first record, decoded alone (None when it cannot be found cheaply)."""
    at = content.find(_RECORDS)
    if at < 0:
        return None
    head = content[at + len(_RECORDS) : at + len(_RECORDS) + _HINT_BYTES]
    try:
        record, _ = _DECODER.raw_decode(head.decode("utf-8", "ignore"))
    except ValueError:  # an empty page, or a first record longer than the hint
        return None
    return record if isinstance(record, dict) else None


# pyarrow's own thread pool stays out: with many handler threads reading pages at once
# (dispatch, the listener: concurrency 8-64) the process crashed (SIGSEGV) in the pool's
# threads during to_pandas(); a part's page is small, so one thread loses nothing.
_ONE_THREAD = pj.ReadOptions(use_threads=False)


def _options(first: dict[str, Any] | None) -> pj.ParseOptions | None:
    """Declares the first record's string values as strings (else some become timestamps)."""
    values = first.get("values") if first is not None else None
    if not isinstance(values, dict):
        return None
    cell = pa.struct([pa.field("value", pa.string())])
    declared = [
        pa.field(key, cell)
        for key, c in values.items()
        if isinstance(c, dict) and isinstance(c.get("value"), str)
    ]
    record = pa.struct([pa.field("values", pa.struct(declared))])
    schema = pa.schema([pa.field("data", pa.struct([pa.field("records", pa.list_(record))]))])
    return pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")


def _child(array: pa.Array, kind: pa.StructType, name: str) -> pa.Array | None:
    """A struct's field as an array (null where the struct is), None when it has none."""
    if kind.get_field_index(name) < 0:
        return None
    return pc.struct_field(array, name)


def arrow_records_frame(content: bytes) -> pd.DataFrame | None:
    """The frame `records_frame` makes of `content`, or None to take the reference path."""
    first = _first_record(content)
    try:
        table = pj.read_json(
            pa.BufferReader(content), read_options=_ONE_THREAD, parse_options=_options(first)
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != 1 or "data" not in table.column_names:
        return None
    data = table.column("data").combine_chunks()
    if not pa.types.is_struct(data.type):
        return None
    listed = _child(data, data.type, "records")
    if listed is None or not pa.types.is_list(listed.type) or listed.null_count:
        return None
    records = listed.flatten()
    if len(records) == 0 or not pa.types.is_struct(records.type):
        return None
    ids = _child(records, records.type, "id")
    if ids is None or not pa.types.is_string(ids.type) or ids.null_count:
        return None
    if first is None or first.get("id") != ids[0].as_py():
        return None  # the declared strings were not read from this page's first record

    named: dict[str, pa.Array] = {}
    invalid: pa.Array | None = None  # a cell says valid: false
    values = _child(records, records.type, "values")
    if values is not None and not pa.types.is_null(values.type):
        if not pa.types.is_struct(values.type):
            return None
        for field in values.type:
            cells = pc.struct_field(values, field.name)
            column = cells
            if pa.types.is_struct(cells.type):
                flag = _child(cells, cells.type, "valid")
                if flag is not None and not pa.types.is_null(flag.type):
                    if not pa.types.is_boolean(flag.type):
                        return None
                    said_no = pc.fill_null(pc.invert(flag), False)
                    invalid = said_no if invalid is None else pc.or_(invalid, said_no)
                value = _child(cells, cells.type, "value")
                column = pa.nulls(len(records)) if value is None else value
            if not _plain(column.type):
                return None  # lists, objects, timestamps: the reference path reads them
            if pa.types.is_float64(column.type):
                top = pc.max(pc.abs(column)).as_py()
                if top is not None and top >= _EXACT:
                    return None
            if field.name not in _RESERVED:  # a field cannot shadow a reserved column
                named[field.name] = column

    valid = _child(records, records.type, "valid")
    if valid is None or pa.types.is_null(valid.type):
        valid = pa.nulls(len(records), pa.bool_())
    if not pa.types.is_boolean(valid.type):
        return None
    if valid.null_count:
        # `valid` is optional on the wire: then valid unless a cell says otherwise.
        derived = pa.repeat(True, len(records)) if invalid is None else pc.invert(invalid)
        valid = pc.if_else(pc.is_valid(valid), valid, derived)
    # First-seen order: the first record's fields (declared ones came first in Arrow's),
    # then the later ones, in the order Arrow met them.
    order = [k for k in first.get("values") or {} if k in named]
    order += [k for k in named if k not in order]
    columns = [named[k] for k in order]
    frame = pa.Table.from_arrays([ids, valid, *columns], names=["_id", "_valid", *order])
    result: pd.DataFrame = frame.to_pandas(use_threads=False)  # see _ONE_THREAD
    return result
