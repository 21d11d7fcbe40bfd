"""Browser fixtures: one headless Debian chromium per test module (Playwright's own browser
download is never used), a fresh context (cookies, localStorage) and page per test, and the
JavaScript errors each page raised, which fail the test that caused them."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def chromium_path() -> str | None:
    if CHROMIUM.is_file():
        return str(CHROMIUM)
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -r requirements-dev.txt)")
    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium is not installed (make browser)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught exceptions and unhandled rejections of the test's pages."""
    return []


@pytest.fixture
def page(browser: Any, live_server: Any, page_errors: list[str]) -> Iterator[Any]:
    """A page in its own context on `live_server` (which outlives it: the server is torn down
    after the page is closed). Relative URLs in `page.goto` resolve against the server."""
    yield from page_on(browser, live_server.url, page_errors)


def page_on(browser: Any, url: str, page_errors: list[str]) -> Iterator[Any]:
    """A page in its own context whose relative URLs resolve against `url`; closed after the
    test, which fails on any JavaScript error the page raised."""
    context = browser.new_context(viewport=VIEWPORT, base_url=url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("pageerror", lambda error: page_errors.append(f"{page.url}: {error}"))
    yield page
    context.close()
    assert not page_errors, f"JavaScript errors in the page: {page_errors}"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
