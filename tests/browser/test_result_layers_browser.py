"""Browser test of a planner result map that fetches its layers on demand (real Chromium, internet blocked)."""

from __future__ import annotations

import pytest

from layers import users
from tests.browser.harness import axe_violations, log_in, wait_until
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
    log_in(page, layers_planner, PASSWORD, "/planner/coverage")
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


#: Metres per pixel of Leaflet's Web-Mercator zoom 0 at the equator.
_M_PER_PX_Z0 = 156_543.034


def _median_path_width(page) -> float:
    """Return the median width (px) of the paths drawn on the map: the hexagons' (hundreds, beside a few outlines)."""
    return page.evaluate(
        """() => {
          const widths = [...document.querySelectorAll('.leaflet-overlay-pane path')]
            .map(p => p.getBBox()).filter(b => b.width > 0 && b.height > 0).map(b => b.width).sort((a, b) => a - b);
          return widths[Math.floor(widths.length / 2)];
        }"""
    )


def test_zooming_in_fetches_and_draws_finer_hexagons_tile_by_tile(page, layers_planner, axe_source, screenshot_dir):
    import math
    import re

    log_in(page, layers_planner, PASSWORD, "/planner/coverage")
    page.select_option("#demand", "grid")  # ~5,700 points at 400 m: counted per hexagon
    page.fill("#grid_spacing", "400")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/planner/jobs/*")
    page.wait_for_selector("#coverage-summary", timeout=300_000)
    mark = page.locator("[data-layer-url][data-level]")
    wait_until(page, "() => { const m = document.querySelector('[data-layer-url][data-level]');"
                     " return m && m.hasAttribute('data-features'); }", timeout_s=60)  # fmt: skip
    assert mark.get_attribute("data-level") == "0" and mark.get_attribute("data-error") is None
    coarse_m = float(mark.get_attribute("data-cell-m"))
    assert coarse_m >= 400 and int(mark.get_attribute("data-level-features")) > 100
    legend = page.locator(".leaflet-control-layers-overlays").inner_text()
    assert "每个六边形显示其中各类点的个数" in legend and f"边长 {coarse_m:.0f} → 150 → 50 → 20 米" in legend
    url = mark.get_attribute("data-layer-url")
    map_name = page.evaluate("() => document.querySelector('.folium-map').id")
    lat = page.evaluate(f"() => window[{map_name!r}].getCenter().lat")
    for level, zoom, edge in ((1, 13, 150.0), (2, 15, 50.0), (3, 17, 20.0)):
        before = len(page.traffic.local)
        # (a zoom asked for while the page's own fit-to-district still runs is dropped: ask until it holds)
        wait_until(page, f"() => {{ const m = window[{map_name!r}]; m.setZoom({zoom}, {{animate: false}});"
                         f" return m.getZoom() === {zoom}; }}", timeout_s=30)  # fmt: skip
        wait_until(page, f"() => {{ const m = document.querySelector('[data-layer-url][data-level]');"
                         f" return m.getAttribute('data-level') === '{level}' && m.getAttribute('data-pending') === '0'"
                         f" && Number(m.getAttribute('data-level-features')) > 0; }}", timeout_s=60)  # fmt: skip
        asked = [u for u in page.traffic.local[before:] if url in u and f"level={level - 1}&" in u]
        assert asked, f"no tile of level {level} was fetched"
        assert all(re.search(r"level=\d&x=\d+&y=\d+$", u) for u in asked)
        assert float(mark.get_attribute("data-cell-m")) == edge
        # the hexagons drawn are that level's: √3·edge metres across, in pixels at this zoom
        across = math.sqrt(3) * edge / (_M_PER_PX_Z0 * math.cos(math.radians(lat)) / 2**zoom)
        assert 0.7 * across < _median_path_width(page) < 1.3 * across, (level, across)
    assert mark.get_attribute("data-error") is None
    assert axe_violations(page, axe_source) == []
    page.screenshot(path=str(screenshot_dir / "planner_coverage_zoomed_hexagons.png"), full_page=True)
    assert page.traffic.blocked == [] and page.traffic.errors == [] and page.traffic.failed == []
