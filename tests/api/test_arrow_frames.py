"""The pyarrow fast path of `records_frame` gives the reference frame, or steps aside.

Every page is read both ways: `arrow_records_frame` (None when it leaves the page to the
reference) and `reference_records_frame` (orjson + Python lists, the frame splitkit has
always made); where the fast path answers, the two frames must be equal to the dtype, the
column order and the missing values. `FAST` pages must be taken by the fast path (so the
comparison is not vacuous); `REFERENCE` pages must be left to the reference.
"""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
import pytest

from splitkit.api.arrow_frames import arrow_records_frame
from splitkit.api.frames import records_frame, reference_records_frame


def _page(*records: dict[str, Any]) -> bytes:
    return orjson.dumps({"data": {"success": True, "records": list(records)}})


def _rec(i: int, values: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"id": f"us_rc_{i}", "messages": [], "metadata": {}, **extra}
    if values is not None:
        record["values"] = values
    return record


def _cells(**values: Any) -> dict[str, Any]:
    return {k: {"value": v, "valid": True, "messages": []} for k, v in values.items()}


FAST: dict[str, bytes] = {
    "plain strings": _page(
        *(_rec(i, _cells(a=f"x{i}", b="ü✓ 名前"), valid=True) for i in range(5))
    ),
    "dates stay strings": _page(
        _rec(0, _cells(d="2022-03-01", t="2022-03-01T10:00:00Z"), valid=True),
        _rec(1, _cells(d="2023-12-31", t="2024-01-01 00:00:00"), valid=True),
    ),
    "ints, floats, bools, nulls": _page(
        _rec(0, _cells(i=1, f=1, b=True, n=None, s="x", big=2**53 + 1), valid=True),
        _rec(1, _cells(i=-(2**63), f=2.5, b=None, n=None, s=None), valid=False),
        _rec(2, _cells(i=None, f=None, b=False, n=None, s="z"), valid=True),
    ),
    "missing fields and cells, first-seen order": _page(
        _rec(0, {"b": {"value": "1"}, "a": {"value": "2"}}),
        _rec(1, {"c": {"value": 3}, "a": {"valid": False}}),
        _rec(2, None),
        _rec(3, {"a": None, "d": {"value": True}}),
        _rec(4, {}),
    ),
    "validity from the cells when `valid` is missing or null": _page(
        _rec(0, {"a": {"value": "x", "valid": False}}),
        _rec(1, {"a": {"value": "y", "valid": True}}, valid=None),
        _rec(2, {"a": {"value": "z"}}, valid=False),
        _rec(3, {"a": {"value": "w"}}),
    ),
    "a field named like a reserved column": _page(
        _rec(0, {"_id": {"value": "shadow"}, "_valid": {"value": False}, "a": {"value": 1}}),
        _rec(1, {"_id": {"value": "shadow"}, "a": {"value": 2, "valid": False}}),
    ),
    "bare values instead of cells": _page(_rec(0, {"a": "x", "n": 1}), _rec(1, {"a": "y", "n": 2})),
    "a later field holding a date string": _page(
        _rec(0, _cells(a="x")), _rec(1, _cells(a="y", late="later text"))
    ),
}

REFERENCE: dict[str, bytes] = {
    "empty page": _page(),
    "mixed types in a field": _page(_rec(0, _cells(a=1)), _rec(1, _cells(a="1"))),
    "nested values": _page(_rec(0, _cells(a={"x": 1}, b=[1, 2])), _rec(1, _cells(a={"y": 2}))),
    "an int past int64": _page(_rec(0, _cells(a=2**63)), _rec(1, _cells(a=1))),
    "an int float64 cannot hold exactly, with floats": _page(
        _rec(0, _cells(a=2**53 + 1)), _rec(1, _cells(a=0.5))
    ),
    "a later field of dates only": _page(_rec(0, _cells(a="x")), _rec(1, _cells(d="2022-03-01"))),
    "valid that is not a boolean": _page(_rec(0, _cells(a="x"), valid=1)),
    "a record without id": _page({"values": _cells(a="x")}, _rec(1, _cells(a="y"))),
    "a top-level list": orjson.dumps([_rec(0, _cells(a="x"))]),
    "pretty-printed": orjson.dumps(
        {"data": {"records": [_rec(0, _cells(a="x")), _rec(1, _cells(a="y"))]}},
        option=orjson.OPT_INDENT_2,
    ),
    "no data envelope": orjson.dumps({"records": [_rec(0, _cells(a="x"))]}),
}


@pytest.mark.parametrize("name", FAST)
def test_the_fast_path_gives_the_reference_frame(name: str) -> None:
    content = FAST[name]
    fast = arrow_records_frame(content)
    assert fast is not None, f"{name}: the fast path stepped aside"
    reference = reference_records_frame(content)
    pd.testing.assert_frame_equal(fast, reference, check_exact=True)
    assert list(fast.columns) == list(reference.columns)
    assert fast.dtypes.tolist() == reference.dtypes.tolist()
    pd.testing.assert_frame_equal(records_frame(content), reference, check_exact=True)


@pytest.mark.parametrize("name", REFERENCE)
def test_pages_arrow_would_read_otherwise_go_to_the_reference(name: str) -> None:
    content = REFERENCE[name]
    assert arrow_records_frame(content) is None
    try:
        reference = reference_records_frame(content)
    except (KeyError, ValueError) as exc:  # what the reference says of a broken page
        with pytest.raises(type(exc)):
            records_frame(content)
        return
    pd.testing.assert_frame_equal(records_frame(content), reference, check_exact=True)


def test_a_generated_sheet_page_takes_the_fast_path() -> None:
    records = [
        _rec(
            i,
            _cells(name=f"n{i}", signup=f"2022-01-{1 + i % 28:02d}", n=i, x=i / 3),
            valid=i % 3 > 0,
        )
        for i in range(1_000)
    ]
    content = _page(*records)
    fast = arrow_records_frame(content)
    assert fast is not None
    pd.testing.assert_frame_equal(fast, reference_records_frame(content), check_exact=True)
