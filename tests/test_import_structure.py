"""The tree's import structure: no circle, no back-arrow, the core's layers in their order,
no module over 400 lines, and a light ``import voicecall``.

Read from the sources with ``ast``: every import counts, those inside functions and under
``if TYPE_CHECKING:`` too. ``python -m tests.test_import_structure`` prints the figures (modules
per folder, layers, the largest modules).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("voicecall", "producer", "worker", "simulator")
# The core's parts, each importing only those before it (voicecall/__init__.py says why).
CORE_LAYERS = (
    "voicecall.errors",
    "voicecall.formats",
    "voicecall.webhooks",
    "voicecall.config",
    "voicecall.job",
    "voicecall.telemetry",
    "voicecall.store",
    "voicecall.esms",
    "voicecall.client",
    "voicecall.cli",
)
# Which package may import which (a back-arrow is any other import between them).
MAY_IMPORT = {
    "voicecall": {"voicecall"},
    "producer": {"producer", "voicecall"},
    "worker": {"worker", "voicecall"},
    "simulator": {"simulator", "voicecall"},
}
MAX_LINES = 400
# Over MAX_LINES until the change named: each entry goes when that change lands.
LONG_FOR_NOW: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }


def _imported(path: Path, module: str) -> Iterator[str]:
    """The project modules ``path`` imports, wherever the import stands."""
    modules = _modules()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


@cache
def _graph() -> dict[str, frozenset[str]]:
    return {
        module: frozenset(_imported(path, module)) for module, path in sorted(_modules().items())
    }


def _circles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected sets of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    sys.setrecursionlimit(10_000)
    for node in graph:
        if node not in index:
            visit(node)
    return found


def _layer(module: str) -> int | None:
    for number, layer in enumerate(CORE_LAYERS):
        if module == layer or module.startswith(layer + "."):
            return number
    return None


def test_no_import_goes_in_a_circle() -> None:
    """No two modules of the tree import each other, directly or round a loop."""
    assert _circles(_graph()) == []


def test_no_back_arrow_between_packages() -> None:
    """The core imports none of producer, worker and simulator; those never import each other."""
    wrong = [
        f"{module} -> {name}"
        for module, names in _graph().items()
        for name in names
        if name.split(".")[0] not in MAY_IMPORT[module.split(".")[0]]
    ]
    assert wrong == []


def test_the_core_parts_import_only_those_before_them() -> None:
    """Within voicecall/, each part imports only the parts listed before it (CORE_LAYERS)."""
    unplaced = [m for m in _graph() if m.startswith("voicecall.") and _layer(m) is None]
    assert unplaced == []
    layer = {m: _layer(m) for m in _graph() if m.startswith("voicecall.")}
    upward = [
        f"{module} -> {name}"
        for module, names in _graph().items()
        if module.startswith("voicecall.")
        for name in names
        if name.startswith("voicecall.") and (layer[name] or 0) > (layer[module] or 0)
    ]
    assert upward == []


def test_no_module_is_over_the_line_limit() -> None:
    """No module of voicecall/, producer/ or worker/ exceeds MAX_LINES, but those waiting for a
    named change; and each of those still needs its exception."""
    long = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for package in ("voicecall", "producer", "worker")
        for path in (ROOT / package).rglob("*.py")
    }
    over = {path for path, lines in long.items() if lines > MAX_LINES}
    assert over - set(LONG_FOR_NOW) == set()
    assert set(LONG_FOR_NOW) - over == set()  # an exception no longer needed goes


def test_importing_voicecall_loads_nothing_else() -> None:
    """``import voicecall`` loads none of redis, dramatiq, fastapi, httpx or pydantic."""
    code = (
        "import sys, voicecall\n"
        "print(sorted(m for m in ('redis', 'dramatiq', 'fastapi', 'httpx', 'pydantic')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert (result.returncode, result.stdout) == (0, "[]\n"), result.stderr


def _floors(graph: dict[str, frozenset[str]]) -> dict[str, int]:
    """Each module's floor: 1 + the highest floor it imports (1: it imports no module)."""
    floors: dict[str, int] = {}

    def floor(module: str) -> int:
        if module not in floors:
            floors[module] = 0  # a circle would stop here (the test above refuses them)
            floors[module] = 1 + max((floor(n) for n in graph[module]), default=0)
        return floors[module]

    for module in graph:
        floor(module)
    return floors


def main() -> None:
    """Print the figures: modules per folder, floors, circles, back-arrows, largest modules."""
    graph = _graph()
    folders = Counter(str(path.parent.relative_to(ROOT)) for path in _modules().values())
    print("modules per folder:")
    for folder, count in sorted(folders.items()):
        print(f"  {folder}/  {count}")
    floors = _floors(graph)
    for package in PACKAGES:
        inside = {m: {n for n in graph[m] if n.split(".")[0] == package} for m in graph}
        mine = {m: frozenset(ns) for m, ns in inside.items() if m.split(".")[0] == package}
        print(f"floors inside {package}/: {max(_floors(mine).values())}")
    print(f"floors of the whole tree: {max(floors.values())}")
    parts = {
        CORE_LAYERS[n]: frozenset(
            CORE_LAYERS[k]
            for m in graph
            if _layer(m) == n
            for k in {_layer(x) for x in graph[m]} - {None, n}
            if k is not None
        )
        for n in range(len(CORE_LAYERS))
    }
    print(f"floors of the core's parts (voicecall/ by subpackage): {max(_floors(parts).values())}")
    print(f"circles: {_circles(graph)}")
    back = [
        (m, n) for m, ns in graph.items() for n in ns
        if n.split(".")[0] not in MAY_IMPORT[m.split(".")[0]]
    ]  # fmt: skip
    print(f"back-arrows: {back}")
    sizes = sorted(
        ((len(p.read_text().splitlines()), str(p.relative_to(ROOT))) for p in _modules().values()),
        reverse=True,
    )
    print("largest modules:")
    for lines, path in sizes[:12]:
        print(f"  {lines:5d}  {path}")


if __name__ == "__main__":
    main()
