"""The public map's base map in a real Chromium: street names, inert roads, legend and phone layout (issues 15, 19)."""

from __future__ import annotations

import pytest

from tests.browser.harness import axe_violations, wait_until
from tests.browser.test_public_browser import CLUSTER, DRAWN, MARKER, _assert_clean, _open

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

STREET = "翠泉街"  # a residential street of Bishan's road file (data/bishan/roads.osm.bz2)
MAP = "window[document.querySelector('.folium-map').id]"


def _street_point(page) -> list[float]:
    """Return [lat, lon] of the middle vertex of ``STREET`` in the street band the map fetches."""
    return page.evaluate(
        """name => fetch('/map/roads/street.geojson').then(r => r.json()).then(c => {
               const f = c.features.find(x => x.properties.name === name);
               const part = f.geometry.coordinates.reduce((a, b) => (b.length > a.length ? b : a));
               const xy = part[Math.floor(part.length / 2)];
               return [xy[1], xy[0]];
           })""",
        STREET,
    )


def _split_street_point(page) -> list[float]:
    """Return [lat, lon] where two road features of one street name (two road classes) come closest."""
    return page.evaluate(
        """() => fetch('/map/roads/street.geojson').then(r => r.json()).then(c => {
               const byName = {};
               c.features.filter(f => f.properties.name).forEach(f => (byName[f.properties.name] ||= []).push(f));
               const [a, b] = Object.values(byName).find(fs => fs.length > 1);
               const points = f => f.geometry.coordinates.flat();
               let best = null;
               points(a).forEach(p => points(b).forEach(q => {
                   const d = (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2;
                   if (!best || d < best[0]) { best = [d, (p[1] + q[1]) / 2, (p[0] + q[0]) / 2]; }
               }));
               return best.slice(1);
           })"""
    )


def _zoom_to(page, lat: float, lon: float, zoom: int = 15) -> None:
    """Wait for the page's own fit to the district to end (it would undo ours), then zoom to ``zoom`` at lat, lon."""
    wait_until(
        page, f"() => {MAP}.getContainer().hasAttribute('data-road-band') && !{MAP}._animatingZoom", timeout_s=30
    )
    page.evaluate(f"([lat, lon, zoom]) => {MAP}.setView([lat, lon], zoom, {{animate: false}})", [lat, lon, zoom])
    wait_until(page, f"() => {MAP}.getZoom() === {zoom}", timeout_s=10)


def _labels(page) -> list[str]:
    return page.locator(".road-label").evaluate_all("els => els.map(e => e.textContent)")


def _label_boxes(page) -> list[tuple[str, dict]]:
    """Return each street label's text and drawn boxes: the ``.road-label`` element's and its text's (in pixels)."""
    return page.locator(".road-label").evaluate_all(
        """els => els.map(e => {
               const box = el => { const r = el.getBoundingClientRect();
                                   return {x: r.left, y: r.top, width: r.width, height: r.height}; };
               return [e.textContent, [box(e), box(e.firstElementChild)]];
           })"""
    )


def _overlap(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])  # fmt: skip


def _assert_labels_apart(page) -> list[str]:
    """Assert no street name is drawn twice, no two labels (element or text) overlap and none is hidden.

    Hidden: under a control or a town's name, or not wholly inside the map. Return the names shown.
    """
    wait_until(page, "() => document.getAnimations().length === 0", timeout_s=10)  # markers done gliding
    boxes = _label_boxes(page)
    names = [name for name, _ in boxes]
    assert names and all(names)
    assert sorted(n for n in set(names) if names.count(n) > 1) == []  # each name once in view
    for kind in (0, 1):  # the .road-label element, then its text as drawn
        hits = [(a[0], b[0]) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if _overlap(a[1][kind], b[1][kind])]
        assert hits == []
    covers = page.locator(".leaflet-control, .town-label > span").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect()).map(r => ({x: r.x, y: r.y, width: r.width, height: r.height}))"
    )
    assert [name for name, (_element, text) in boxes if any(_overlap(text, c) for c in covers)] == []  # none hidden
    frame = page.locator(".folium-map").bounding_box()
    for name, (_element, text) in boxes:  # every name whole inside the map
        assert frame["x"] <= text["x"] and text["x"] + text["width"] <= frame["x"] + frame["width"] + 0.5, name
        assert frame["y"] <= text["y"] and text["y"] + text["height"] <= frame["y"] + frame["height"] + 0.5, name
    return names


