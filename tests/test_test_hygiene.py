"""The test suite's own rules (issue 19, point 8), read from its sources with ``ast``:

- every test function (``def test_*`` or ``async def test_*``, at any depth) has a docstring
  saying what behaviour it asserts;
- no module under tests/ imports a test module: shared helpers live in tests/fixtures/ or in
  conftest.py, so a test file can be run, moved or deleted on its own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(TESTS.rglob("*.py")):
        yield str(path.relative_to(TESTS.parent)), ast.parse(path.read_text(), str(path))


def _is_test_module(dotted: str) -> bool:
    return dotted.rpartition(".")[2].startswith("test_")


def _imported_test_modules(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module) for each import that names a test module, absolute or relative."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_test_module(alias.name):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            if node.module and _is_test_module(node.module):
                yield node.lineno, base
                continue
            for alias in node.names:  # `from tests import test_x`, `from . import test_x`
                if _is_test_module(alias.name):
                    yield node.lineno, f"{base}.{alias.name}" if node.module else base + alias.name


def _undocumented_tests(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, name) of each test function, at any depth, without a docstring."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")
            and not (ast.get_docstring(node) or "").strip()
        ):
            yield node.lineno, node.name


def test_every_test_function_has_a_docstring() -> None:
    """Each ``def test_*`` and ``async def test_*`` under tests/ starts with a docstring."""
    missing = [
        f"{name}:{line} {function}"
        for name, tree in _modules()
        for line, function in _undocumented_tests(tree)
    ]
    assert missing == []


def test_no_module_imports_a_test_module() -> None:
    """No file under tests/ (test modules, fixtures, conftest) imports a ``test_*`` module."""
    found = [
        f"{name}:{line} imports {module}"
        for name, tree in _modules()
        for line, module in _imported_test_modules(tree)
    ]
    assert found == []


def test_the_checks_catch_each_form_they_forbid() -> None:
    """The two checks above flag every import form of a test module and every kind of test
    function without a docstring, and nothing else: their passing means something."""
    imports = {
        "from tests.test_console import login": True,
        "import tests.test_console": True,
        "import tests.test_console as console": True,
        "from tests import test_console": True,
        "from .test_console import login": True,
        "from . import test_console": True,
        "from tests.fixtures.console import login": False,
        "from tests.fixtures import steps": False,
        "import pytest": False,
    }
    found = {source: any(_imported_test_modules(ast.parse(source))) for source in imports}
    assert found == imports
    source = """
def test_bare(): pass
async def test_async_bare(): pass
def test_blank():
    \"\"\" \"\"\"
class TestGroup:
    def test_method(self): pass
def test_documented():
    \"\"\"It asserts something.\"\"\"
    async def test_nested(): pass
def helper(): pass
"""
    assert {name for _, name in _undocumented_tests(ast.parse(source))} == {
        "test_bare", "test_async_bare", "test_blank", "test_method", "test_nested",
    }  # fmt: skip


def test_no_tracked_file_holds_a_merge_conflict_marker() -> None:
    """No file git tracks keeps a line a merge left behind (``<<<<<<< `` or ``>>>>>>> ``)."""
    import subprocess

    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    marked = []
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # binary
        if any(line.startswith(("<<<<<<< ", ">>>>>>> ")) for line in text.splitlines()):
            marked.append(name)
    assert marked == []
