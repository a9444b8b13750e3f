"""``/docs`` and ``/redoc`` ask nothing of any host but the API: checked on the files served
and in a real browser (Debian's chromium, Playwright), every request it makes recorded."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from producer import docs
from tests.fixtures.api import ApiServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# redoc 2.5.4's bundles/redoc.standalone.js from the npm registry (producer/docs_assets/README.md)
REDOC_SHA256 = "dcaf76612bc4a3fbcc923a8966dee2f6146a5f32e5ce1b6f02dd60cbbf89500b"


def test_the_vendored_redoc_is_npms_file_unchanged_with_its_licences() -> None:
    """The bundle is byte for byte the npm package's (its digest, also in the vendoring
    note), shipped with ReDoc's MIT licence and the bundled libraries' licences."""
    bundle = (docs.REDOC_ASSETS / docs.REDOC_BUNDLE).read_bytes()
    assert hashlib.sha256(bundle).hexdigest() == REDOC_SHA256
    assert REDOC_SHA256 in (docs.REDOC_ASSETS / "README.md").read_text()
    assert "The MIT License" in (docs.REDOC_ASSETS / "LICENSE").read_text()
    assert (docs.REDOC_ASSETS / "redoc.standalone.js.LICENSE.txt").stat().st_size > 0
    assert docs.CDN_LOGO in bundle  # what the served copy replaces


def test_docs_pages_link_only_the_apis_own_files(api_server: ApiServer) -> None:
    """Every script, style and icon of /docs and /redoc is a path of the API; the ReDoc
    bundle served names no CDN; Swagger UI gets no validator badge; the licences are served."""
    with api_server.client() as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            linked = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert linked and all(link.startswith("/") for link in linked), (page, linked)
            for link in linked:
                assert client.get(link).status_code == 200, link
        assert '"validatorUrl": null' in client.get("/docs").text
        bundle = client.get(f"{docs.REDOC_PREFIX}/{docs.REDOC_BUNDLE}")
        assert bundle.headers["content-type"].startswith("text/javascript")
        assert b"cdn.redoc.ly" not in bundle.content and docs.NO_LOGO in bundle.content
        assert b"fonts.googleapis" not in bundle.content
        assert "The MIT License" in client.get(f"{docs.REDOC_PREFIX}/LICENSE").text


@pytest.fixture()
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if shutil.which(CHROMIUM) is None:
        pytest.skip("needs Debian's chromium (make system-deps)")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.mark.parametrize(("page", "rendered"), [("/redoc", "text=API docs by Redocly"),
                                                ("/docs", ".opblock-summary")])  # fmt: skip
def test_a_browser_fetches_nothing_from_another_host(
    api_server: ApiServer, browser: object, page: str, rendered: str
) -> None:
    """Chromium renders the page (ReDoc's side menu with its logo, Swagger UI's operations):
    every request it made went to the API's host, the logo an inline image."""
    context = browser.new_context()  # type: ignore[attr-defined]
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    requested: list[str] = []
    tab.on("request", lambda request: requested.append(request.url))
    tab.goto(api_server.base_url + page)
    tab.wait_for_selector(rendered)
    tab.wait_for_load_state("networkidle")
    if page == "/redoc":
        logo = tab.wait_for_selector("img[alt='redocly logo']")
        assert logo.get_attribute("src").startswith("data:image/svg+xml")
    context.close()
    api_host = urlsplit(api_server.base_url).netloc
    in_page = ("data:", "blob:")  # inline images, ReDoc's worker: no request leaves the tab
    elsewhere = [url for url in requested if not url.startswith(in_page)
                 and urlsplit(url).netloc != api_host]  # fmt: skip
    assert elsewhere == []
    assert any(docs.REDOC_BUNDLE in url or "swagger-ui-bundle" in url for url in requested)
