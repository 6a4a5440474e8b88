from __future__ import annotations

import json
import logging

import pytest

from layers import schema
from tests.browser.harness import wait_until
from webmap.store import get_store
from webmap.views.public import SHOWN_STATUSES

logger = logging.getLogger(__name__)

# Loopback only: the server listens and Chromium connects on 127.0.0.1; any other connect fails.
pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
MARKER = ".leaflet-marker-icon.fac-marker"
CLUSTER = ".leaflet-marker-icon.fac-cluster"
#: Facilities drawn: single markers plus the count shown on each cluster (dense layers cluster).
DRAWN = f"""() => document.querySelectorAll('{MARKER}').length
    + [...document.querySelectorAll('{CLUSTER}')].reduce((n, c) => n + Number(c.textContent), 0)"""
TOILET = "AT-001"  # a surveyed demo toilet


@pytest.fixture(scope="session")
def shown_count(demo_app) -> int:
    """Public facilities the map should draw: every public row whose status is shown."""
    with demo_app.app_context():
        store = get_store()
        return sum(len(store.features(layer, statuses=SHOWN_STATUSES[layer])) for layer in schema.PUBLIC_LAYERS)


def _open(page, path: str) -> None:
    response = page.goto(page.base_url + path, wait_until="load")
    assert response is not None and response.status == 200, path


def _assert_clean(page) -> None:
    traffic = page.traffic
    assert traffic.local, "the page made no request at all"
    assert traffic.blocked == []  # nothing tried to leave the machine
    assert traffic.failed == []
    assert traffic.errors == []  # no script error, no CSP violation


def _audit(page, axe_source: str) -> list[dict]:
    page.evaluate(axe_source)  # CDP evaluation: not an inline <script>, so the page's CSP stays on
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", AXE_TAGS
    )
    violations = result["violations"]
    for v in violations:
        logger.info("axe %s (%s): %d node(s) on %s", v["id"], v["impact"], len(v["nodes"]), page.url)
    return violations


def _serious(violations: list[dict]) -> list[tuple[str, str, list[str]]]:
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:5])
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def test_public_map_draws_every_marker_offline(page, shown_count, screenshot_dir):
    _open(page, "/")
    page.wait_for_selector(MARKER)
    assert shown_count > 100
    wait_until(page, f"() => ({DRAWN})() === {shown_count}", timeout_s=10)  # clusters settled: none lost
    assert page.locator("tr[data-layer]").count() == shown_count  # every marker is also a row
    assert page.locator(".leaflet-overlay-pane path").count() >= 2  # boundary, town areas drawn
    assert page.locator(".leaflet-roads-pane canvas").count() == 1  # roads on their own canvas
    names = page.locator(f"{MARKER}, {CLUSTER}").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    assert len(names) > 10 and all(names)  # each marker and each cluster has an accessible name
    _assert_clean(page)
    page.screenshot(path=str(screenshot_dir / "public_map.png"), full_page=False)


@pytest.mark.parametrize(
    ("path", "ready", "minimum"),
    [
        ("/", f"{MARKER}, {CLUSTER}", 30),
        ("/list", "tr[data-layer]", 100),
        (f"/facility/accessible_toilet/{TOILET}", "dl.facts dt", 10),
        ("/?lang=en", f"{MARKER}, {CLUSTER}", 30),
    ],
)
def test_axe_finds_no_serious_or_critical_violation(page, axe_source, path, ready, minimum):
    _open(page, path)
    page.wait_for_selector(ready)
    assert page.locator(ready).count() >= minimum  # an empty page would pass the audit too
    violations = _audit(page, axe_source)
    assert _serious(violations) == []
    _assert_clean(page)


def test_keyboard_reaches_a_marker_and_enter_opens_its_popup(page):
    _open(page, "/")
    page.wait_for_selector(MARKER)
    for _ in range(80):  # skip link, navigation, filter form, map controls, then the markers
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('fac-marker')"):
            break
    else:
        pytest.fail("Tab never reached a facility marker")
    name = page.evaluate("document.activeElement.getAttribute('aria-label')")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible
    page.keyboard.press("Enter")
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(state="visible")
    assert popup.locator("strong").inner_text() == name.split("（")[0]
    link = popup.locator("a")
    assert link.get_attribute("href").startswith("/facility/")
    assert page.locator(".leaflet-popup-close-button").get_attribute("aria-label") == "关闭弹窗"
    _assert_clean(page)


def test_filter_form_without_javascript_updates_map_and_list_alike(page):
    _open(page, "/")
    page.check("input[name=layer][value=accessible_toilet]")
    page.check("input[name=feature][value=call_button]")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(lambda url: "layer=accessible_toilet" in url and "feature=call_button" in url)
    page.wait_for_selector(MARKER)
    rows = page.locator("tr[data-layer]")
    assert rows.count() > 0
    wait_until(page, f"() => ({DRAWN})() === {rows.count()}", timeout_s=10)
    assert set(rows.evaluate_all("els => els.map(e => e.dataset.layer)")) == {schema.ACCESSIBLE_TOILET}
    _assert_clean(page)


def test_facility_page_lists_accessibility_and_last_check(page):
    _open(page, f"/facility/accessible_toilet/{TOILET}")
    facts = page.locator("dl.facts").evaluate_all(
        "dls => Object.fromEntries(dls.flatMap(dl => [...dl.querySelectorAll('dt')].map("
        "dt => [dt.textContent.trim(), dt.nextElementSibling.textContent.trim()])))"
    )
    assert facts["最近核查日期"] == "2024-01-22"
    assert facts["求助呼叫按钮"] == "有" and facts["无障碍小便器"] == "无"
    assert json.dumps(facts, ensure_ascii=False).count("未记录") >= 1  # the room area is not recorded
    _assert_clean(page)
