"""Client and server meet only on the wire: neither imports the other."""

from __future__ import annotations

import ast
from pathlib import Path

import splitkit.server

SERVER = Path(splitkit.server.__file__).parent
API = SERVER.parent / "api"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            prefix = "." * node.level
            names.add(prefix + (node.module or ""))
    return names


def test_the_server_never_imports_the_client() -> None:
    for path in SERVER.rglob("*.py"):
        for name in _imports(path):
            assert not name.startswith("splitkit.api"), f"{path} imports {name}"
            assert not name.lstrip(".").startswith("api"), f"{path} imports {name}"
            assert name.lstrip(".") not in {"connect", "splitkit.connect"}, f"{path}: {name}"


def test_the_client_never_imports_the_server() -> None:
    for path in API.rglob("*.py"):
        for name in _imports(path):
            assert not name.startswith("splitkit.server"), f"{path} imports {name}"
            assert not name.lstrip(".").startswith("server"), f"{path} imports {name}"


def test_every_server_module_reads_in_one_sitting() -> None:
    for path in SERVER.rglob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 300, f"{path.relative_to(SERVER)} has {lines} lines"
