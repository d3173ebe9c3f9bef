"""The public surface is deliberate: `splitkit.__all__` is what users call, and only that.

Each exported name is importable, listed once, in order, has a docstring of its own and is
named in code in README.md or docs/*.md. Whatever else `import splitkit` binds publicly is a
subpackage or module. The package faces export no internals (the operations core, the
protocols settle and the engine use, the listener's routing).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import splitkit

ROOT = Path(__file__).resolve().parents[1]

# What users call and catch: these stay exported whatever else changes.
MUST_EXPORT = {
    "connect",
    "plan_parts",
    "what_if",
    "start_parent_job",
    "split_parent",
    "dispatch",
    "summarize",
    "counts_match",
    "settle",
    "retry_failed",
    "Listener",
    "multipart_listener",
    "Part",
    "RunHandle",
    "LoopExecutor",
    "ThreadExecutor",
    "ProcessExecutor",
    "DaskExecutor",
    "SplitkitError",
    "ApiError",
    "ParentClaimedError",
    "ClaimLostError",
    "PartTimeoutError",
    "SplitMismatchError",
}

# Internals: no package face exports them.
INTERNALS = {
    "Flow",
    "Operation",
    "Page",
    "SettleClient",
    "AsyncSettleClient",
    "RunLike",
    "Route",
    "Engine",
    "Controls",
    "PartOptions",
    "LiveRuns",
    "NotebookViews",
    "Panel",
}
FACES = ["splitkit", "splitkit.api", "splitkit.engine", "splitkit.listener", "splitkit.notebook"]


def code_in(markdown: str) -> str:
    """The code of a markdown text: fenced blocks, indented blocks and `inline` spans."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", markdown, flags=re.S | re.M)
    indented = [line for line in prose.splitlines() if line.startswith("    ")]
    inline = re.findall(r"`([^`\n]+)`", prose)
    return "\n".join([*fenced, *indented, *inline])


@functools.cache
def documented_code() -> str:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(code_in(page.read_text(encoding="utf-8")) for page in pages)


def own_docstring(value: object) -> str | None:
    """The object's own docstring: not a base class's, nor a dataclass's made-up signature."""
    if isinstance(value, type):
        doc = vars(value).get("__doc__")
        if doc and doc.startswith(f"{value.__name__}("):
            return None
        return doc
    return getattr(value, "__doc__", None)


def test_all_is_sorted_and_lists_each_name_once() -> None:
    assert splitkit.__all__ == sorted(splitkit.__all__)
    assert len(splitkit.__all__) == len(set(splitkit.__all__))


def test_every_exported_name_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from splitkit import *", namespace)
    missing = [name for name in splitkit.__all__ if name not in namespace]
    assert not missing, missing
    for name in splitkit.__all__:
        assert namespace[name] is getattr(splitkit, name)


def test_what_users_call_is_exported() -> None:
    missing = sorted(MUST_EXPORT - set(splitkit.__all__))
    assert not missing, f"not in splitkit.__all__: {missing}"


@pytest.mark.parametrize("name", splitkit.__all__)
def test_every_exported_name_is_documented(name: str) -> None:
    value = getattr(splitkit, name)
    doc = own_docstring(value)
    assert doc and doc.strip(), f"splitkit.{name} has no docstring of its own"
    named = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", documented_code()) is not None
    assert named, f"splitkit.{name} is not named in code in README.md or docs/*.md"


def test_public_names_beyond_all_are_only_submodules() -> None:
    # In this process most of splitkit is imported, so every submodule is bound: the
    # widest `dir(splitkit)` there can be.
    for face in FACES:
        importlib.import_module(face)
    extra = {
        name: value
        for name, value in vars(splitkit).items()
        if not name.startswith("_") and name not in splitkit.__all__
    }
    not_modules = {
        name: type(value).__name__
        for name, value in extra.items()
        if not (isinstance(value, ModuleType) and value.__name__ == f"splitkit.{name}")
    }
    assert not not_modules, f"public in splitkit but not in __all__: {not_modules}"


def test_a_fresh_import_binds_nothing_public_beyond_all_and_submodules() -> None:
    # The same on a plain `import splitkit`, where only what it imports itself is bound.
    probe = (
        "import types, splitkit\n"
        "print(sorted(n for n, v in vars(splitkit).items() if not n.startswith('_')"
        " and n not in splitkit.__all__ and not isinstance(v, types.ModuleType)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("face", FACES)
def test_no_package_face_exports_an_internal(face: str) -> None:
    module = importlib.import_module(face)
    exported = set(getattr(module, "__all__", ()))
    assert hasattr(module, "__all__"), f"{face} has no __all__: star-imports take everything"
    assert not exported & INTERNALS, f"{face} exports {sorted(exported & INTERNALS)}"
    namespace: dict[str, object] = {}
    exec(f"from {face} import *", namespace)
    assert not set(namespace) & INTERNALS, f"from {face} import * gives internals"


def test_no_public_function_shadows_a_submodule() -> None:
    # `import splitkit.X.Y as m` resolves the attribute X first: a function named like a
    # submodule hides it (as `splitkit.dispatch` once hid the engine package).
    modules = {info.name for info in pkgutil.iter_modules(splitkit.__path__)}
    shadowed = sorted(
        name
        for name in modules
        if hasattr(splitkit, name) and not inspect.ismodule(getattr(splitkit, name))
    )
    assert not shadowed, f"splitkit attributes that hide a submodule: {shadowed}"
