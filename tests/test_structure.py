"""One definition of each thing (issue 8): the status vocabulary, the argument checks, the
wire encoder and the error tree. Each test reads the source (``ast``) or walks the
imported modules, so a copy added later anywhere in splitkit/ is found."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import splitkit
import splitkit.errors
from splitkit.errors import SettleRefusedError, SplitkitError, SplitMismatchError
from splitkit.statuses import (
    ALIASES,
    JOB_TERMINAL,
    JobStatus,
    OutcomeStatus,
    outcome_of_job,
    outcome_status,
    summary_bucket,
)

PACKAGE = Path(splitkit.__file__).parent
STATUS_WORDS = {s.value for s in JobStatus} | {s.value for s in OutcomeStatus} | set(ALIASES)


def _sources() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(PACKAGE.parent).as_posix(), ast.parse(path.read_text("utf-8")))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


# -- the status vocabulary --------------------------------------------------------------------


def status_collections(tree: ast.Module) -> list[tuple[int, list[str]]]:
    """Literal sets, tuples and lists made only of status strings (two or more), and the
    keys of literal tables (dicts of constants) keyed by them."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Set | ast.Tuple | ast.List):
            items = node.elts
        elif isinstance(node, ast.Dict) and all(isinstance(v, ast.Constant) for v in node.values):
            items = [key for key in node.keys if key is not None]  # a table keyed by status
        else:
            continue
        words = [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]
        if len(words) >= 2 and len(words) == len(items) and set(words) <= STATUS_WORDS:
            found.append((node.lineno, words))
    return found


def test_status_sets_are_defined_only_in_statuses_py() -> None:
    copies = [
        f"{name}:{line} {words}"
        for name, tree in _sources()
        if name != "splitkit/statuses.py"
        for line, words in status_collections(tree)
    ]
    assert not copies, "status sets outside splitkit/statuses.py:\n" + "\n".join(copies)


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ('TERMINAL = frozenset({"complete", "failed", "canceled"})', True),
        ('if status in ("failed", "canceled"): pass', True),
        ('BUCKET = {"complete": "completed", "cancelled": "canceled"}', True),
        ('COUNTS = ("total", "completed", "failed")', False),  # column names, not a status set
        ('if status == "ready": pass', False),  # one status is a comparison, not a set
        ('COLORS = {"completed": "#43a047", "failed": "#e53935"}', True),
        ('row = {"completed": n, "failed": m}', False),  # a record of counts, not a table
    ],
)
def test_the_status_set_finder(source: str, caught: bool) -> None:
    assert bool(status_collections(ast.parse(source))) is caught


def test_the_one_mapping_between_job_and_outcome_statuses() -> None:
    assert {outcome_of_job(s) for s in JOB_TERMINAL} == {
        OutcomeStatus.COMPLETED,
        OutcomeStatus.FAILED,
        OutcomeStatus.CANCELED,
    }
    assert outcome_of_job("complete") == "completed"
    for open_status in set(JobStatus) - JOB_TERMINAL:
        assert outcome_of_job(open_status) == "pending"
    assert outcome_status("Cancelled") == "canceled" and outcome_status("COMPLETE") == "completed"
    assert summary_bucket("running") == "pending" and outcome_status("running") == "running"
    assert outcome_status("done") is None and summary_bucket(None) is None
    with pytest.raises(ValueError):
        outcome_of_job("completed")  # an outcome status, not a job status


# -- the argument checks ---------------------------------------------------------------------

# Functions outside _checks.py that raise "<their argument> must be ...", with why each is
# not a general check: none repeats one of splitkit._checks.
NOT_ARGUMENT_CHECKS = {
    ("splitkit/api/models.py", "_required"): "reads a wire dict, not an argument",
    ("splitkit/api/operations/wire.py", "_query_value"): "encodes a query value for the wire",
    ("splitkit/plan.py", "_page_size"): "positive_int plus the records page limit",
    ("splitkit/plan.py", "_positive_ints"): "a list of positive_int",
    ("splitkit/notebook/plots.py", "_check_frame"): "a frame's columns, with a hint",
    ("splitkit/lab/plot.py", "_check"): "a frame's columns (the lab cannot import notebook/)",
}


def validators(tree: ast.Module) -> list[tuple[int, str]]:
    """Functions raising an f-string message that starts ``{<parameter>} must be``."""
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        params = {a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]}
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.JoinedStr)
                and len(node.values) > 1
                and isinstance(head := node.values[0], ast.FormattedValue)
                and isinstance(head.value, ast.Name)
                and head.value.id in params
                and isinstance(rest := node.values[1], ast.Constant)
                and str(rest.value).startswith(" must be")
            ):
                found.append((fn.lineno, fn.name))
                break
    return found


