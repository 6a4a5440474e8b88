"""Tests of the admins' access-log viewer (webmap.views.admin): filters, paging, refusals and the CSV/XLSX export."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from layers.store import access_log_table
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import ROLE_KEYS, TOWN_A, TOWN_B, csrf_token
from webmap.store import get_store

demo_key, demo_db, demo_cache = staff_fixtures.demo_key, staff_fixtures.demo_db, staff_fixtures.demo_cache
app, client, client_as = staff_fixtures.app, staff_fixtures.client, staff_fixtures.client_as

HH_A = "HH-00013"  # 璧城街道 (town A)
HH_B = "HH-00119"  # 璧泉街道 (town B)
_ROW = re.compile(r"<tr>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*"
                  r"<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*</tr>")  # fmt: skip
_TOTAL = re.compile(r"记录（共 (\d+) 条）")


def _append(app, rows) -> None:
    """Append access-log rows at chosen times (an INSERT, as the app may; nothing is rewritten)."""
    records = [
        {"at": at, "actor": actor, "layer": "household", "feature_id": fid, "reason": reason, "ip": ip,
         "channel": channel}
        for at, actor, fid, reason, ip, channel in rows
    ]  # fmt: skip
    with app.app_context(), get_store().engine.begin() as conn:
        conn.execute(access_log_table.insert(), records)


@pytest.fixture
def logged(app):
    """Four rows: two views in town A, one in town B, one bulk read, around midnight Beijing time of 2026-03-02."""
    _append(app, [
        (datetime(2026, 3, 1, 15, 59, tzinfo=UTC), "cw-a", HH_A, "入户走访核实需求", "10.0.0.1", "web"),  # 03-01 23:59
        (datetime(2026, 3, 1, 16, 0, tzinfo=UTC), "cw-b", HH_B, "电话回访确认地址", "10.0.0.2", "api"),  # 03-02 00:00
        (datetime(2026, 3, 2, 1, 0, tzinfo=UTC), "cw-a", HH_A, "=HYPERLINK(\"http://x\",\"看\")", None, "cli"),
        (datetime(2026, 3, 3, 2, 0, tzinfo=UTC), "planner", "*", "bulk read of 9 rows (planner): GET /api/households",
         "10.0.0.9", "web"),
    ])  # fmt: skip


def _rows(page: str) -> list[tuple[str, ...]]:
    return [tuple(cell.strip() for cell in row) for row in _ROW.findall(page)]


def test_the_viewer_shows_full_views_newest_first_with_time_user_household_town_reason_channel_and_ip(
    client_as, logged
):
    response = client_as("admin").get("/admin/access-log")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert _TOTAL.search(page).group(1) == "3"  # the bulk read is not a full view
    assert _rows(page) == [
        ("2026-03-02 09:00:00", "cw-a", HH_A, "璧城街道", "=HYPERLINK(&#34;http://x&#34;,&#34;看&#34;)", "命令行", ""),
        ("2026-03-02 00:00:00", "cw-b", HH_B, "璧泉街道", "电话回访确认地址", "接口", "10.0.0.2"),
        ("2026-03-01 23:59:00", "cw-a", HH_A, "璧城街道", "入户走访核实需求", "网页", "10.0.0.1"),
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user=cw-a", [("2026-03-02 09:00:00", "cw-a"), ("2026-03-01 23:59:00", "cw-a")]),
        (f"town={TOWN_B}", [("2026-03-02 00:00:00", "cw-b")]),
        # one Beijing day, both ends included: 03-02 00:00 is in, 03-01 23:59 is not
        ("from=2026-03-02&to=2026-03-02", [("2026-03-02 09:00:00", "cw-a"), ("2026-03-02 00:00:00", "cw-b")]),
        ("to=2026-03-01", [("2026-03-01 23:59:00", "cw-a")]),
        ("kind=bulk", [("2026-03-03 10:00:00", "planner")]),
        ("kind=all&from=2026-03-02&user=planner", [("2026-03-03 10:00:00", "planner")]),
        (f"kind=all&town={TOWN_A}&user=cw-a&from=2026-03-02", [("2026-03-02 09:00:00", "cw-a")]),
        ("user=nobody", []),
    ],
)
def test_filters_by_user_town_date_and_kind(client_as, logged, query, expected):
    page = client_as("admin").get(f"/admin/access-log?{query}").get_data(as_text=True)
    assert [row[:2] for row in _rows(page)] == expected
    assert _TOTAL.search(page).group(1) == str(len(expected))
    if not expected:
        assert "没有符合条件的记录。" in page


def test_paging_shows_fifty_rows_a_page_newest_first(app, client_as):
    start = datetime(2026, 4, 1, tzinfo=UTC)
    _append(app, [(start + timedelta(minutes=i), "cw-a", HH_A, f"第 {i} 次走访核实", None, "web") for i in range(120)])
    admin = client_as("admin")
    first = admin.get("/admin/access-log").get_data(as_text=True)
    assert len(_rows(first)) == 50 and _rows(first)[0][4] == "第 119 次走访核实"
    assert "第 1 页，共 3 页" in first and 'rel="next"' in first and 'rel="prev"' not in first
    last = admin.get("/admin/access-log?page=3").get_data(as_text=True)
    assert [r[4] for r in _rows(last)] == [f"第 {i} 次走访核实" for i in range(19, -1, -1)]
    assert 'href="/admin/access-log?page=2&amp;kind=full" rel="prev"' in last and 'rel="next"' not in last
    beyond = admin.get("/admin/access-log?page=4")
    assert beyond.status_code == 400 and "没有第 4 页：共 3 页。" in beyond.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01",
         "起始日期“2026-13-01”不是有效日期：请按 年-月-日 填写 2000 至 2099 年的日期，例如 2026-03-01。"),
        ("to=yesterday", "结束日期“yesterday”不是有效日期"),
        ("from=1999-12-31", "起始日期“1999-12-31”不是有效日期"),
        ("from=2026-03-05&to=2026-03-01", "起始日期 2026-03-05 晚于结束日期 2026-03-01：请调换两个日期。"),
        ("town=火星镇", "镇街“火星镇”不在本区：请从列表中选择镇街。"),
        ("kind=secret", "记录类型“secret”无效：请选择 查看完整记录、批量读取名单、全部。"),
        ("page=two", "页码“two”无效：页码是从 1 开始的整数。"),
        ("page=-1", "页码“-1”无效"),
    ],
)  # fmt: skip
def test_bad_filters_get_a_clear_message_and_keep_the_form(client_as, logged, query, message):
    response = client_as("admin").get(f"/admin/access-log?{query}")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in page
    assert 'role="alert"' in page and 'id="f-user"' in page and "<table" not in page


def test_bad_filters_are_explained_in_english(client_as, logged):
    response = client_as("admin").get("/admin/access-log?from=2026-03-05&to=2026-03-01&lang=en")
    assert response.status_code == 400
    assert "The start date 2026-03-05 is after the end date 2026-03-01: swap the two dates." in response.get_data(
        as_text=True
    )


@pytest.mark.parametrize("path", ["/admin/access-log", "/admin/access-log/export?format=csv"])
def test_only_admins_see_the_access_log(client_as, logged, path):
    expected = {"public": 302, "caseworker_a": 403, "caseworker_b": 403, "bureau": 403, "planner": 403, "admin": 200}
    assert {key: client_as(key).get(path).status_code for key in ROLE_KEYS} == expected
    assert "角色“规划人员（区残联）”无权访问此功能。" in client_as("planner").get(path).get_data(as_text=True)


def test_the_csv_export_holds_every_selected_row_with_chinese_headers_names_beside_codes_and_no_live_formula(
    client_as, logged
):
    response = client_as("admin").get("/admin/access-log/export?format=csv&kind=all")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert re.fullmatch(r'attachment; filename="access-log-\d{8}-\d{4}\.csv"', response.headers["Content-Disposition"])
    assert response.data.startswith("\ufeff".encode())  # BOM: Excel reads it as UTF-8
    table = pd.read_csv(io.BytesIO(response.data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    headers = ["时间（北京时间）", "用户", "类型", "家庭编号", "镇街代码", "镇街", "理由", "渠道", "IP 地址"]
    assert list(table.columns) == headers
    assert table.values.tolist() == [
        ["2026-03-03 10:00:00", "planner", "批量读取名单", "", "", "",
         "bulk read of 9 rows (planner): GET /api/households", "网页", "10.0.0.9"],
        ["2026-03-02 09:00:00", "cw-a", "查看完整记录", HH_A, TOWN_A, "璧城街道", "'=HYPERLINK(\"http://x\",\"看\")",
         "命令行", ""],
        ["2026-03-02 00:00:00", "cw-b", "查看完整记录", HH_B, TOWN_B, "璧泉街道", "电话回访确认地址", "接口",
         "10.0.0.2"],
        ["2026-03-01 23:59:00", "cw-a", "查看完整记录", HH_A, TOWN_A, "璧城街道", "入户走访核实需求", "网页",
         "10.0.0.1"],
    ]  # fmt: skip


def test_the_xlsx_export_in_english_keeps_the_filters(client_as, logged):
    response = client_as("admin").get(f"/admin/access-log/export?format=xlsx&town={TOWN_A}&lang=en")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheets = pd.read_excel(io.BytesIO(response.data), sheet_name=None, dtype=str, engine="calamine")
    assert list(sheets) == ["Access log"]
    table = sheets["Access log"].fillna("")
    assert list(table.columns) == [
        "Time (Beijing time)", "User", "Type", "Household ID", "Town code", "Town", "Reason", "Channel", "IP address"
    ]  # fmt: skip
    assert table[["User", "Household ID", "Town", "Reason", "Channel"]].values.tolist() == [
        ["cw-a", HH_A, "Bicheng Subdistrict", "'=HYPERLINK(\"http://x\",\"看\")", "Command line"],
        ["cw-a", HH_A, "Bicheng Subdistrict", "入户走访核实需求", "Web"],
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("format=pdf", "导出格式“pdf”无效：请选择 CSV 或 XLSX。"),
        ("format=csv&to=2026-02-30", "结束日期“2026-02-30”不是有效日期"),
    ],
)
def test_a_bad_export_request_gets_a_clear_message_not_a_file(client_as, logged, query, message):
    response = client_as("admin").get(f"/admin/access-log/export?{query}")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert message in response.get_data(as_text=True)


def test_viewing_and_exporting_leave_the_access_log_unchanged_and_go_to_the_app_log(app, client_as, logged, caplog):
    admin = client_as("admin")
    with app.app_context():
        before = get_store().access_log()
    with caplog.at_level("INFO", logger="webmap.views.admin"):
        admin.get(f"/admin/access-log?user=cw-a&town={TOWN_A}")
        admin.get("/admin/access-log/export?format=csv")
    with app.app_context():
        assert get_store().access_log() == before
    assert f"admin viewed the access log (user=cw-a, town={TOWN_A}, kind=full): page 1, 2 rows of 2" in caplog.messages
    assert "admin exported the access log as csv (kind=full): 3 rows" in caplog.messages


@pytest.mark.parametrize("reason", ["x", "xxxx", "1234", "看看看看", "  "])
def test_a_full_view_without_a_real_reason_is_refused_on_the_web_and_the_api_and_not_logged(app, client_as, reason):
    client = client_as("caseworker_a")
    token = csrf_token(client, "/account")
    web = client.post(f"/caseworker/household/{HH_A}/full", data={"reason": reason, "csrf_token": token})
    api = client.post(f"/api/households/{HH_A}/full", json={"reason": reason}, headers={"X-CSRFToken": token})
    assert (web.status_code, api.status_code) == (400, 400)
    with app.app_context():
        assert get_store().access_log() == []


def test_every_write_to_the_access_log_goes_through_layers_privacy():
    """Only layers.privacy appends to the access log: its full-view path checks the reason (`check_reason`)."""
    root = Path(__file__).resolve().parents[2]
    writers = sorted(
        str(path.relative_to(root))
        for folder in ("layers", "webmap", "analyses", "geo")
        for path in (root / folder).rglob("*.py")
        if ".log_access(" in path.read_text(encoding="utf-8") or "access_log_table.insert" in path.read_text(
            encoding="utf-8"
        )
    )
    assert writers == ["layers/privacy.py", "layers/store/api.py"]
    store_source = (root / "layers/store/api.py").read_text(encoding="utf-8")
    assert store_source.count("access_log_table.insert") == 1  # in Store.log_access only
