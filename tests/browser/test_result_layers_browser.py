"""Browser test of a planner result map that fetches its layers on demand (real Chromium, internet blocked)."""

from __future__ import annotations

import pytest

from layers import users
from tests.browser.harness import axe_violations, wait_until
from webmap.store import get_store

PASSWORD = "browser layers 123"

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


@pytest.fixture(scope="session")
def layers_planner(demo_app, tmp_path_factory):
    """A planner account in the browser app's store; job files go to a temporary folder."""
    demo_app.config["SESSION_COOKIE_SECURE"] = False
    demo_app.config.setdefault("JOBS_DIR", str(tmp_path_factory.mktemp("browser-layer-jobs")))
    with demo_app.app_context():
        users.add_user(get_store(), "planner-layers", role="planner", password=PASSWORD)
    return "planner-layers"


def test_a_coverage_result_draws_the_layers_it_fetches(page, layers_planner, axe_source, screenshot_dir):
    page.goto(f"{page.base_url}/login?next=/planner/coverage")
    page.fill("#login-name", layers_planner)
    page.fill("#login-password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/planner/coverage")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/planner/jobs/*")
    page.wait_for_selector("#coverage-summary", timeout=300_000)  # the page reloads itself when the job is done
    marks = page.locator("[data-layer-url]")
    assert marks.count() >= 1
    # every layer the page asks for arrives and is drawn: as many shapes on the map as features fetched
    wait_until(page, "() => [...document.querySelectorAll('[data-layer-url]')].every("
                     "e => e.hasAttribute('data-features') || e.hasAttribute('data-error'))", timeout_s=60)  # fmt: skip
    assert page.locator("[data-layer-url][data-error]").count() == 0
    fetched = sum(int(marks.nth(i).get_attribute("data-features")) for i in range(marks.count()))
    assert fetched > 0
    drawn = page.evaluate("() => document.querySelectorAll('.leaflet-overlay-pane path').length")
    assert drawn >= fetched
    assert axe_violations(page, axe_source) == []
    page.screenshot(path=str(screenshot_dir / "planner_coverage_layers.png"), full_page=True)
    assert page.traffic.blocked == [] and page.traffic.errors == []
