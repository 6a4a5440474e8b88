"""Helpers of the real-browser tests: build a demo app, serve it on 127.0.0.1, open a page that stays local.

The fixtures in ``conftest.py`` use these; a test module that needs an app of its own (other data) does too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

LOCAL_HOSTS = frozenset({"127.0.0.1"})
#: The axe-core rule sets every page must pass: WCAG 2.0 and 2.1, levels A and AA, and best practices.
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")


def build_demo_app(folder: Path, **config):
    """Return the app on a fresh SQLite store in ``folder`` holding the district's demo layers."""
    from layers.demo import load_demo_layers
    from webmap import create_app
    from webmap.store import get_district, get_store

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "browser-tests",
            "DATABASE_URL": f"sqlite:///{folder / 'demo.sqlite'}",
            "CACHE_DIR": str(folder / "cache"),
            "ENCRYPTION_KEY": Fernet.generate_key(),
            **config,
        }
    )
    with app.app_context():
        load_demo_layers(get_store(), get_district())
    return app


def close_app(app) -> None:
    """Close ``app``'s store."""
    from webmap.store import get_store

    with app.app_context():
        get_store().close()


@contextmanager
def serve(app) -> Iterator[str]:
    """Serve ``app`` with waitress on 127.0.0.1 and a free port; yield its base URL."""
    from waitress import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=4, clear_untrusted_proxy_headers=True)
    thread = threading.Thread(target=server.run, name="waitress-browser-tests", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=10)


@dataclass
class Traffic:
    """What a page asked for: requests blocked for leaving the machine, failures and console errors."""

    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    local: list[str] = field(default_factory=list)


@contextmanager
def open_page(browser, base_url: str):
    """Yield a fresh page (1280×900, own context) that blocks and records every request to a host other than 127.0.0.1.

    The page carries ``traffic`` (a ``Traffic``) and ``base_url``.
    """
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
    page.base_url = base_url
    try:
        yield page
    finally:
        context.close()


def axe_violations(page, axe_source: str) -> list[tuple[str, list[str]]]:
    """Run axe-core (`AXE_TAGS`) on ``page``; return each violation's rule id and its first three targets."""
    page.evaluate(axe_source)  # CDP evaluation: not an inline <script>, so the page's CSP stays on
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        list(AXE_TAGS),
    )
    return [(v["id"], [n["target"][0] for n in v["nodes"]][:3]) for v in result["violations"]]


def log_in(page, name: str, password: str, next_path: str) -> None:
    """Sign in through the login form, asking for ``next_path``, and wait until the browser is there."""
    page.goto(f"{page.base_url}/login?next={next_path}")
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"**{next_path}")


def wait_until(page, predicate: str, *, timeout_s: float, poll_ms: int = 100) -> None:
    """Poll ``predicate`` (a JS function) from Python: the pages' CSP forbids the eval of `wait_for_function`."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(predicate):
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        page.wait_for_timeout(poll_ms)
