"""docs/architecture.md's module table matches the code: every module it names exists, and
every module of the three packages is named in it, once.

A row names modules by their whole path, or by a short name that lives in the folder of the
whole path before it in the same row (``voicecall/job/keys.py``, ``layout.py``); a folder
(``worker/esms/``) stands for every module under it.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("voicecall", "producer", "worker")


def _rows() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    start = text.index("## Where each part lives")
    section = text[start : text.index("\n## ", start + 1)]
    return [line.split(" | ")[0] for line in section.splitlines() if line.startswith("| `")]


def _named() -> list[str]:
    """Every name of the table's first column, as a path from the repository's root."""
    named: list[str] = []
    for row in _rows():
        folder = ""
        for name in re.findall(r"`([\w/.*-]+\.(?:py|lua)|[\w/-]+/)`", row):
            if "/" in name:  # a whole path, or a folder
                folder = name if name.endswith("/") else name.rsplit("/", 1)[0] + "/"
                named.append(name)
            else:
                assert folder, f"{name} comes before any whole path in its row: {row}"
                named.append(folder + name)
    return named


def _modules() -> list[str]:
    return [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py")
    ]


def test_every_module_the_table_names_exists() -> None:
    """Each name in the table is a file (or files, or a folder) of the tree."""
    missing = [name for name in _named() if not list(ROOT.glob(name))]
    assert missing == []


def test_every_module_is_in_the_table_once() -> None:
    """Each module of voicecall/, producer/ and worker/ is named in exactly one place."""
    named = _named()
    folders = [name for name in named if name.endswith("/")]
    unnamed = [
        module
        for module in _modules()
        if module not in named and not any(module.startswith(folder) for folder in folders)
    ]
    assert unnamed == []
    twice = [name for name, count in Counter(named).items() if count > 1]
    assert twice == []
