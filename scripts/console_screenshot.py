"""Take the README's screenshots of the console (``make console-screenshot``): start the demo
stack (``voicecall demo --serve``), log in to the console in Debian's chromium, save the
overview as OUT.png and, beside it, a job's page (console-job.png), a campaign's page
(console-campaign.png) and the narrow layout of the calls list at 390 px
(console-narrow.png); stop the demo. Usage: scripts/console_screenshot.py OUT.png"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

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
            _campaign(console, token)
            page.reload()
            page.screenshot(path=str(out), full_page=True)
            _more(page, console, out)
            browser.close()
        print(f"saved {out} and the pages beside it")
        return 0
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=60)


def _campaign(console: str, token: str) -> None:
    """A small campaign for its page (the demo makes none): 16 calls now, 6 tomorrow."""
    base = console.split("/console")[0]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    calls = [
        {"kind": "record_call", "phone": f"09050{i:05d}", "record_id": "rec-welcome",
         **({"send_at": tomorrow} if i >= 16 else {})}
        for i in range(22)
    ]  # fmt: skip
    answer = httpx.post(
        f"{base}/v1/calls/batch",
        json={"calls": calls, "campaign": "spring-reminders"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    answer.raise_for_status()
    time.sleep(15)  # the simulator answers most of them meanwhile


def _more(page: Page, console: str, out: Path) -> None:
    """A job's page, a campaign's page, and the calls list in a phone-sized window."""
    page.goto(console.rstrip("/") + "/calls?state=completed")
    page.locator("table.jobs tbody a").first.click()
    expect(page.locator("#job-state")).to_be_visible()
    page.screenshot(path=str(out.with_name("console-job.png")), full_page=True)
    page.goto(console.rstrip("/") + "/campaigns")
    page.locator("table tbody a").first.click()
    expect(page.locator("#chart-campaign")).to_be_visible()
    page.screenshot(path=str(out.with_name("console-campaign.png")), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(console.rstrip("/") + "/calls")
    page.screenshot(path=str(out.with_name("console-narrow.png")), full_page=True)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console.png")))
