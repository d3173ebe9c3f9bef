"""The layers of docs/architecture.md, enforced: which package may import which.

Every import between two of splitkit's packages (or top-level modules) must go down the
layers in ``LAYERS`` (or be one of the few ``SIBLINGS`` inside a layer); no module imports
itself back through others (no import cycle). Client and server meet only on the wire:
neither imports the other, directly or through another splitkit module
(``from splitkit import Client`` goes through the package's re-exports, which reach the
client).

The checker reads every module with ``ast`` and resolves each import form to the modules it
runs: ``import a.b`` and ``import a.b as x`` → ``a.b``; ``from a import b`` → ``a.b`` when
that is a module, else ``a`` (``b`` is something ``a`` defines or re-exports); relative
imports against the importing module's package. Parent packages are not counted: Python
has already loaded them for the importer itself, so they are not the importer's choice.
It follows those edges through splitkit and reports the first path from one side into the
other. The checker is itself tested on small synthetic packages, one per import form.
"""

from __future__ import annotations

import ast
import textwrap
from collections import deque
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the folder holding the splitkit package


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root``, by dotted name (a package by its own)."""
    found: dict[str, Path] = {}
    for path in (root / package).rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(source: str, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The modules that the source of module ``name`` imports, resolved (see the docstring)."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                child = f"{module}.{alias.name}"
                found.add(child if child in modules else module)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    files = module_files(root, package)
    modules = set(files)
    return {
        name: imported(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", modules)
        for name, path in files.items()
    }


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def crossings(graph: dict[str, set[str]], side: str, other: str) -> list[list[str]]:
    """For each module of ``side`` that reaches a module of ``other``: the import path."""
    found = []
    for start in sorted(m for m in graph if _inside(m, side)):
        came_from: dict[str, str | None] = {start: None}
        queue = deque([start])
        while queue:
            module = queue.popleft()
            if _inside(module, other):
                path = [module]
                while (previous := came_from[path[-1]]) is not None:
                    path.append(previous)
                found.append(path[::-1])
                break
            for target in sorted(graph.get(module, ())):
                if target not in came_from:
                    came_from[target] = module
                    queue.append(target)
    return found


def _explain(paths: list[list[str]]) -> str:
    return "\n".join(" -> ".join(path) for path in paths)


# --- the layers -------------------------------------------------------------------------

# Bottom first. A package (``splitkit.engine.*`` is ``engine``) or top-level module
# (``splitkit.plan`` is ``plan``) may import what is in a layer below its own; inside a layer
# only the SIBLINGS edges. Every module of splitkit has a place here.
LAYERS: list[set[str]] = [
    # leaf modules: the vocabulary, the checks, and the simulator's profile (written by the
    # client's probe, read by the server's simulator)
    {"_checks", "statuses", "errors", "simprofile"},
    {"api", "server"},  # the client and the embedded server: never each other
    {"plan", "outcomes", "summary", "settlement", "pipeline", "runlog"},  # frames, client flows
    {"engine"},  # dispatch: runs the parts
    {"listener", "retry", "lab"},  # flows over the engine
    {"notebook"},  # views of a run: builds on the engine, never the reverse
    {"connection", "demo", "probing", "cli"},  # entry points: need client and server
    {"splitkit"},  # the package face: re-exports, wires the notebook's views into the engine
]
SIBLINGS: set[tuple[str, str]] = {
    ("simprofile", "_checks"),
    ("plan", "outcomes"),
    ("pipeline", "plan"),
    ("pipeline", "outcomes"),
    ("summary", "outcomes"),
    ("settlement", "outcomes"),
    ("settlement", "summary"),
    ("runlog", "summary"),
    ("demo", "connection"),
    ("cli", "demo"),
    ("cli", "probing"),
}


def place(module: str) -> str:
    """The package or top-level module that ``module`` belongs to (its layer's unit)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def allowed(
    importer: str, imported_: str, layers: list[set[str]], siblings: set[tuple[str, str]]
) -> bool:
    level = {name: i for i, layer in enumerate(layers) for name in layer}
    if importer not in level or imported_ not in level:
        return False
    return level[imported_] < level[importer] or (importer, imported_) in siblings


def forbidden(
    graph: dict[str, set[str]],
    package: str,
    layers: list[set[str]],
    siblings: set[tuple[str, str]],
) -> list[str]:
    """Each import from one place to another that the layers do not allow, with its places."""
    found = []
    for module in sorted(graph):
        for target in sorted(graph[module]):
            if not _inside(target, package) or place(target) == place(module):
                continue
            if not allowed(place(module), place(target), layers, siblings):
                found.append(f"{module} -> {target} ({place(module)} -> {place(target)})")
    return found


