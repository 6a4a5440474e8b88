"""Fixtures for real-browser tests: the app with the demo data served by waitress on 127.0.0.1, and
Debian's Chromium driven by Playwright (no browser download), every non-local request blocked.

Needs ``/usr/bin/chromium`` (Debian package ``chromium``; CJK glyphs from ``fonts-noto-cjk``) and
``tests/browser/node_modules/axe-core`` (``npm ci`` in ``tests/browser``): ``.ci/browser.sh``
installs all three. A missing piece fails the tests with that instruction; they never skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.browser.harness import build_demo_app, close_app, open_page, serve

HERE = Path(__file__).parent
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path(os.environ.get("ACCESSPLAN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
#: Where the screenshots a person can look at are written: ``build/screenshots`` (not committed) unless
#: ``ACCESSPLAN_SCREENSHOT_DIR`` says otherwise; the committed set in ``docs/screenshots`` is refreshed with
#: ``ACCESSPLAN_SCREENSHOT_DIR=docs/screenshots make test``.
SCREENSHOT_DIR = Path(os.environ.get("ACCESSPLAN_SCREENSHOT_DIR", HERE.parents[1] / "build" / "screenshots"))


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        msg = f"{what} not found at {str(path)!r}: run `bash .ci/browser.sh` (installs it); browser tests never skip."
        pytest.fail(msg, pytrace=False)
    return path


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Folder for screenshots a person can look at (``build/screenshots`` unless overridden)."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR


@pytest.fixture(scope="session")
def axe_source() -> str:
    """The source of axe-core's ``axe.min.js`` (npm package, installed by ``npm ci``)."""
    return _require(AXE_JS, "axe-core (npm ci in tests/browser)").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def demo_app(tmp_path_factory, app_cache_dir):
    """The app on a fresh SQLite store holding the district's demo layers (road network: ``app_cache_dir``)."""
    app = build_demo_app(tmp_path_factory.mktemp("browser-app"), CACHE_DIR=str(app_cache_dir))
    yield app
    close_app(app)


@pytest.fixture(scope="session")
def live_server(demo_app):
    """Serve ``demo_app`` with waitress on 127.0.0.1 and a free port; yield its base URL."""
    with serve(demo_app) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, launched by Playwright through ``executable_path``."""
    from playwright.sync_api import sync_playwright

    executable = _require(CHROMIUM, "Chromium (Debian package `chromium`)")
    if shutil.which("fc-list") is None:
        pytest.fail("fontconfig is missing: run `bash .ci/browser.sh`.", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh page on ``live_server`` (see ``open_page``)."""
    with open_page(browser, live_server) as page:
        yield page
