"""Near me in real Chromium (internet blocked): location button and typed village list four types, draw a route."""

from __future__ import annotations

import pytest

from layers import schema
from tests.browser.harness import axe_violations, wait_until

# Loopback only: the server listens and Chromium connects on 127.0.0.1; any other connect fails.
pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

#: A fixed position inside Bishan (璧城街道, near 文星社区).
POSITION = {"longitude": 106.22712, "latitude": 29.59461}
ROWS = "document.querySelectorAll('#nearme-rows tr').length"


@pytest.fixture
def located(browser, live_server):
    """A page whose context grants geolocation at `POSITION`; requests off 127.0.0.1 are blocked and recorded."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        locale="zh-CN",
        service_workers="block",
        geolocation=POSITION,
        permissions=["geolocation"],
    )
    blocked, errors, urls = [], [], []

    def route(route_):
        url = route_.request.url
        if url.startswith(("data:", "blob:", "http://127.0.0.1")):
            urls.append(url)
            route_.continue_()
        else:
            blocked.append(url)
            route_.abort("blockedbyclient")

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.blocked, page.errors, page.urls = blocked, errors, urls
    yield page
    context.close()


def _check_answer(page) -> None:
    drawn = "!!document.querySelector('#nearme-map path.leaflet-interactive')"
    wait_until(page, f"() => {ROWS} === 8 && {drawn}", timeout_s=30)
    layers = page.evaluate("[...document.querySelectorAll('#nearme-rows tr')].map(r => r.dataset.layer)")
    assert sorted(set(layers)) == sorted(schema.PUBLIC_LAYERS)
    assert page.locator("#nearme-rows td", has_text="分钟").count() == 8
    assert int(page.get_attribute("#nearme-map", "data-route-points")) >= 2
    assert page.text_content("#nearme-status") == "已找到附近的设施。"


def test_location_button_lists_four_types_and_draws_a_route(located, live_server, axe_source):
    page = located
    page.goto(live_server + "/near-me", wait_until="load")
    page.click("#nearme-locate")
    _check_answer(page)
    # the coordinates went in the POST body only
    assert not [u for u in page.urls if "106.22" in u or "29.59" in u]
    assert page.blocked == [] and page.errors == []
    assert axe_violations(page, axe_source) == []


def test_typed_village_lists_four_types_and_draws_a_route(located, live_server, axe_source):
    page = located
    page.goto(live_server + "/near-me", wait_until="load")
    page.fill("#nearme-place", "文星社区")
    page.keyboard.press("Enter")
    _check_answer(page)
    assert page.blocked == [] and page.errors == []
    assert axe_violations(page, axe_source) == []
