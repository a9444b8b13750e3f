"""The console's pages in Chromium (issue 23, point 12), one browser and one API for the
module: times shown in TIMEZONE (and the browser's zone on request), paging past 200, a bulk
cancel of a campaign, a job page updating by itself, no horizontal page overflow at 800 and
390 px, dark mode, and axe-core (vendored in tests/assets/axe-core) finding no serious or
critical violation on any page, light or dark."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.fixtures.api import ApiServer, running
from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS
from tests.fixtures.redis import RedisServer

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
AXE = Path(__file__).parent / "assets" / "axe-core" / "axe.min.js"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")  # TIMEZONE's default

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="needs Debian's chromium (make system-deps)"
)


@dataclass
class Console:
    api: ApiServer
    http: httpx.Client
    browser: playwright_api.Browser
    page: playwright_api.Page  # logged in, 1280 px wide, in New York's zone
    due: datetime  # the local time (TIMEZONE) the seeded calls are due at
    job_id: str  # a scheduled call of campaign "tet"

    @property
    def base(self) -> str:
        return self.api.base_url


def _seed(http: httpx.Client, campaign: str, count: int, send_at: str) -> list[str]:
    calls = [
        {"kind": "record_call", "phone": f"0902{i:06d}", "record_id": "r1", "send_at": send_at}
        for i in range(count)
    ]
    answer = http.post("/v1/calls/batch", json={"calls": calls, "campaign": campaign})
    assert answer.status_code == 200, answer.text
    return [result["job"]["id"] for result in answer.json()["results"]]


@pytest.fixture(scope="module")
def console(redis_server: RedisServer) -> Iterator[Console]:
    redis_server.client().flushdb()
    day = datetime.now(ZONE).date() + timedelta(days=2)
    due = datetime(day.year, day.month, day.day, 9, 0)
    with (
        running(redis_server.url) as api,
        api.client() as http,
        playwright_api.sync_playwright() as p,
    ):
        _seed(http, "wave", 213, due.isoformat())
        tet = _seed(http, "tet", 30, due.isoformat())
        _seed(http, "live", 2, due.isoformat())
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, timezone_id="America/New_York"
        )
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{api.base_url}/console/login")
        page.get_by_label("API token").fill(api.token)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
        yield Console(api, http, browser, page, due, tet[0])
        browser.close()


def test_times_show_in_the_zone_with_iso_on_hover_and_the_browsers_zone_on_request(
    console: Console,
) -> None:
    """Times read in TIMEZONE with the zone shown and the full ISO time on hover; the toggle shows the browser's zone."""
    page = console.page
    page.goto(f"{console.base}/console/scheduled?label=campaign:wave")
    first_due = page.locator("table.jobs tbody tr").first.locator("time").nth(1)
    iso = console.due.replace(tzinfo=ZONE).isoformat()
    expect(first_due).to_have_text(f"{console.due:%d %b} 09:00:00 UTC+07")
    expect(first_due).to_have_attribute("title", iso)
    page.get_by_role("button", name="Times: Asia/Ho_Chi_Minh").click()
    in_new_york = console.due.replace(tzinfo=ZONE).astimezone(ZoneInfo("America/New_York"))
    expect(first_due).to_have_text(f"{in_new_york:%d %b %H:%M:%S} {in_new_york:%Z}")
    page.reload()  # the choice is remembered
    expect(first_due).to_contain_text(in_new_york.strftime("%H:%M:%S"))
    page.get_by_role("button", name="Times: browser (America/New_York)").click()
    expect(first_due).to_contain_text("UTC+07")
    # The filters take local times from date-time pickers.
    page.goto(f"{console.base}/console/calls")
    assert page.get_attribute("#f-due_from", "type") == "datetime-local"
    page.fill("#f-due_from", console.due.strftime("%Y-%m-%dT%H:%M:%S"))
    page.fill("#f-due_to", console.due.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#list-total").first).to_contain_text("of 245")


def test_paging_goes_past_200_with_a_true_total(console: Console) -> None:
    """The Scheduled list shows the true total past 200 and pages forward and back."""
    page = console.page
    page.goto(f"{console.base}/console/scheduled?label=campaign:wave")
    total = page.locator("#list-total").first
    expect(total).to_have_text("Jobs 1–50 of 213")
    for last in (100, 150, 200):
        page.get_by_role("link", name="Next page").first.click()
        expect(total).to_have_text(f"Jobs {last - 49}–{last} of 213")
    page.get_by_role("link", name="Next page").first.click()
    expect(total).to_have_text("Jobs 201–213 of 213")
    expect(page.locator("table.jobs tbody tr")).to_have_count(13)
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="Previous page").first.click()
    expect(total).to_have_text("Jobs 151–200 of 213")


