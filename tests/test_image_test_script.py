"""scripts/image_test.py (`make image-test`): the parts that depend on the machine it runs on.

The script itself builds and runs the image (it is run by `.ci/run` after `make test`); these
tests pin how it hands this machine's pip settings to the build and finds the apt mirror.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_test", ROOT / "scripts" / "image_test.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _answer(stdout: str) -> Any:
    return lambda command, **_: subprocess.CompletedProcess(command, 0, stdout, "")


def test_pip_settings_reach_the_build_as_read_only_mounts(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pip config list` becomes /etc/pip.conf (PIP_* variables in [global], over the files); each local path it names is mounted, a file:// index with the directory holding it."""
    wheels, index = tmp_path / "wheels", tmp_path / "mirror" / "simple"
    wheels.mkdir()
    index.mkdir(parents=True)
    listing = (
        f":env:.find-links='{wheels}'\n"
        "global.find-links='/overridden/by/PIP_FIND_LINKS'\n"
        "global.index-url='https://pypi.example/simple'\n"
        f"global.extra-index-url='file://{index} file:///nowhere/simple'\n"
        "install.no-binary=':none:'\n"
    )
    monkeypatch.setattr(script, "run", _answer(listing))
    work = tmp_path / "work"
    work.mkdir()
    mounts = dict(script.pip_mounts(work))
    assert (work / "pip.conf").read_text() == (
        "[global]\n"
        f"find-links = {wheels}\n"
        "index-url = https://pypi.example/simple\n"
        f"extra-index-url = file://{index} file:///nowhere/simple\n"
        "[install]\n"
        "no-binary = :none:\n"
    )
    expected = {str(work / "pip.conf"): "/etc/pip.conf", str(wheels): str(wheels)}
    expected[str(index.parent)] = str(index.parent)
    if Path(script.CA_BUNDLE).exists():
        expected[script.CA_BUNDLE] = script.CA_BUNDLE
    assert mounts == expected


def test_the_base_image_uses_the_apt_mirror_of_this_machine(
    script: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """debootstrap gets the Repo-URI of apt's bookworm index, not the security archive."""
    indextargets = (
        "MetaKey: main/binary-amd64/Packages\nCodename: bookworm-security\n"
        "Repo-URI: http://security.example/debian-security/\n\n"
        "MetaKey: main/binary-amd64/Packages\nCodename: bookworm\n"
        "Repo-URI: http://mirror.example/debian/\n"
    )
    monkeypatch.setattr(script, "run", _answer(indextargets))
    assert script.apt_mirror() == "http://mirror.example/debian/"
