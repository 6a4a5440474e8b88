"""The public map from the keyboard: popups take focus and give it back; a journey to a toilet's details."""

from __future__ import annotations

import pytest

from tests.browser.test_public_browser import MARKER, _assert_clean, _audit, _open, _serious

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

TOWN = "500120001"  # 璧城街道
ACTIVE_IS_MARKER = "document.activeElement.classList.contains('fac-marker')"
ACTIVE_IN_POPUP = "!!document.activeElement.closest('.leaflet-popup')"
#: The folium map object (a global named after the map's container id).
MAP = "window[document.querySelector('.folium-map').id]"


def _tab_until(page, condition: str, limit: int = 120) -> int:
    """Press Tab until ``condition`` (a JS expression) holds; return the number of presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate(condition):
            return presses
    pytest.fail(f"Tab never reached: {condition}")


def _active(page, expression: str):
    return page.evaluate(f"(el => {expression})(document.activeElement)")


def test_enter_moves_focus_into_the_popup_and_its_link_is_the_next_tab_stop(page):
    _open(page, "/")
    page.wait_for_selector(MARKER)
    _tab_until(page, ACTIVE_IS_MARKER)
    name = _active(page, "el.getAttribute('aria-label')")
    page.keyboard.press("Enter")
    page.locator(".leaflet-popup-content").wait_for(state="visible")
    assert page.evaluate(ACTIVE_IN_POPUP)  # focus moved into the popup
    assert page.locator(".leaflet-popup-content strong").inner_text() == name.split("（")[0]
    page.keyboard.press("Tab")
    assert _active(page, "el.tagName + ' ' + el.getAttribute('href')").startswith("A /facility/")
    assert _active(page, "el.textContent") == "查看详情"
    _assert_clean(page)


def test_escape_closes_the_popup_and_returns_focus_to_its_marker(page):
    _open(page, "/")
    page.wait_for_selector(MARKER)
    _tab_until(page, ACTIVE_IS_MARKER)
    _tab_until(page, ACTIVE_IS_MARKER)  # the second marker: not simply the first one again
    key = _active(page, "el.dataset.facility")
    page.keyboard.press("Enter")
    page.locator(".leaflet-popup-content").wait_for(state="visible")
    page.keyboard.press("Tab")  # on the link
    page.keyboard.press("Escape")
    page.locator(".leaflet-popup").wait_for(state="detached")
    assert page.evaluate(ACTIVE_IS_MARKER)
    assert _active(page, "el.dataset.facility") == key
    page.keyboard.press("Enter")  # and it opens again from there
    page.locator(".leaflet-popup-content").wait_for(state="visible")
    assert page.evaluate(ACTIVE_IN_POPUP)
    _assert_clean(page)


def test_view_on_map_zooms_to_the_facility_and_opens_its_popup(page, axe_source):
    _open(page, "/facility/accessible_toilet/AT-015")
    name = page.locator("h1").inner_text()
    page.get_by_role("link", name="在地图上查看").click()
    page.wait_for_url(lambda url: "#facility=accessible_toilet/AT-015" in url)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(state="visible")
    assert popup.locator("strong").inner_text() == name
    assert page.evaluate(f"{MAP}.getZoom()") >= 16
    assert page.evaluate(ACTIVE_IN_POPUP)
    page.wait_for_function("() => getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")
    assert _serious(_audit(page, axe_source)) == []
    _assert_clean(page)


def test_keyboard_journey_to_a_toilet_with_grab_bars_in_bicheng(page, screenshot_dir):
    """Find a toilet with grab bars in 璧城街道, open it and read its details, without the mouse."""
    _open(page, "/")
    page.wait_for_selector(MARKER)
    _tab_until(page, "document.activeElement.getAttribute('href') === '#filters-heading'")  # skip the map
    page.keyboard.press("Enter")
    _tab_until(page, "document.activeElement.id === 'filter-town'", limit=3)
    for _ in range(40):  # a closed <select> moves through its options with the arrow keys
        if page.evaluate("document.activeElement.value") == TOWN:
            break
        page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.selectedOptions[0].textContent") == "璧城街道"
    _tab_until(page, "document.activeElement.value === 'accessible_toilet'")
    page.keyboard.press("Space")
    _tab_until(page, "document.activeElement.value === 'grab_bars'")
    page.keyboard.press("Space")
    _tab_until(page, "document.activeElement.type === 'submit'")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"town={TOWN}" in url and "feature=grab_bars" in url)
    page.wait_for_selector(MARKER)
    assert page.locator(MARKER).count() == page.locator("tr[data-layer]").count() == 3
    _tab_until(page, ACTIVE_IS_MARKER)
    name = _active(page, "el.getAttribute('aria-label')").split("（")[0]
    page.keyboard.press("Enter")
    page.locator(".leaflet-popup-content").wait_for(state="visible")
    page.keyboard.press("Tab")
    page.screenshot(path=str(screenshot_dir / "public_keyboard_popup.png"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("h1").inner_text() == name
    facts = page.locator("dl.facts").evaluate_all(
        "dls => Object.fromEntries(dls.flatMap(dl => [...dl.querySelectorAll('dt')].map("
        "dt => [dt.textContent.trim(), dt.nextElementSibling.textContent.trim()])))"
    )
    assert facts["镇街"] == "璧城街道"
    assert facts["水平安全抓杆"] == "有" and facts["垂直安全抓杆"] == "有"
    _assert_clean(page)
