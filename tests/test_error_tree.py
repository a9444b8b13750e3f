"""The one error tree: every exception class of voicecall/, producer/ and worker/ derives from
``VoicecallError`` and stands in the drawing of voicecall.errors' docstring, under its real
parent with its other bases named, and the drawing names no class that is not there.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

import voicecall.errors
from voicecall.errors import VoicecallError

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("voicecall", "producer", "worker")
# Exception classes that must derive from something else than VoicecallError, with the reason.
# (Empty: add one only for a class a framework makes us derive from its own base.)
ALLOWED_OUTSIDE: dict[str, str] = {}
# One drawn node: tree characters, the class name, other bases in parentheses, then two
# spaces before its description (or nothing). Any other line goes on describing a node.
_NODE = re.compile(r"^(?P<lead>[│├└─ ]*)(?P<name>_?[A-Z]\w*)(?: \((?P<also>[\w, ]+)\))?(?:  |$)")
_MODULE = re.compile(r"\[([\w.]+)\]")


@dataclass(frozen=True)
class Node:
    name: str
    module: str
    parent: tuple[str, str] | None  # (module, name)
    also: frozenset[str]


def _modules() -> list[ModuleType]:
    """Every module of PACKAGES that defines a class. Those that define none are not
    imported: an entry point such as worker.main sets up a process when imported."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            if any(isinstance(node, ast.ClassDef) for node in tree.body):
                parts = path.relative_to(ROOT).with_suffix("").parts
                name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
                found.append(importlib.import_module(name))
    return found


def _exception_classes() -> list[type[BaseException]]:
    classes = {
        (obj.__module__, obj.__qualname__): obj
        for module in _modules()
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == module.__name__
    }
    return [classes[key] for key in sorted(classes)]


def _drawing() -> list[str]:
    doc = voicecall.errors.__doc__ or ""
    block = doc.split("::\n", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return lines


def _nodes() -> dict[tuple[str, str], Node]:
    """The drawing's classes by (module, name). A line that is no node goes on describing
    the node before it; a ``[module]`` in a node's text applies to its whole branch."""
    drawn: list[tuple[int, str, frozenset[str], str]] = []  # depth, name, also, text
    for line in _drawing():
        match = _NODE.match(line)
        if match:
            also = frozenset(a.strip() for a in (match["also"] or "").split(",") if a.strip())
            drawn.append((len(match["lead"]) // 4, match["name"], also, line))
        elif drawn:
            depth, name, also, text = drawn[-1]
            drawn[-1] = (depth, name, also, text + line)
    nodes: dict[tuple[str, str], Node] = {}
    path: list[tuple[str, str]] = []  # (module, name) of the node at each depth
    for depth, name, also, text in drawn:
        del path[depth:]
        parent = path[-1] if path else None
        moved = _MODULE.search(text)
        module = moved[1] if moved else parent[0] if parent else "voicecall.errors"
        nodes[(module, name)] = Node(name, module, parent, also)
        path.append((module, name))
    return nodes


def _tree_parent(cls: type[BaseException]) -> type[BaseException] | None:
    """The first base that is a VoicecallError: the class's parent in the drawing."""
    return next((b for b in cls.__bases__ if issubclass(b, VoicecallError)), None)


def test_the_drawing_is_read() -> None:
    """The parser reads the drawing's shape: a few known nodes, parents and modules."""
    nodes = _nodes()
    assert nodes[("voicecall.errors", "VoicecallError")].parent is None
    assert nodes[("voicecall.errors", "JobNotFound")].also == {"LookupError"}
    assert nodes[("voicecall.errors", "JobNotFound")].parent == ("voicecall.errors", "StoreError")
    assert nodes[("worker.esms.errors", "InsufficientBalance")].parent == (
        "worker.esms.errors",
        "RetryableError",
    )
    assert ("producer.errors", "ApiError") in nodes
    assert ("voicecall.client.errors", "ApiError") in nodes
    assert len(nodes) > 40


def test_every_exception_class_derives_from_voicecall_error() -> None:
    """An exception class defined in the packages is a VoicecallError (or allowed, with a
    reason)."""
    outside = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _exception_classes()
        if not issubclass(cls, VoicecallError)
        and f"{cls.__module__}.{cls.__qualname__}" not in ALLOWED_OUTSIDE
    ]
    assert outside == []


def test_every_exception_class_is_drawn_under_its_parent() -> None:
    """Each VoicecallError class is in the drawing, under its real parent, with its other
    bases named in parentheses."""
    nodes = _nodes()
    wrong = []
    for cls in _exception_classes():
        if not issubclass(cls, VoicecallError):
            continue
        node = nodes.get((cls.__module__, cls.__name__))
        if node is None:
            wrong.append(f"{cls.__module__}.{cls.__name__} is not drawn")
            continue
        parent = _tree_parent(cls)
        expected = (parent.__module__, parent.__name__) if parent else None
        others = {b.__name__ for b in cls.__bases__ if b is not parent}
        if cls is VoicecallError:
            others = set()  # the root, drawn alone
        if node.parent != expected or node.also != others:
            wrong.append(f"{cls.__name__}: drawn {node.parent} {set(node.also)}")
            wrong[-1] += f", is {expected} {others}"
    assert wrong == []


def test_the_drawing_names_only_real_classes() -> None:
    """Every drawn class exists where the drawing says, and is a VoicecallError."""
    for module_name, name in _nodes():
        cls = getattr(importlib.import_module(module_name), name, None)
        assert inspect.isclass(cls) and issubclass(cls, VoicecallError), (module_name, name)


@pytest.mark.parametrize("code", [101, 103, 105, 143, 160, 999])
def test_an_esms_error_carries_its_code(code: int) -> None:
    """Every error built for an eSMS result code carries it as ``.code``; errors without
    one (refused before a request, failed on the way) carry None."""
    from worker.esms.errors import InvalidParameter, TransportError, error_for_code

    assert error_for_code(code).code == code
    assert InvalidParameter("Phone", "is required").code is None
    assert TransportError("boom", reason="timeout").code is None