def test_every_module_has_a_place_in_the_layers() -> None:
    placed = set().union(*LAYERS)
    unplaced = sorted(m for m in import_graph(ROOT, "splitkit") if place(m) not in placed)
    assert not unplaced, f"add these to LAYERS (and docs/architecture.md): {unplaced}"


def test_every_import_goes_down_the_layers() -> None:
    found = forbidden(import_graph(ROOT, "splitkit"), "splitkit", LAYERS, SIBLINGS)
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_the_layers_are_a_drawing() -> None:
    # Each place once; siblings are real places in one layer (a typo would allow nothing).
    names = [name for layer in LAYERS for name in layer]
    assert len(names) == len(set(names))
    for importer, imported_ in SIBLINGS:
        assert any({importer, imported_} <= layer for layer in LAYERS), (importer, imported_)


def test_the_server_never_imports_the_client() -> None:
    paths = crossings(import_graph(ROOT, "splitkit"), "splitkit.server", "splitkit.api")
    assert not paths, _explain(paths)


def test_the_client_never_imports_the_server() -> None:
    paths = crossings(import_graph(ROOT, "splitkit"), "splitkit.api", "splitkit.server")
    assert not paths, _explain(paths)


def test_every_server_module_reads_in_one_sitting() -> None:
    for path in (ROOT / "splitkit" / "server").rglob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 300, f"{path.name} has {lines} lines"


# Issue 8: modules stay about 100-400 lines, each named after its one concept. A few hold one
# concept at a little over 400 (plots.py, panel.py, settlement.py: see docs/architecture.md);
# past this a module has grown a second concept: split it along its seam.
MAX_MODULE_LINES = 450


def test_every_module_reads_in_one_sitting() -> None:
    long = {
        path.relative_to(ROOT).as_posix(): lines
        for path in (ROOT / "splitkit").rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concept): {long}"


# --- the checker on synthetic packages --------------------------------------------------

# A package like splitkit: the top re-exports the client, the server has a helper module.
BASE = {
    "pkg/__init__.py": "from pkg.api import Client\n",
    "pkg/_checks.py": "import math\n",
    "pkg/api/__init__.py": "from pkg.api.client import Client\n",
    "pkg/api/client.py": "class Client: ...\n",
    "pkg/server/__init__.py": "from .app import app\n",
    "pkg/server/app.py": "app = None\n",
    "pkg/server/store.py": "",
}


def _package(tmp_path: Path, module: str, source: str, **extra: str) -> dict[str, set[str]]:
    files = {**BASE, f"pkg/server/{module}.py": source, **extra}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return import_graph(tmp_path, "pkg")


@pytest.mark.parametrize(
    ("source", "extra"),
    [
        ("import pkg.api\n", {}),
        ("import pkg.api.client\n", {}),
        ("import pkg.api.client as c\n", {}),
        ("import pkg.api as x\n", {}),
        ("from pkg.api import Client\n", {}),
        ("from pkg.api.client import Client\n", {}),
        ("from pkg import api\n", {}),
        ("from pkg import Client\n", {}),  # through the top package's re-export
        ("import pkg\n", {}),  # the top package imports the client
        ("from .. import api\n", {}),
        ("from ..api import client\n", {}),
        ("from ..api.client import Client\n", {}),
        ("from .. import Client\n", {}),
        ("def f():\n    from pkg.api import Client\n", {}),  # a local import counts too
        ("from . import helper\n", {"pkg/server/helper.py": "from pkg.api import Client\n"}),
        ("from .helper import x\n", {"pkg/server/helper.py": "from ..api import client\nx=1\n"}),
    ],
)
def test_the_checker_catches_every_import_form(
    tmp_path: Path, source: str, extra: dict[str, str]
) -> None:
    graph = _package(tmp_path, "mod", source, **extra)
    paths = crossings(graph, "pkg.server", "pkg.api")
    # the module itself, and the helper it goes through (which imports the client itself)
    helpers = {name.removesuffix(".py").replace("/", ".") for name in extra}
    assert {path[0] for path in paths} == {"pkg.server.mod", *helpers}, (source, paths)
    assert paths[0][-1].startswith("pkg.api")


