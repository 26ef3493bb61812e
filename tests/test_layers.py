"""The packages' layers, so that ``server`` and ``rest_shim`` never import each other in
a cycle. The rule, read from the source (every import statement at any depth, those
inside functions and ``if TYPE_CHECKING:`` included):

1. ``server.runner`` is the composition root (``python -m server --with-rest``): the
   only module of ``server`` that imports ``rest_shim``. It hands the HTTP faces what
   they call in the server's process, the in-process stub and the server's metrics.
2. ``rest_shim`` takes those as parameters (``create_app(settings, stub, ...)``, the
   stub typed by ``rest_shim.stub.LlmStub``) and imports of ``server`` only the shared
   leaf modules in ``SHARED``: settings, the error table, logs, version, validation
   rules, the event loop.
3. Those leaves, and whatever of ``server`` they import in turn, import neither
   ``rest_shim`` nor the composition root nor the server's assembly.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSITION_ROOT = "server.runner"
SHARED = frozenset(
    {
        "server.config",
        "server.errors",
        "server.eventloop",
        "server.logs",
        "server.validation",
        "server.version",
    }
)
# The server's own assembly: what only the composition root wires into the faces.
ASSEMBLY = frozenset({"server.app", "server.inprocess", "server.service", "server.metrics"})


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules("server") | _modules("rest_shim")


def _imported(name: str, path: Path) -> Iterator[str]:
    """The modules ``name`` imports: ``from a import b`` is ``a.b`` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    yield f"{base}.{alias.name}"


GRAPH = {name: set(_imported(name, path)) for name, path in MODULES.items()}


def _within(imports: set[str], package: str) -> set[str]:
    return {m for m in imports if m == package or m.startswith(package + ".")}


def _closure(start: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(m for m in GRAPH.get(name, ()) if m in MODULES)
    return seen


def test_the_graph_is_read() -> None:
    assert "rest_shim.app" in GRAPH[COMPOSITION_ROOT]
    assert "server.config" in GRAPH["rest_shim.app"]


def test_only_the_composition_root_imports_rest_shim() -> None:
    importers = {
        name
        for name, imports in GRAPH.items()
        if name.startswith("server") and _within(imports, "rest_shim")
    }
    assert importers == {COMPOSITION_ROOT}


def test_rest_shim_imports_only_the_shared_leaves_of_server() -> None:
    reached = {
        name: _within(imports, "server") - SHARED
        for name, imports in GRAPH.items()
        if name.startswith("rest_shim")
    }
    assert {name: extra for name, extra in reached.items() if extra} == {}


def test_the_shared_leaves_lead_back_to_neither_package_nor_assembly() -> None:
    closure = _closure(set(SHARED))
    assert not _within(closure, "rest_shim")
    assert not closure & (ASSEMBLY | {COMPOSITION_ROOT})
    for name in closure:
        assert not _within(GRAPH[name], "rest_shim"), name


def test_the_faces_load_without_the_server() -> None:
    """What the faces import at run time, in a fresh interpreter: none of the
    server's assembly, nor the composition root."""
    unwanted = sorted(ASSEMBLY | {COMPOSITION_ROOT})
    code = (
        "import sys, rest_shim.app, rest_shim.serving, rest_shim.__main__\n"
        f"print(sorted(set({unwanted!r}) & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
