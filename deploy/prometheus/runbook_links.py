"""Alert rules with runbook links under your own base URL: ``make alerts``.

Every alert of ``alerts.yml`` carries ``runbook_url: "<base>#<section>"``, an absolute link to
a section of ``docs/runbook.md``. The committed file uses :data:`DEFAULT_BASE_URL`, the runbook
in the project's repository, and the promtool unit tests (``alerts_test.yml``, ``alerts_long_test.yml``) expect it. To
send on-call engineers to your own copy (a fork, an internal mirror), render the rules with
``RUNBOOK_BASE_URL`` and load the rendered file into Prometheus instead::

    RUNBOOK_BASE_URL=https://git.example.com/ops/voicecall/-/blob/main/docs/runbook.md \\
        python deploy/prometheus/runbook_links.py --out build/prometheus/alerts.yml

Only the ``runbook_url`` lines change; everything else, comments included, is copied as is.
``--check`` exits 1 unless every alert of the committed file links ``DEFAULT_BASE_URL#...``.
A bad base URL stops with one line naming ``RUNBOOK_BASE_URL`` and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

RULES = Path(__file__).resolve().parent / "alerts.yml"
DEFAULT_BASE_URL = "https://github.com/voicecall/voicecall/blob/main/docs/runbook.md"
ENV = "RUNBOOK_BASE_URL"
_LINK = re.compile(r'^(?P<key>\s*runbook_url:\s*)"(?P<base>[^"#]*)#(?P<anchor>[^"]+)"\s*$')
_ALERT = re.compile(r"^\s*- alert:\s*(?P<name>\S+)")
_BASE = re.compile(r"^https?://[^\s\"#]+$")


def render(text: str, base_url: str) -> str:
    """``text`` with the base of every runbook_url replaced by ``base_url``."""
    lines = [
        _LINK.sub(lambda m: f'{m["key"]}"{base_url}#{m["anchor"]}"', line)
        for line in text.splitlines()
    ]
    return "\n".join(lines) + "\n"


def problems(text: str, base_url: str) -> list[str]:
    """Alerts of ``text`` whose runbook_url is missing, or is not ``base_url#anchor``."""
    linked: dict[str, str] = {}
    alert = ""
    for line in text.splitlines():
        if named := _ALERT.match(line):
            alert = named["name"]
            linked[alert] = ""
        elif alert and "runbook_url:" in line:
            match = _LINK.match(line)
            linked[alert] = f"{match['base']}#{match['anchor']}" if match else line.strip()
    return [
        f"{name}: runbook_url {url!r}"
        for name, url in linked.items()
        if not url.startswith(f"{base_url}#") or url == f"{base_url}#"
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, help="where to write the rendered rules (default: stdout)"
    )
    parser.add_argument(
        "--check", action="store_true", help=f"check that alerts.yml links {DEFAULT_BASE_URL}"
    )
    args = parser.parse_args(argv)
    text = RULES.read_text()
    if args.check:
        stale = problems(text, DEFAULT_BASE_URL)
        for line in stale:
            print(f"runbook_links: {line}", file=sys.stderr)
        return 1 if stale else 0
    base_url = (os.environ.get(ENV) or DEFAULT_BASE_URL).rstrip("/")
    if not _BASE.match(base_url):
        print(
            f"runbook_links: {ENV} must be an absolute http(s) URL without '#' or spaces, "
            f"got {base_url!r}",
            file=sys.stderr,
        )
        return 2
    rendered = render(text, base_url)
    stale = problems(rendered, base_url)
    if stale:  # an alert without a link, or one this script could not rewrite
        for line in stale:
            print(f"runbook_links: {line}", file=sys.stderr)
        return 1
    if args.out is None:
        sys.stdout.write(rendered)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(rendered)
        print(f"wrote {args.out} (runbook links under {base_url})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