@pytest.mark.parametrize(
    "source",
    [
        "from .. import _checks\n",  # a sibling module, not the package's re-exports
        "from pkg import _checks\n",
        "import pkg._checks\n",
        "from . import store\n",
        "from .store import x\n",
        "from pkg.server import app\n",
        "import math\nfrom collections import deque\n",
    ],
)
def test_the_checker_lets_clean_imports_pass(tmp_path: Path, source: str) -> None:
    assert crossings(_package(tmp_path, "mod", source), "pkg.server", "pkg.api") == []


def test_the_checker_reports_the_path(tmp_path: Path) -> None:
    graph = _package(tmp_path, "mod", "from pkg import Client\n")
    assert crossings(graph, "pkg.server", "pkg.api") == [["pkg.server.mod", "pkg", "pkg.api"]]


# --- no import cycle ---------------------------------------------------------------------


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import cycle among the graph's modules, as a path back to its start.

    One cycle per strongly connected component of more than one module (or a module that
    imports itself), found by Tarjan's algorithm without recursion.
    """
    edges = {m: sorted(t for t in targets if t in graph) for m, targets in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            module, i = work.pop()
            if i == 0:
                index[module] = low[module] = len(index)
                stack.append(module)
                on_stack.add(module)
            if i < len(edges[module]):
                work.append((module, i + 1))
                target = edges[module][i]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[module] = min(low[module], index[target])
                continue
            for target in edges[module]:  # done: take the low-links of the children
                if target in on_stack:
                    low[module] = min(low[module], low[target])
            if low[module] == index[module]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == module:
                        break
                if len(component) > 1 or module in edges[module]:
                    components.append(component)
    return [_cycle_in(edges, component) for component in components]


def _cycle_in(edges: dict[str, list[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside it."""
    start = min(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for target in edges[module]:
            if target == start:
                path = [module]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*path[::-1], start]
            if target in component and target not in came_from:
                came_from[target] = module
                queue.append(target)
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def test_no_import_cycle_inside_splitkit() -> None:
    # Every import counts: at module level, inside a function, under TYPE_CHECKING.
    found = cycles(import_graph(ROOT, "splitkit"))
    assert not found, "import cycles:\n" + _explain(found)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"pkg/a.py": "import pkg.b\n", "pkg/b.py": "from pkg import a\n"},
            [["pkg.a", "pkg.b", "pkg.a"]],
        ),
        (  # through a function-level import and a relative one
            {
                "pkg/a.py": "def f():\n    from . import b\n",
                "pkg/b.py": "from .c import x\n",
                "pkg/c.py": "import typing\nif typing.TYPE_CHECKING:\n    import pkg.a\nx = 1\n",
            },
            [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]],
        ),
        ({"pkg/a.py": "import pkg.a\n"}, [["pkg.a", "pkg.a"]]),
        ({"pkg/a.py": "import pkg.b\n", "pkg/b.py": "import pkg.c\n", "pkg/c.py": ""}, []),
        ({"pkg/a.py": "from pkg import b, c\n", "pkg/b.py": "import pkg.c\n", "pkg/c.py": ""}, []),
    ],
)
def test_the_cycle_finder(tmp_path: Path, files: dict[str, str], expected: list[list[str]]) -> None:
    for name, text in {"pkg/__init__.py": "", **files}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert cycles(import_graph(tmp_path, "pkg")) == expected


# --- the layer check on a synthetic package -----------------------------------------------

TOY_LAYERS = [{"leaf"}, {"low", "other"}, {"high"}, {"pkg"}]


@pytest.mark.parametrize(
    ("source", "ok"),
    [
        ("from pkg import leaf\n", True),
        ("import pkg.low.a\n", True),
        ("from ..leaf import x\n", True),
        ("from pkg.high import h\n", False),  # up a layer
        ("def f():\n    from pkg.high import h\n", False),  # a local import counts too
        ("from pkg.other import o\n", False),  # a sibling not listed
        ("import pkg\n", False),  # the package face is on top
        ("from pkg.unknown import u\n", False),  # no place in the layers
    ],
)
def test_the_layer_check(tmp_path: Path, source: str, ok: bool) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/leaf.py": "x = 1\n",
        "pkg/low/__init__.py": "",
        "pkg/low/a.py": "",
        "pkg/low/mod.py": source,
        "pkg/other/__init__.py": "o = 1\n",
        "pkg/high/__init__.py": "h = 1\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    found = forbidden(import_graph(tmp_path, "pkg"), "pkg", TOY_LAYERS, set())
    assert (found == []) is ok, found
    if not ok:
        assert found[0].startswith("pkg.low.mod -> ")