def test_argument_checks_are_defined_only_in_checks_py() -> None:
    copies = [
        f"{name}:{line} {fn}()"
        for name, tree in _sources()
        if name != "splitkit/_checks.py"
        for line, fn in validators(tree)
        if (name, fn) not in NOT_ARGUMENT_CHECKS
    ]
    assert not copies, "argument checks outside splitkit/_checks.py:\n" + "\n".join(copies)


def test_the_validator_finder() -> None:
    source = (
        "def _positive(name, value):\n"
        "    if value <= 0:\n"
        "        raise ValueError(f'{name} must be a positive number, got {value!r}')\n"
        "def other(x):\n"
        "    raise ValueError(f'{x!r} is odd')\n"
    )
    assert validators(ast.parse(source)) == [(1, "_positive")]


# -- the encoder -----------------------------------------------------------------------------


def orjson_dumps_calls(tree: ast.Module) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "dumps"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "orjson"
    ] + [  # `from orjson import dumps` would hide the call from the check above
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module == "orjson"
        and any(alias.name == "dumps" for alias in node.names)
    ]


def test_only_the_encoding_module_encodes_json_outside_the_server() -> None:
    # The server answers with its own orjson.dumps: see splitkit/server/errors.py, HttpProblem.
    calls = [
        f"{name}:{line}"
        for name, tree in _sources()
        if name != "splitkit/api/encoding.py" and not name.startswith("splitkit/server/")
        for line in orjson_dumps_calls(tree)
    ]
    assert not calls, "orjson.dumps outside splitkit/api/encoding.py:\n" + "\n".join(calls)


# -- the error tree --------------------------------------------------------------------------

# Exceptions defined in splitkit that are not SplitkitErrors, and why (see splitkit.errors).
OUTSIDE_THE_TREE = {
    "splitkit.server.errors.HttpProblem": "the server's answer, never leaves the server",
    "splitkit.server.limits.BodyProblem": "a refused body, answered as an HTTP error",
    "splitkit.server.store.Busy": "the fast lane hands the request to FastAPI on it",
    "splitkit.server.fastlane._HandOn": "the fast lane hands the request to FastAPI on it",
    "splitkit.api.typed_frames._Wide": "an int past 64 bits: the page goes to the reference parser",
}


def splitkit_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined (not just imported) in a module of splitkit."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(splitkit.__path__, "splitkit."):
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{info.name}.{value.__qualname__}"] = value
    return found


def test_every_exception_of_splitkit_is_a_splitkit_error() -> None:
    exceptions = splitkit_exceptions()
    assert "splitkit.engine.claim.ParentClaimedError" in exceptions  # the walk sees them all
    outside = {
        name
        for name, cls in exceptions.items()
        if not issubclass(cls, SplitkitError) and name not in OUTSIDE_THE_TREE
    }
    assert not outside, f"not under SplitkitError: {sorted(outside)}"
    assert set(OUTSIDE_THE_TREE) <= set(exceptions)  # no stale exemption


def test_the_tree_drawn_in_errors_py_is_the_real_one() -> None:
    doc = splitkit.errors.__doc__ or ""
    drawn: dict[str, str | None] = {}  # class name -> its parent as drawn
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = re.match(r"^( *)(?:([│ ]*)[├└]── )?([A-Z]\w+)(?: \(ValueError\))?\s", line)
        if not match or not match.group(3).endswith("Error"):
            continue
        depth = 0 if match.group(2) is None else len(match.group(2)) // 4 + 1
        while stack and stack[-1][0] >= depth:
            stack.pop()
        drawn[match.group(3)] = stack[-1][1] if stack else None
        stack.append((depth, match.group(3)))
    real = {
        cls.__name__: next(
            (b.__name__ for b in cls.__bases__ if issubclass(b, SplitkitError)), None
        )
        for cls in splitkit_exceptions().values()
        if issubclass(cls, SplitkitError)
    }
    assert drawn == real


def test_refusals_are_value_errors_too() -> None:
    for cls in (SettleRefusedError, SplitMismatchError):
        assert issubclass(cls, SplitkitError) and issubclass(cls, ValueError)
    import splitkit.api.errors
    import splitkit.pipeline

    assert splitkit.api.errors.SplitkitError is SplitkitError  # the one root, re-exported
    assert splitkit.pipeline.SplitMismatchError is SplitMismatchError


def test_a_settle_refusal_is_a_settle_refused_error() -> None:
    from splitkit.settlement import settle_decision
    from splitkit.summary import summarize

    counts = {"total": 3, "completed": 1, "failed": 0, "canceled": 0}
    with pytest.raises(SettleRefusedError, match="2 parts have not ended"):
        settle_decision(summarize(parts_completed={"parts": counts}))
