"""Fixtures for real-browser tests: the app with the demo data served by waitress on 127.0.0.1, and
Debian's Chromium driven by Playwright (no browser download), every non-local request blocked.

Needs ``/usr/bin/chromium`` (Debian package ``chromium``; CJK glyphs from ``fonts-noto-cjk``) and
``tests/browser/node_modules/axe-core`` (``npm ci`` in ``tests/browser``): ``.ci/browser.sh``
installs all three. A missing piece fails the tests with that instruction; they never skip.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet

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
LOCAL_HOSTS = frozenset({"127.0.0.1"})
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
def demo_app(tmp_path_factory):
    """The app on a fresh SQLite store holding the district's demo layers."""
    from layers.demo import load_demo_layers
    from webmap import create_app
    from webmap.store import get_district, get_store

    folder = tmp_path_factory.mktemp("browser-app")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "browser-tests",
            "DATABASE_URL": f"sqlite:///{folder / 'demo.sqlite'}",
            "CACHE_DIR": str(folder / "cache"),
            "ENCRYPTION_KEY": Fernet.generate_key(),
        }
    )
    with app.app_context():
        load_demo_layers(get_store(), get_district())
    yield app
    with app.app_context():
        get_store().close()


@pytest.fixture(scope="session")
def live_server(demo_app):
    """Serve ``demo_app`` with waitress on 127.0.0.1 and a free port; yield its base URL."""
    from waitress import create_server

    server = create_server(demo_app, host="127.0.0.1", port=0, threads=4, clear_untrusted_proxy_headers=True)
    thread = threading.Thread(target=server.run, name="waitress-browser-tests", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=10)


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


@dataclass
class Traffic:
    """What a page asked for: requests blocked for leaving the machine, failures and console errors."""

    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    local: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser, live_server):
    """A fresh page (1280×900) that blocks and records every request to a host other than 127.0.0.1."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", service_workers="block")
    traffic = Traffic()

    def route(route_):
        url = route_.request.url
        host = urlsplit(url).hostname
        if url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            traffic.local.append(url)
            route_.continue_()
        else:
            traffic.blocked.append(url)
            route_.abort("blockedbyclient")

    context.route("**/*", route)
    page = context.new_page()
    page.on("requestfailed", lambda r: traffic.failed.append(f"{r.url} ({r.failure})"))
    page.on("response", lambda r: r.status >= 400 and traffic.failed.append(f"{r.url} (HTTP {r.status})"))
    page.on("console", lambda m: m.type == "error" and traffic.errors.append(m.text))
    page.on("pageerror", lambda e: traffic.errors.append(str(e)))
    page.traffic = traffic
    page.base_url = live_server
    yield page
    context.close()
