"""Browser test of the compare page: two real coverage jobs, the default choices comparable, the two maps
moved together (pan and zoom either one, the other follows) in real Chromium, axe-core clean."""

from __future__ import annotations

import time

import pytest

from layers import users
from tests.browser.harness import axe_violations, log_in, wait_until
from webmap.store import get_store

PASSWORD = "browser compare 123"

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


@pytest.fixture(scope="session")
def compare_planner(demo_app, tmp_path_factory):
    """A planner account of its own in the browser app's store."""
    demo_app.config["SESSION_COOKIE_SECURE"] = False
    demo_app.config.setdefault("JOBS_DIR", str(tmp_path_factory.mktemp("browser-compare-jobs")))
    with demo_app.app_context():
        users.add_user(get_store(), "planner-compare", role="planner", password=PASSWORD)
    return "planner-compare"


def _coverage_job(page, thresholds: str, name: str) -> str:
    page.goto(f"{page.base_url}/planner/coverage")
    page.fill("#job-name", name)
    page.select_option("#demand", "village")
    page.fill("#thresholds", thresholds)
    page.click("main form.planner-form button[type=submit]")
    page.wait_for_url("**/planner/jobs/*")
    job_id = page.url.rsplit("/", 1)[-1]
    deadline = time.monotonic() + 300
    while page.request.get(f"{page.base_url}/planner/jobs/{job_id}.json").json()["status"] != "done":
        assert time.monotonic() < deadline, "the coverage job did not finish in 300 s"
        time.sleep(0.5)
    return job_id


def _view(page, name: str) -> list[float]:
    return page.evaluate(f"() => {{ const c = window['{name}'].getCenter(); "
                         f"return [c.lat, c.lng, window['{name}'].getZoom()]; }}")  # fmt: skip


def test_two_results_compare_on_two_maps_that_move_together(page, compare_planner, axe_source, screenshot_dir):
    log_in(page, compare_planner, PASSWORD, "/planner/")
    first = _coverage_job(page, "800m", "步行 800 米")
    second = _coverage_job(page, "2km", "步行 2 公里")

    page.goto(f"{page.base_url}/planner/")
    # the default choices are two results of the same kind: the older as A, the newer as B
    assert page.input_value("#compare-a") == first and page.input_value("#compare-b") == second
    assert axe_violations(page, axe_source) == []
    page.click("#compare-heading + form button[type=submit]")
    page.wait_for_url("**/planner/compare?*")
    wait_until(page, "() => document.getElementById('synced-maps').dataset.synced === '1'", timeout_s=60)
    a, b = page.get_attribute("#synced-maps", "data-sync-maps").split()
    assert page.locator(".folium-map").count() == 2

    # a zoom and pan of map A by script moves map B to the same view ...
    page.wait_for_load_state("networkidle")
    page.evaluate(f"() => {{ window['{a}'].setView([29.55, 106.2], 13, {{animate: false}}); }}")
    wait_until(page, f"() => window['{b}'].getZoom() === 13", timeout_s=10)
    assert _view(page, b) == pytest.approx([29.55, 106.2, 13], abs=1e-6)
    # ... and a drag of map B with the mouse moves map A
    box = page.locator(f"#{b}").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 120, y + 60, steps=10)
    page.mouse.up()
    wait_until(page, f"() => window['{a}'].getCenter().lng > 106.2 + 1e-4", timeout_s=10)
    page.wait_for_timeout(1000)  # the drag's inertia ends
    assert _view(page, a) == pytest.approx(_view(page, b), abs=1e-9)
    # the mouse wheel on map A zooms map B too
    box = page.locator(f"#{a}").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -300)
    wait_until(page, f"() => window['{b}'].getZoom() > 13", timeout_s=10)
    wait_until(page, f"() => window['{a}'].getZoom() === window['{b}'].getZoom()", timeout_s=10)

    assert page.inner_text("#compare-parameters").count("（不同）") >= 1
    assert axe_violations(page, axe_source) == []
    page.screenshot(path=str(screenshot_dir / "planner_compare.png"), full_page=True)
    assert page.traffic.blocked == [] and page.traffic.errors == []
