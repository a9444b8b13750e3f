"""Take the README's screenshot of the console (``make console-screenshot``): start the demo
stack (``voicecall demo --serve``), log in to the console in Debian's chromium, save the
overview as a PNG, stop the demo. Usage: scripts/console_screenshot.py OUT.png"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def main(out: Path) -> int:
    demo = subprocess.Popen(
        [sys.executable, "-m", "voicecall.cli", "demo", "--serve"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert demo.stdout is not None
    try:
        console = token = None
        for line in demo.stdout:
            if found := re.search(r"console:\s+(\S+)", line):
                console = found.group(1)
            if found := re.search(r"token:\s+(\S+)", line):
                token = found.group(1)
            if "running until Ctrl-C" in line:
                break
        if not (console and token):
            print("the demo did not come up", file=sys.stderr)
            return 1
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(console)
            page.get_by_label("API token").fill(token)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
            page.screenshot(path=str(out), full_page=True)
            browser.close()
        print(f"saved {out}")
        return 0
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console.png")))
