"""Browser test of the admin pages: landing after sign-in, the access-log viewer (filter, export download),
the role edit, the reset confirmation and the password page, each at zero axe-core violations, all offline."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pandas as pd
import pytest

from layers import users
from layers.store import access_log_table
from tests.browser.harness import axe_violations
from webmap.store import get_store

PASSWORD = "browser admin 123"
TOWN_A, TOWN_B = "500120001", "500120002"  # 璧城街道, 璧泉街道
HH_A, HH_B = "HH-00013", "HH-00119"

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


@pytest.fixture(scope="session")
def admin_account(demo_app):
    """An admin account and four access-log rows of two caseworkers of this test (plain HTTP: no Secure cookie)."""
    demo_app.config["SESSION_COOKIE_SECURE"] = False
    rows = [
        (datetime(2026, 3, 1, 15, 59, tzinfo=UTC), "cw-log-a", HH_A, "入户走访核实需求", "10.0.0.1", "web"),
        (datetime(2026, 3, 1, 16, 0, tzinfo=UTC), "cw-log-a", HH_B, "电话回访确认地址", "10.0.0.2", "api"),
        (datetime(2026, 3, 2, 3, 0, tzinfo=UTC), "cw-log-a", HH_A, "=1+1 核对改造进度", None, "cli"),
        (datetime(2026, 3, 2, 4, 0, tzinfo=UTC), "cw-log-b", HH_A, "复查扶手安装情况", "10.0.0.3", "web"),
    ]
    records = [
        {"at": at, "actor": actor, "layer": "household", "feature_id": fid, "reason": reason, "ip": ip,
         "channel": channel}
        for at, actor, fid, reason, ip, channel in rows
    ]  # fmt: skip
    with demo_app.app_context():
        store = get_store()
        users.add_user(store, "admin-browser", role="admin", password=PASSWORD)
        users.add_user(store, "cw-log-a", role="caseworker", password=PASSWORD, towns=(TOWN_A, TOWN_B))
        with store.engine.begin() as conn:
            conn.execute(access_log_table.insert(), records)
    return "admin-browser"


def _table(page) -> list[list[str]]:
    return [row.locator("td").all_inner_texts() for row in page.locator("#access-log tbody tr").all()]


def _download(page, selector: str) -> bytes:
    with page.expect_download() as info:
        page.click(selector)
    return (info.value.path()).read_bytes()


def test_an_admin_lands_on_the_admin_page_filters_the_access_log_and_downloads_it(
    page, admin_account, axe_source, screenshot_dir
):
    page.goto(page.base_url + "/login")
    page.fill("#login-name", admin_account)
    page.fill("#login-password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/users")  # the admin's workspace, not /account
    assert axe_violations(page, axe_source) == []

    page.click(".admin-subnav >> text=访问日志")
    page.wait_for_url("**/admin/access-log")
    assert axe_violations(page, axe_source) == []

    # cw-log-a in 璧城街道 on 2026-03-02 (Beijing time): the 23:59 view of 03-01 and the view in 璧泉街道 are left out
    page.fill("#f-user", "cw-log-a")
    page.select_option("#f-town", TOWN_A)
    page.fill("#f-from", "2026-03-02")
    page.fill("#f-to", "2026-03-02")
    page.click(".filters button[type=submit]")
    page.wait_for_url("**/admin/access-log?*user=cw-log-a*")
    assert page.inner_text("#log-heading") == "记录（共 1 条）"
    assert _table(page) == [["2026-03-02 11:00:00", "cw-log-a", HH_A, "璧城街道", "=1+1 核对改造进度", "命令行", ""]]
    assert page.input_value("#f-from") == "2026-03-02" and page.input_value("#f-town") == TOWN_A
    assert axe_violations(page, axe_source) == []
    page.screenshot(path=str(screenshot_dir / "admin_access_log.png"), full_page=True)

    # the export holds the rows the filters select, Chinese headers, the formula-like reason neutralised
    csv = pd.read_csv(io.BytesIO(_download(page, "#export-csv")), dtype=str, keep_default_na=False,
                      encoding="utf-8-sig")  # fmt: skip
    assert csv.values.tolist() == [
        ["2026-03-02 11:00:00", "cw-log-a", "查看完整记录", HH_A, TOWN_A, "璧城街道", "'=1+1 核对改造进度", "命令行",
         ""]
    ]  # fmt: skip
    assert list(csv.columns)[:3] == ["时间（北京时间）", "用户", "类型"]

    # wider: both caseworkers' views in 璧城街道, all dates; then the XLSX
    page.fill("#f-user", "")
    page.fill("#f-from", "")
    page.fill("#f-to", "")
    page.click(".filters button[type=submit]")
    page.wait_for_load_state()
    rows = [r for r in _table(page) if r[1] in ("cw-log-a", "cw-log-b")]
    assert [(r[0], r[1]) for r in rows] == [
        ("2026-03-02 12:00:00", "cw-log-b"), ("2026-03-02 11:00:00", "cw-log-a"), ("2026-03-01 23:59:00", "cw-log-a")
    ]  # fmt: skip
    xlsx = pd.read_excel(io.BytesIO(_download(page, "#export-xlsx")), dtype=str, engine="calamine")
    mine = xlsx[xlsx["用户"].isin(["cw-log-a", "cw-log-b"])]
    assert mine[["用户", "理由", "渠道"]].values.tolist() == [
        ["cw-log-b", "复查扶手安装情况", "网页"], ["cw-log-a", "'=1+1 核对改造进度", "命令行"],
        ["cw-log-a", "入户走访核实需求", "网页"],
    ]  # fmt: skip

    # a start date after the end date: a clear message, the form kept, no table, still accessible
    page.fill("#f-from", "2026-03-05")
    page.fill("#f-to", "2026-03-01")
    page.click(".filters button[type=submit]")
    page.wait_for_selector("#filter-errors")
    assert "起始日期 2026-03-05 晚于结束日期 2026-03-01：请调换两个日期。" in page.inner_text("#filter-errors")
    assert page.locator("#access-log").count() == 0 and page.input_value("#f-from") == "2026-03-05"
    assert axe_violations(page, axe_source) == []
    assert page.traffic.blocked == []  # nothing left the machine
    assert all("400" in e for e in page.traffic.errors)  # the only console error: the refused filter (HTTP 400)


def test_the_role_edit_reset_confirmation_and_password_pages_are_accessible(page, admin_account, axe_source):
    page.goto(page.base_url + "/login?next=/admin/users/cw-log-a/edit")
    page.fill("#login-name", admin_account)
    page.fill("#login-password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/users/cw-log-a/edit")
    assert page.is_checked(f"input[name=towns][value='{TOWN_B}']")
    assert axe_violations(page, axe_source) == []
    page.uncheck(f"input[name=towns][value='{TOWN_B}']")
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/users")
    assert "已修改用户 cw-log-a 的角色和负责镇街。" in page.inner_text("main")

    page.goto(page.base_url + "/admin/users/cw-log-a/password")
    assert axe_violations(page, axe_source) == []
    page.click("main button[type=submit]")  # the required box is not ticked: the browser does not send the form
    assert page.url.endswith("/admin/users/cw-log-a/password")
    assert page.locator("code").count() == 0

    page.goto(page.base_url + "/account/password")
    assert axe_violations(page, axe_source) == []
    page.fill("#current-password", "not my password")
    page.fill("#new-password", "lantern orchard 47")
    page.fill("#new-password-again", "lantern orchard 47")
    page.click("main button[type=submit]")
    page.wait_for_selector("#password-error")
    assert page.inner_text("#password-error") == "当前密码不正确：请输入您现在登录用的密码。"
    assert axe_violations(page, axe_source) == []
    assert page.traffic.blocked == []