def test_a_known_street_name_shows_at_zoom_15_and_not_at_district_zoom(page, axe_source):
    _open(page, "/")
    page.wait_for_selector(MARKER)
    wait_until(page, f"() => {MAP}.getContainer().hasAttribute('data-road-band')", timeout_s=30)
    assert _labels(page) == []  # district zoom: roads without names
    _zoom_to(page, *_street_point(page))
    wait_until(page, f"() => [...document.querySelectorAll('.road-label')].some(e => e.textContent === '{STREET}')",
               timeout_s=30)  # fmt: skip
    label = page.locator(".road-label", has_text=STREET).first
    assert label.is_visible()
    box, frame = label.bounding_box(), page.locator(".map-frame").bounding_box()
    assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + 200
    # labels are text for the eye only: hidden from assistive technology, never a control
    assert (
        page.evaluate("() => document.querySelector('.leaflet-roadLabels-pane').getAttribute('aria-hidden')") == "true"
    )
    assert page.locator(".road-label[tabindex], .road-label[role]").count() == 0
    assert page.locator(".leaflet-roads-pane canvas").count() == 1  # all roads on one canvas: no DOM per road
    assert axe_violations(page, axe_source) == []
    _assert_clean(page)


@pytest.mark.parametrize("zoom", [14, 15, 17])
def test_street_names_show_once_each_and_never_overlap(page, zoom):
    """At the first label zoom (14), at 15 and zoomed in (17): one label per name, no two labels touching."""
    _open(page, "/")
    page.wait_for_selector(MARKER)
    _zoom_to(page, *_street_point(page), zoom=zoom)
    wait_until(page, "() => document.querySelectorAll('.road-label').length > 0", timeout_s=30)
    names = _assert_labels_apart(page)
    if zoom == 15:
        assert STREET in names  # the street the view is centred on keeps its name
    page.evaluate(f"() => {{ {MAP}.panBy([150, 90], {{animate: false}}); }}")  # redrawn after a move, still apart
    wait_until(page, "() => document.querySelectorAll('.road-label').length > 0", timeout_s=10)
    _assert_labels_apart(page)
    _assert_clean(page)


def test_a_street_in_two_road_classes_is_named_once(page):
    """A name carried by two features (e.g. a road both secondary and tertiary) gets one label, not one per feature."""
    _open(page, "/")
    page.wait_for_selector(MARKER)
    _zoom_to(page, *_split_street_point(page), zoom=15)
    wait_until(page, "() => document.querySelectorAll('.road-label').length > 0", timeout_s=30)
    _assert_labels_apart(page)
    _assert_clean(page)


def test_tab_never_lands_on_a_road_or_a_label(page):
    _open(page, "/")
    page.wait_for_selector(MARKER)
    _zoom_to(page, *_street_point(page))
    wait_until(page, "() => document.querySelectorAll('.road-label').length > 0", timeout_s=30)
    page.locator(".skip-map").first.focus()
    seen = []
    for _ in range(60):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate(
                """() => { const a = document.activeElement;
                   return [a.className && a.className.baseVal === undefined ? a.className : '',
                           !!a.closest('.leaflet-roadLabels-pane, .leaflet-roads-pane')]; }"""
            )
        )
    assert not any(inside for _cls, inside in seen)
    assert not any("road-label" in cls for cls, _inside in seen)
    assert any("fac-marker" in cls for cls, _inside in seen)  # Tab does reach the facilities


