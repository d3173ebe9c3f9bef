"""The msgspec fast path of `records_frame` gives the reference frame, or steps aside.

Every page is read both ways: `typed_records_frame` (None when it leaves the page to the
reference) and `reference_records_frame` (orjson + Python lists, the frame splitkit has
always made); where the fast path answers, the two frames must be equal to the dtype, the
column order and the missing values. `FAST` pages must be taken by the fast path (so the
comparison is not vacuous); `REFERENCE` pages must be left to the reference, which then
gives its frame or raises its error. Random pages (hypothesis) are compared the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splitkit.api import typed_frames
from splitkit.api.frames import records_frame, reference_records_frame
from splitkit.api.typed_frames import _by_layout, typed_records_frame


@pytest.fixture(autouse=True)
def _no_layout_skips() -> None:
    typed_frames._skips.clear()  # a miss in one test must not steer the next one's path


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
    "mixed types in a field": _page(_rec(0, _cells(a=1)), _rec(1, _cells(a="1"))),
    "numbers and bools in a field": _page(
        _rec(0, _cells(a=1, b=0.5, c=True, d=1)),
        _rec(1, _cells(a=True, b=False, c=None, d=None)),
        _rec(2, _cells(a=None, b=None, c=False, d=2.5)),
    ),
    "nested values": _page(_rec(0, _cells(a={"x": 1}, b=[1, 2])), _rec(1, _cells(a={"y": 2}))),
    "ints at the edges of int64 and uint64": _page(
        _rec(0, _cells(a=2**63, b=-(2**63), c=2**64 - 1)), _rec(1, _cells(a=1, b=2, c=3))
    ),
    "an int float64 cannot hold exactly, with floats": _page(
        _rec(0, _cells(a=2**53 + 1)), _rec(1, _cells(a=0.5))
    ),
    "a later field of dates only": _page(_rec(0, _cells(a="x")), _rec(1, _cells(d="2022-03-01"))),
    "valid that is not a boolean": _page(
        _rec(0, _cells(a="x"), valid=1), _rec(1, _cells(a="y"), valid=""), _rec(2, {}, valid=[])
    ),
    "cell validity that is not a boolean": _page(
        _rec(0, {"a": {"value": 1, "valid": 0}}), _rec(1, {"a": {"value": 2, "valid": None}})
    ),
    "pretty-printed": orjson.dumps(
        {"data": {"records": [_rec(0, _cells(a="x")), _rec(1, _cells(a="y"))]}},
        option=orjson.OPT_INDENT_2,
    ),
    "members after the records": orjson.dumps(
        {"data": {"records": [_rec(0, _cells(a="x"))], "total": 1}, "next": [1]}
    ),
    "null values, missing values": _page(
        {"id": "r0", "values": None}, _rec(1, _cells(a="x")), _rec(2, None)
    ),
    "all cells missing or null in a field": _page(
        _rec(0, {"a": None, "b": {"value": None}}), _rec(1, {"b": {"valid": True}})
    ),
    "duplicate keys (the last one wins)": (
        b'{"data":{"records":[{"id":"r0","values":{"a":{"value":1},"b":{"value":2},'
        b'"a":{"value":3}},"valid":true,"valid":false}]}}'
    ),
    "escaped and non-ASCII keys": (
        b'{"data":{"records":[{"id":"r0","values":{"na\\u006de":{"value":"\\u00fc"},'
        b'"\xc3\xa9t\xc3\xa9":{"value":"\\ud83d\\ude00"},"":{"value":0}}}]}}'
    ),
    "a second data member (the last one wins)": (
        b'{"data":{"records":[{"id":"r0","values":{"a":{"value":1},"b":{"value":2}}}]},'
        b'"data":{"records":[{"id":"r1","values":{"b":{"value":3},"a":{"value":4}}}]}}'
    ),
    "ids that are not strings": _page({"id": 7, "values": _cells(a="x")}, _rec(1, _cells(a="y"))),
}

REFERENCE: dict[str, bytes] = {
    "empty page": _page(),
    "an int past uint64": _page(_rec(0, _cells(a=1)), _rec(1, {"a": {"value": 0}})).replace(
        b'"value":0', b'"value":18446744073709551616'
    ),
    "an int below int64, nested": _page(_rec(0, _cells(a=[1]))).replace(
        b"[1]", b"[-9223372036854775809]"
    ),
    "a record without id": _page({"values": _cells(a="x")}, _rec(1, _cells(a="y"))),
    "a record that is not an object": _page(_rec(0, _cells(a="x"))).replace(b"]}}", b",null]}}"),
    "values that are a list": _page({"id": "r0", "values": [1]}),
    "values that are an empty list": _page({"id": "r0", "values": []}),
    "a top-level list": orjson.dumps([_rec(0, _cells(a="x"))]),
    "no data envelope": orjson.dumps({"records": [_rec(0, _cells(a="x"))]}),
    "data without records": orjson.dumps({"data": {"success": True}}),
    "records that are not a list": orjson.dumps({"data": {"records": {"a": 1}}}),
    "a lone surrogate": b'{"data":{"records":[{"id":"r0","values":{"a":{"value":"\\ud800"}}}]}}',
    "not JSON": b'{"data":{"records":[{"id":"r0",}]}}',
    "too deep": b'{"data":{"records":[{"id":"r0","values":{"a":{"value":'
    + b"[" * 1_100
    + b"]" * 1_100
    + b"}}}]}}",
}


def _same(frame: pd.DataFrame, reference: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(frame, reference, check_exact=True)
    assert list(frame.columns) == list(reference.columns)
    assert frame.dtypes.tolist() == reference.dtypes.tolist()


def _reference_or_error(content: bytes) -> pd.DataFrame | Exception:
    try:
        return reference_records_frame(content)
    except Exception as exc:  # what the reference says of a broken page
        return exc


@pytest.mark.parametrize("name", FAST)
def test_the_fast_path_gives_the_reference_frame(name: str) -> None:
    content = FAST[name]
    fast = typed_records_frame(content)
    assert fast is not None, f"{name}: the fast path stepped aside"
    reference = reference_records_frame(content)
    _same(fast, reference)
    _same(records_frame(content), reference)


@pytest.mark.parametrize("name", REFERENCE)
def test_pages_msgspec_would_read_otherwise_go_to_the_reference(name: str) -> None:
    content = REFERENCE[name]
    assert typed_records_frame(content) is None
    reference = _reference_or_error(content)
    if isinstance(reference, Exception):
        with pytest.raises(type(reference)):
            records_frame(content)
        return
    _same(records_frame(content), reference)


def _sheet_page(n: int) -> bytes:
    return _page(
        *(
            _rec(
                i,
                _cells(name=f"n{i}", signup=f"2022-01-{1 + i % 28:02d}", n=i, x=i / 3),
                valid=i % 3 > 0,
            )
            for i in range(n)
        )
    )


def test_a_sheet_page_takes_the_layout_decoder() -> None:
    content = _sheet_page(1_000)
    columns = _by_layout(content)
    assert columns is not None, "a page of one layout must not need the dict-of-cells decoder"
    assert list(columns) == ["_id", "_valid", "name", "signup", "n", "x"]
    fast = typed_records_frame(content)
    assert fast is not None
    _same(fast, reference_records_frame(content))
    assert isinstance(fast["name"].array, pd.arrays.ArrowStringArray)


def test_pages_off_the_first_records_layout_take_the_dict_of_cells_decoder() -> None:
    for content in (
        FAST["missing fields and cells, first-seen order"],
        FAST["a later field holding a date string"],
        FAST["bare values instead of cells"],
        FAST["pretty-printed"],
    ):
        assert _by_layout(content) is None
        _same(typed_records_frame(content), reference_records_frame(content))


# -- random pages: hypothesis draws records, the fast path must equal the reference ----------

_KEYS = st.sampled_from(["a", "b", "c", "_id", "_valid", "名", "2022-03-01"])
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.sampled_from([2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30])  # the edges
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["2022-03-01", "2022-03-01T10:00:00Z", "1", "", "null"])
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)
_CELL = st.fixed_dictionaries(
    {},
    optional={
        "value": _VALUES,
        "valid": st.none() | st.booleans() | st.integers(0, 1),
        "messages": st.just([]),
    },
)
_RECORD = st.fixed_dictionaries(
    {"id": st.text(max_size=6) | st.integers(0, 9)},
    optional={
        "values": st.none() | st.dictionaries(_KEYS, _CELL | _SCALARS, max_size=5),
        "valid": st.none() | st.booleans() | st.integers(0, 2),
        "metadata": st.just({}),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_RECORD, max_size=6), same_layout=st.booleans(), ascii=st.booleans())
def test_random_pages_give_the_reference_frame(
    records: list[dict[str, Any]], same_layout: bool, ascii: bool
) -> None:
    if same_layout and records:  # a sheet: every record has the first one's keys
        keys = list(records[0].get("values") or {"a": None})
        for r in records:
            cells = r.get("values") or {}
            r["values"] = {k: cells.get(k, {"value": None}) for k in keys}
    # json, not orjson: it writes ints past 64 bits (orjson reads them back as floats)
    page = {"data": {"success": True, "records": records}}
    content = json.dumps(page, ensure_ascii=ascii, separators=(",", ":")).encode()
    reference = _reference_or_error(content)
    fast = typed_records_frame(content)
    if fast is not None:
        assert not isinstance(reference, Exception), f"the reference raised {reference!r}"
        _same(fast, reference)
    if isinstance(reference, Exception):
        with pytest.raises(type(reference)):
            records_frame(content)
    else:
        _same(records_frame(content), reference)


# -- no thread: the parse runs in the caller's thread only -----------------------------------


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads via /proc")
def test_the_parse_starts_no_thread() -> None:
    # In a fresh interpreter: pyarrow's JSON reader, say, starts its pool on first use.
    script = textwrap.dedent(
        """
        import os, threading
        import orjson, pandas as pd
        from splitkit.api.frames import records_frame
        from splitkit.api.typed_frames import typed_records_frame
        from tests.api.test_typed_frames import FAST, _sheet_page

        pd.DataFrame({"a": ["x"]})  # pandas' own start-up is not the parse's
        before = len(os.listdir("/proc/self/task")), threading.active_count()
        for content in [_sheet_page(1_000), *FAST.values()]:
            assert typed_records_frame(content) is not None
            records_frame(content)
        after = len(os.listdir("/proc/self/task")), threading.active_count()
        assert after == before, f"threads before/after the parse: {before} -> {after}"
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_parse_survives_tracemalloc_toggled_in_another_thread() -> None:
    # CPython 3.11 crashed here when the parse's C++ threads allocated while tracemalloc
    # was switched on and off (the pyarrow JSON reader did): a crash is a non-zero exit.
    script = textwrap.dedent(
        """
        import threading, time, tracemalloc
        from splitkit.api.frames import records_frame
        from tests.api.test_typed_frames import _sheet_page

        raw = _sheet_page(50)
        stop = threading.Event()

        def toggle():
            while not stop.is_set():
                tracemalloc.start(); time.sleep(0.002); tracemalloc.stop(); time.sleep(0.002)

        def parse():
            for _ in range(120):
                records_frame(raw)

        toggler = threading.Thread(target=toggle)
        toggler.start()
        workers = [threading.Thread(target=parse) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        stop.set()
        toggler.join()
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_pages_after_a_layout_miss_still_give_the_reference_frame() -> None:
    # A page straying from its first record's keys makes the next pages of that layout skip
    # the layout decoder a while: each page must still give the reference frame.
    fits = _sheet_page(20)
    strays = _page(_rec(0, _cells(name="a", signup="b", n=1, x=0.5)), _rec(1, _cells(late=1)))
    for content in (fits, strays, fits, strays, fits):
        _same(typed_records_frame(content), reference_records_frame(content))
    assert _by_layout(fits) is None, "a layout that just missed is skipped a while"