def test_a_job_page_updates_by_itself_and_can_be_paused(console: Console) -> None:
    """An unfinished job's page updates without a reload, and stops while paused."""
    page = console.page
    live = console.http.get("/v1/calls", params={"label": "campaign:live"}).json()["data"]
    first, second = (job["id"] for job in live)
    page.goto(f"{console.base}/console/calls/{first}")
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#job-state")).to_have_text("scheduled")
    assert console.http.delete(f"/v1/calls/{first}").status_code == 200
    expect(page.locator("#job-state")).to_have_text("cancelled")
    expect(page.locator("#job-finished time")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True  # it updated in place
    page.goto(f"{console.base}/console/calls/{second}")
    page.get_by_role("button", name="Pause updates").click()
    expect(page.get_by_role("button", name="Resume updates")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert console.http.delete(f"/v1/calls/{second}").status_code == 200
    page.wait_for_timeout(4000)  # longer than a refresh period: a paused page stays as it was
    expect(page.locator("#job-state")).to_have_text("scheduled")
    page.get_by_role("button", name="Resume updates").click()
    expect(page.locator("#job-state")).to_have_text("cancelled")


def test_a_bulk_cancel_of_a_campaign(console: Console) -> None:
    """A campaign's bulk cancel in the browser: one confirmation stating the count, then the progress page shows them cancelled."""
    page = console.page
    page.goto(f"{console.base}/console/campaign?name=tet")
    page.get_by_role("link", name="Cancel its 30 scheduled calls…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel 30 scheduled calls?")
    page.get_by_role("button", name="Yes, cancel 30 calls").click()
    expect(page.locator("#bulk-state")).to_have_text("done")  # the progress page follows it
    expect(page.locator("#bulk-changed")).to_have_text("30")
    job = console.http.get(f"/v1/calls/{console.job_id}").json()
    assert job["state"] == "cancelled"
    page.goto(f"{console.base}/console/campaign?name=tet")
    expect(page.get_by_role("link", name="Cancel its 30 scheduled calls…")).to_have_count(0)


def _pages(console: Console, narrow: str = "") -> list[str]:
    """Every kind of console page (``narrow``: a query for the lists of jobs)."""
    return [
        "/console/",
        "/console/calls" + narrow,
        "/console/scheduled" + narrow,
        "/console/campaigns",
        "/console/campaign?name=wave",
        "/console/dead",
        f"/console/calls/{console.job_id}",
        f"/console/calls/{console.job_id}/cancel",
        "/console/bulk/cancel?label=campaign:wave",
        "/console/charts",
    ]


@pytest.mark.parametrize("width", [800, 390])
def test_no_page_overflows_at_800_or_390_px(console: Console, width: int) -> None:
    """No console page is wider than the window at 800 and 390 px (tables scroll in their own box)."""
    page = console.page
    page.set_viewport_size({"width": width, "height": 900})
    try:
        wide = {}
        for path in _pages(console):
            page.goto(console.base + path)
            scroll, inner = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            if scroll > inner:
                wide[path] = scroll
        assert wide == {}, f"wider than {width} px: {wide}"
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_dark_mode_follows_the_system(console: Console) -> None:
    """With prefers-color-scheme: dark the console's background is the dark palette's, and
    light again with light."""
    page = console.page
    page.goto(f"{console.base}/console/")
    background = "getComputedStyle(document.body).backgroundColor"
    page.emulate_media(color_scheme="dark")
    assert page.evaluate(background) == "rgb(13, 17, 23)"
    page.emulate_media(color_scheme="light")
    assert page.evaluate(background) == "rgb(255, 255, 255)"


def _serious(page: playwright_api.Page, rules: list[str] | None = None) -> list[str]:
    """axe's serious and critical violations on the page (with ``rules``: only those)."""
    page.add_script_tag(path=str(AXE))
    options = {"resultTypes": ["violations"]}
    if rules:
        options["runOnly"] = rules  # type: ignore[assignment]
    found = page.evaluate(
        f"axe.run(document, {json.dumps(options)}).then(r => r.violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', ')))"
    )
    return [str(item) for item in found]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_on_any_page(console: Console, scheme: str) -> None:
    """In a context of its own that lets Playwright inject axe (the console's CSP allows no
    inline script), logged in with the same token. Lists are narrowed to a few rows (the
    same markup, less for axe to walk); dark mode changes colours only, so it is checked
    for colour contrast."""
    rules = ["color-contrast"] if scheme == "dark" else None
    context = console.browser.new_context(bypass_csp=True, color_scheme=scheme)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{console.base}/console/login")
        problems = {}
        if found := _serious(page, rules):
            problems["/console/login"] = found
        page.get_by_label("API token").fill(console.api.token)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
        for path in _pages(console, narrow="?label=campaign:live"):
            page.goto(console.base + path)
            if found := _serious(page, rules):
                problems[path] = found
        assert problems == {}, json.dumps(problems, indent=1)
    finally:
        context.close()
