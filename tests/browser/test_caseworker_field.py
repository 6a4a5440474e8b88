"""Browser tests of the caseworker pages in the field: 390 px phones, the one-page printed visit list, the export."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest

from layers import schema, users
from tests.browser.harness import axe_violations, wait_until
from webmap.store import get_store
from webmap.views.caseworker import MAX_VISITS

TOWN_A = "500120001"  # 璧城街道
PASSWORD = "browser caseworker field 1"
#: Town A households (not declined) picked for the visit list.
PICKED = ("HH-00001", "HH-00022", "HH-00045", "HH-00070", "HH-00090")
#: Page objects in a PDF (``/Type /Pages`` is the page tree, not a page).
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


@pytest.fixture(scope="module")
def field_caseworker(demo_app):
    """A caseworker account for town A in the browser app's store."""
    with demo_app.app_context():
        users.add_user(get_store(), "cw-field", role="caseworker", password=PASSWORD, towns=(TOWN_A,))
    return "cw-field"


def _log_in(page, name: str, target: str) -> None:
    page.goto(f"{page.base_url}/login?next=/caseworker/")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/caseworker/")
    page.goto(f"{page.base_url}{target}")


def _visits_url() -> str:
    return f"/caseworker/visits?start={TOWN_A}&" + "&".join(f"id={hid}" for hid in PICKED)


def _map_ready(page) -> None:
    ready = "() => document.querySelectorAll('.leaflet-marker-icon, .leaflet-interactive').length > 0"
    wait_until(page, ready, timeout_s=30)


def test_list_household_and_route_pages_fit_390_px(page, field_caseworker, axe_source, screenshot_dir):
    page.set_viewport_size({"width": 390, "height": 844})
    _log_in(page, field_caseworker, _visits_url())
    _map_ready(page)
    for path in ("/caseworker/", f"/caseworker/household/{PICKED[0]}", _visits_url()):
        page.goto(f"{page.base_url}{path}")
        if "visits" in path or path == "/caseworker/":
            _map_ready(page)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (path, overflow)
        assert axe_violations(page, axe_source) == [], path
    page.screenshot(path=str(screenshot_dir / "caseworker-visits-390.png"), full_page=True)
    # every route-table cell is at least two characters wide (1em at the cell's font size), no one-character columns
    narrow = page.evaluate(
        """() => [...document.querySelectorAll('.route-table td, .route-table th')]
            .filter(c => c.textContent.trim().length > 1
                    && c.getBoundingClientRect().width < 2 * parseFloat(getComputedStyle(c).fontSize))
            .map(c => c.textContent.trim())"""
    )
    assert narrow == []
    gap = page.evaluate(
        """() => document.querySelector('.cw-map .map-frame').getBoundingClientRect().height
                 - document.querySelector('.cw-map .folium-map').getBoundingClientRect().height"""
    )
    assert gap <= 2  # the frame's border only: no empty band below the map
    times = page.locator(".route-table td.leg-time").all_inner_texts()
    assert len(times) == len(PICKED) and all(re.fullmatch(r"(< 1|\d+) 分钟", t) for t in times), times
    assert page.traffic.blocked == [] and page.traffic.errors == []


def _most_households(demo_app) -> tuple[str, ...]:
    """The first `MAX_VISITS` households of town A that are not declined (a full visit list)."""
    with demo_app.app_context():
        rows = get_store().features(schema.HOUSEHOLD, towns=(TOWN_A,))
    return tuple(rows.loc[rows[schema.STATUS] != "declined", schema.ID].iloc[:MAX_VISITS])


@pytest.mark.parametrize("full", [False, True], ids=["5 households", "25 households"])
def test_printed_visit_list_is_one_a4_page(page, demo_app, field_caseworker, full):
    picked = _most_households(demo_app) if full else PICKED
    _log_in(page, field_caseworker, f"/caseworker/visits?start={TOWN_A}&" + "&".join(f"id={h}" for h in picked))
    assert page.locator(".route-table tbody tr").count() == len(picked)
    _map_ready(page)
    page.emulate_media(media="print")
    controls = "() => getComputedStyle(document.querySelector('.leaflet-control-container')).display"
    assert page.evaluate(controls) == "none"  # no zoom buttons on paper
    pdf = page.pdf(format="A4", print_background=True)
    assert len(_PDF_PAGE.findall(pdf)) == 1


def test_household_list_exports_from_the_page(page, field_caseworker):
    _log_in(page, field_caseworker, "/caseworker/?status=surveyed")
    with page.expect_download() as download_info:
        page.click("#household-list >> text=XLSX")
    download = download_info.value
    assert download.suggested_filename.startswith("households-") and download.suggested_filename.endswith(".xlsx")
    table = pd.read_excel(io.BytesIO(download.path().read_bytes()), engine="calamine", dtype=str)
    rows = page.locator("#household-list tbody tr").count()
    assert len(table) == rows > 0
    assert list(table.columns[:5]) == ["家庭编号", "镇街代码", "镇街", "村（社区）代码", "村（社区）"]
    assert set(table["状态"]) == {"已摸底"}
