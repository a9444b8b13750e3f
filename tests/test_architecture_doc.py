"""docs/architecture.md's module table matches the code: every module it names exists, and
every module of the three packages is named in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("voicecall", "producer", "worker")


def _module_table() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text()
    start = text.index("## Where each part lives")
    section = text[start : text.index("\n## ", start + 1)]
    return "\n".join(line for line in section.splitlines() if line.startswith("| `"))


def _named(table: str) -> set[str]:
    return set(re.findall(r"`([\w/.*-]+\.(?:py|lua)|[\w/-]+/)`", table))


def test_every_module_the_table_names_exists() -> None:
    table = _module_table()
    missing = []
    for name in _named(table):
        if "/" not in name.rstrip("/"):  # a short name in a row that starts with its package
            continue
        if not list(ROOT.glob(name)):
            missing.append(name)
    assert missing == []


def test_every_module_is_in_the_table() -> None:
    table = _module_table()
    named = _named(table)
    basenames = {Path(name).name for name in named}
    folders = {name for name in named if name.endswith("/")}
    unnamed = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py")
        and str(path.relative_to(ROOT)) not in named
        and path.name not in basenames
        and not any(str(path.relative_to(ROOT)).startswith(folder) for folder in folders)
    ]
    assert unnamed == []
