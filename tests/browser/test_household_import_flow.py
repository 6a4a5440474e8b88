"""A caseworker imports a household ledger in real Chromium: upload → dry run with the masked diff → confirm."""

from __future__ import annotations

import pandas as pd
import pytest

from layers import schema, users
from layers.district import load_district
from tests.browser.harness import axe_violations, build_demo_app, close_app, open_page, serve
from webmap.store import get_store

# Loopback only: the server listens and Chromium connects on 127.0.0.1; any other connect fails.
pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

PASSWORD = "caseworker password 123"
NAME = "cw-import-browser"


@pytest.fixture(scope="module")
def import_app(tmp_path_factory, app_cache_dir):
    """An app of its own (the import changes households the other browser tests read)."""
    folder = tmp_path_factory.mktemp("household-import-app")
    app = build_demo_app(folder, CACHE_DIR=str(app_cache_dir), HOUSEHOLD_IMPORT_DIR=str(folder / "imports"),
                         SESSION_COOKIE_SECURE=False)  # fmt: skip
    with app.app_context():
        users.add_user(get_store(), NAME, role="caseworker", password=PASSWORD, towns=("500120001",))
    yield app
    close_app(app)


@pytest.fixture
def import_page(browser, import_app):
    with serve(import_app) as url, open_page(browser, url) as page:
        yield page


def _ledger(tmp_path):
    rows = pd.read_csv(load_district().demo_dir / "household.csv", dtype=str).head(2)
    rows.loc[0, "phone"] = "13900001111"  # HH-00001: 13624947846 stored
    rows.loc[1, "status"] = "completed"  # HH-00002: in_progress stored
    path = tmp_path / "改造户台账.csv"
    path.write_bytes(rows.to_csv(index=False).encode("utf-8-sig"))
    return path


def test_a_caseworker_checks_then_confirms_a_ledger(import_page, import_app, tmp_path, axe_source, screenshot_dir):
    page = import_page
    page.goto(page.base_url + "/login")
    page.fill("#login-name", NAME)
    page.fill("#login-password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/caseworker/**")
    page.click("text=导入改造户台账")  # the staff nav's link
    page.wait_for_selector("#upload-form")
    assert axe_violations(page, axe_source) == []
    page.set_input_files("#h-file", str(_ledger(tmp_path)))
    page.click("text=检查文件")
    page.wait_for_selector("#report-summary")
    assert "将新增 0 户，更新 2 户" in page.inner_text("#report-summary")
    rows = [r.locator("td").all_inner_texts() for r in page.locator("#changes-table tbody tr").all()]
    assert rows == [
        ["2", "HH-00001", "联系电话", "136****7846", "139****1111"],
        ["3", "HH-00002", "状态", "in_progress", "completed"],
    ]
    assert "13900001111" not in page.content()
    assert axe_violations(page, axe_source) == []
    page.screenshot(path=str(screenshot_dir / "household_import_preview.png"), full_page=True)
    with import_app.app_context():
        assert get_store().records(schema.HOUSEHOLD, ["HH-00001"])["HH-00001"][schema.PHONE] == "13624947846"
    page.click("text=确认导入")
    page.wait_for_selector("#import-done")
    assert "新增 0 户，更新 2 户，未变 0 户" in page.inner_text("#import-done")
    assert axe_violations(page, axe_source) == []
    with import_app.app_context():
        stored = get_store().records(schema.HOUSEHOLD, ["HH-00001", "HH-00002"])
    assert stored["HH-00001"][schema.PHONE] == "13900001111" and stored["HH-00002"][schema.STATUS] == "completed"
    assert page.traffic.blocked == [] and page.traffic.errors == []
