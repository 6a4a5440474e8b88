"""Browser test of the caseworker pages: a status change that another session made first."""

from __future__ import annotations

import pytest

from layers import schema, users
from webmap.store import get_store

TOWN_A = "500120001"  # 璧城街道
HOUSEHOLD = "HH-00013"  # town A, surveyed in the demo data
PASSWORD = "browser caseworker 1"

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


@pytest.fixture(scope="session")
def caseworker(demo_app):
    """A caseworker account for town A in the browser app's store."""
    with demo_app.app_context():
        users.add_user(get_store(), "cw-browser", role="caseworker", password=PASSWORD, towns=(TOWN_A,))
    return "cw-browser"


def test_stale_status_change_shows_who_changed_it(page, demo_app, caseworker, screenshot_dir):
    page.goto(f"{page.base_url}/login?next=/caseworker/household/{HOUSEHOLD}")
    page.fill("#login-name", caseworker)
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/caseworker/household/{HOUSEHOLD}")
    assert page.input_value("input[name=version]") == "1"

    with demo_app.app_context():  # another session saves first
        get_store().update_feature(
            schema.HOUSEHOLD, HOUSEHOLD, {schema.STATUS: "approved"}, version=1, user="colleague"
        )
    page.select_option("#new-status", "declined")
    page.click("text=保存状态")
    alert = page.locator("#conflict")
    alert.wait_for()
    text = alert.inner_text()
    assert "此记录已被 colleague 于" in text and "现为第 2 版，您编辑的是第 1 版" in text
    page.screenshot(path=str(screenshot_dir / "caseworker.png"), full_page=True)
    with demo_app.app_context():
        row = get_store().feature(schema.HOUSEHOLD, HOUSEHOLD)
    assert (row[schema.STATUS], row[schema.VERSION]) == ("approved", 2)

    page.click("text=重新载入最新记录")
    assert page.input_value("input[name=version]") == "2"
    assert page.traffic.blocked == []
    # the only console error is the conflict answer itself (HTTP 409), as intended
    assert [e for e in page.traffic.errors if "409" not in e] == []