def test_legend_is_beside_the_map_and_in_view_at_1366x768(page):
    page.set_viewport_size({"width": 1366, "height": 768})
    _open(page, "/")
    page.wait_for_selector(MARKER)
    legend = page.locator("#legend-heading").bounding_box()
    items = page.locator(".legend .legend-list").first.bounding_box()
    frame = page.locator(".map-frame").bounding_box()
    assert legend["x"] >= frame["x"] + frame["width"]  # beside the map, to its right
    assert 0 <= legend["y"] and items["y"] + items["height"] <= 768  # the facility symbols in the first screen
    assert frame["y"] < 768


def test_on_a_phone_the_map_comes_first_and_the_layer_control_leaves_its_centre_free(page, axe_source):
    page.set_viewport_size({"width": 390, "height": 844})
    _open(page, "/")
    page.wait_for_selector(MARKER)
    frame = page.locator(".map-frame").bounding_box()
    assert frame["y"] < 844  # the map starts in the first screen
    for other in ("#filters-heading", "#legend-heading"):
        assert page.locator(other).bounding_box()["y"] > frame["y"] + frame["height"]  # below the map
    control = page.locator(".leaflet-control-layers").bounding_box()
    centre = (frame["x"] + frame["width"] / 4, frame["y"] + frame["height"] / 4,
              frame["x"] + 3 * frame["width"] / 4, frame["y"] + 3 * frame["height"] / 4)  # fmt: skip
    overlaps = not (control["x"] + control["width"] <= centre[0] or control["x"] >= centre[2]
                    or control["y"] + control["height"] <= centre[1] or control["y"] >= centre[3])  # fmt: skip
    assert not overlaps, (control, centre)
    toggle = page.locator(".leaflet-control-layers-toggle")
    assert toggle.get_attribute("aria-label") == "图层"
    toggle.click()  # the folded control opens on demand
    assert page.locator(".leaflet-control-layers-list").is_visible()
    assert axe_violations(page, axe_source) == []
    _assert_clean(page)


def test_clusters_at_district_zoom_split_on_zoom_in_from_the_keyboard(page):
    _open(page, "/")
    page.wait_for_selector(CLUSTER)
    wait_until(page, f"() => !{MAP}._animatingZoom", timeout_s=10)
    rows = page.locator("tr[data-layer]").count()
    assert rows > 100
    wait_until(page, f"() => ({DRAWN})() === {rows}", timeout_s=10)  # once settled, nothing lost in the clusters
    zoom = page.evaluate(f"() => {MAP}.getZoom()")
    assert zoom < 12  # district zoom
    # the biggest cluster (the district seat): a named button, reached with Tab
    biggest = max(page.locator(CLUSTER).evaluate_all("els => els.map(e => Number(e.textContent))"))
    label = page.locator(CLUSTER, has_text=str(biggest)).first.get_attribute("aria-label")
    assert label.startswith(f"{biggest} 处") and label.endswith("按回车放大")
    assert page.locator(CLUSTER, has_text=str(biggest)).first.get_attribute("tabindex") == "0"
    for _ in range(120):
        page.keyboard.press("Tab")
        if page.evaluate(
            f"() => document.activeElement.matches('{CLUSTER}') && document.activeElement.textContent === '{biggest}'"
        ):
            break
    else:
        pytest.fail("Tab never reached the biggest cluster")
    page.keyboard.press("Enter")
    wait_until(page, f"() => {MAP}.getZoom() > {zoom} && !{MAP}._animatingZoom", timeout_s=10)
    page.wait_for_timeout(400)  # markercluster's split animation
    counts = page.locator(CLUSTER).evaluate_all("els => els.map(e => Number(e.textContent))")
    assert all(c < biggest for c in counts)  # it split: no cluster as big as before
    assert page.locator(MARKER).count() > 0
    _assert_clean(page)
