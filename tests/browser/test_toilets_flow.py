from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from layers import schema, users
from webmap.store import get_store

# Loopback only: the server listens and Chromium connects on 127.0.0.1; any other connect fails.
pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

PASSWORD = "bureau password 123"
HEADERS = ["编号", "名称", "镇街", "详细地址", "经度", "纬度", "状态", "建设类型", "施工单位", "计划完工日期"]
ROWS = [
    ["AT-201", "浏览器测试公厕一", "璧城街道", "测试路1号", 106.227, 29.591, "规划", "新建", "甲公司", "2025-06-30"],
    ["AT-202", "浏览器测试公厕二", "璧城街道", "测试路2号", 106.228, 29.592, "规划", "新建", "乙公司", "2025年13月1日"],
]


@pytest.fixture(scope="session")
def bureau_account(demo_app):
    """A bureau account in the browser tests' app (plain HTTP on loopback: no Secure-only cookie)."""
    demo_app.config["SESSION_COOKIE_SECURE"] = False
    with demo_app.app_context():
        users.add_user(get_store(), "bureau-browser", role="bureau", password=PASSWORD)
    return "bureau-browser"


def _sheet(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADERS)
    for row in ROWS:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    path = tmp_path / "厕所台账.xlsx"
    path.write_bytes(buffer.getvalue())
    return path


def test_the_bureau_uploads_a_sheet_with_one_bad_row_and_reads_the_report(
    page, demo_app, bureau_account, tmp_path, screenshot_dir
):
    page.goto(page.base_url + "/login")
    page.fill("#login-name", bureau_account)
    page.fill("#login-password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/toilets/")  # the bureau lands on the toilet register
    page.goto(page.base_url + "/toilets/import")
    page.set_input_files("#i-file", str(_sheet(tmp_path)))
    page.select_option("#i-datum", "wgs84")
    page.click("text=检查文件")
    page.wait_for_selector("#report-summary")
    assert "没有导入任何数据" in page.inner_text("#report-summary")
    cells = page.locator(".problems-table tbody tr").first.locator("td").all_inner_texts()
    assert cells[:4] == ["3", "AT-202", "计划完工日期", "2025年13月1日"]
    assert page.locator(".problems-table tbody tr").count() == 1
    assert page.locator("text=确认导入").count() == 0
    page.screenshot(path=str(screenshot_dir / "toilet_import_report.png"), full_page=True)
    with demo_app.app_context():
        ids = set(get_store().features(schema.ACCESSIBLE_TOILET)[schema.ID])
    assert not {"AT-201", "AT-202"} & ids
    assert page.traffic.blocked == [] and page.traffic.errors == []


def test_the_register_flags_overdue_toilets_and_exports_what_it_shows(
    page, demo_app, bureau_account, axe_source, screenshot_dir
):
    import pandas as pd

    from tests.browser.harness import axe_violations

    demo_app.config["TOILET_TODAY"] = "2025-07-04"  # AT-033 (under construction) was due 2025-07-03
    try:
        page.goto(page.base_url + "/login")
        page.fill("#login-name", bureau_account)
        page.fill("#login-password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url("**/toilets/")
        row = page.locator(".register-table tbody tr", has_text="AT-033")
        assert row.locator(".overdue").inner_text() == "逾期 1 天"
        assert "按北京时间 2025-07-04" in page.inner_text("#register-summary")
        assert axe_violations(page, axe_source) == []
        page.screenshot(path=str(screenshot_dir / "toilet_register_overdue.png"), full_page=True)
        with page.expect_download() as download:
            page.click("#export-xlsx")
        path = download.value.path()
        sheets = pd.read_excel(path, sheet_name=None, engine="calamine", dtype=str)
        register = sheets["登记表"].set_index("编号")
        assert register.loc["AT-033", "逾期天数（天）"] == "1"
        assert list(sheets["按镇街进度"].columns)[0] == "镇街代码"  # a header row on every sheet
        for path in ("/toilets/AT-026/reach", "/toilets/suggest?n=2"):  # the new pages are accessible too
            page.goto(page.base_url + path)
            assert axe_violations(page, axe_source) == [], path
        assert page.locator("#suggestions tbody tr").count() == 2
        assert page.traffic.blocked == [] and page.traffic.errors == []
    finally:
        demo_app.config["TOILET_TODAY"] = None
