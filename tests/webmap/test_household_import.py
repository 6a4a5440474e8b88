"""The household ledger import page: dry run with the masked diff, confirm once, town scoping, options.

Every test runs on SQLite and on the real PostgreSQL server (``database_url``). The store starts
without households; the ledgers are rows of the district's demo table (real towns, villages and
points), so every expected value below is read off those rows by hand.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from openpyxl import Workbook

from layers import schema, users
from layers.district import load_district
from tests.webmap.staff_fixtures import ACCOUNTS, cheap_hash, csrf_token, log_in
from webmap import create_app
from webmap.store import get_store

PATH = "/households/import/"
#: The demo rows used (town 500120001 = 璧城街道 = caseworker_a's, 500120002 = caseworker_b's).
HH1, HH2, HH_B = "HH-00001", "HH-00002", "HH-00119"
_CHANGES = re.compile(r'<tr><td class="num">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>')
_PROBLEMS = re.compile(
    r'<tr><td class="num">([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>'
)


@pytest.fixture(scope="module")
def demo_rows():
    table = pd.read_csv(load_district().demo_dir / "household.csv", dtype=str).set_index("id", drop=False)
    assert table.loc[HH_B, "town_code"] == "500120002" and table.loc[HH1, "town_code"] == "500120001"
    return table


@pytest.fixture
def app(database_url, tmp_path, app_cache_dir, monkeypatch):
    monkeypatch.setattr(users, "generate_password_hash", cheap_hash)
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "DATABASE_URL": database_url,
                      "ENCRYPTION_KEY": Fernet.generate_key(), "CACHE_DIR": str(app_cache_dir),
                      "HOUSEHOLD_IMPORT_DIR": str(tmp_path / "imports")})  # fmt: skip
    with app.app_context():
        for name, role, towns in ACCOUNTS.values():
            users.add_user(get_store(), name, role=role, password="demo password 123", towns=towns)
    yield app
    with app.app_context():
        get_store().close()


def _client(app, key):
    client = app.test_client()
    if key != "public":
        assert log_in(client, ACCOUNTS[key][0]).status_code == 302
    return client


def _csv(rows: pd.DataFrame, *, encoding="utf-8-sig", tail="") -> bytes:
    return (rows.to_csv(index=False) + tail).encode(encoding)


def _xlsx(rows: pd.DataFrame) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(rows.columns))
    for row in rows.itertuples(index=False):
        sheet.append([None if pd.isna(v) else v for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _check(client, content: bytes, name="台账.csv", **form):
    data = {"csrf_token": csrf_token(client, PATH), "action": "check", "file": (io.BytesIO(content), name), **form}
    return client.post(PATH, data=data, content_type="multipart/form-data")


def _token(response) -> str:
    match = re.search(r'name="token" value="([^"]+)"', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)
    return match.group(1)


def _confirm(client, token):
    return client.post(PATH, data={"csrf_token": csrf_token(client, PATH), "action": "confirm", "token": token})


def _stored(app) -> dict[str, dict]:
    with app.app_context():
        store = get_store()
        ids = list(store.statuses(schema.HOUSEHOLD))
        return store.records(schema.HOUSEHOLD, ids) if ids else {}


def _store_two(app, demo_rows):
    client = _client(app, "caseworker_a")
    assert _confirm(client, _token(_check(client, _csv(demo_rows.loc[[HH1, HH2]])))).status_code == 302
    return client


@pytest.mark.parametrize(("key", "expected"), [("public", 302), ("caseworker_a", 200), ("bureau", 403),
                                                ("planner", 403), ("admin", 200)])  # fmt: skip
def test_who_may_open_the_page(app, key, expected):
    assert _client(app, key).get(PATH).status_code == expected


def test_dry_run_then_confirm_stores_and_the_same_token_is_refused_again(app, demo_rows, caplog):
    client = _client(app, "caseworker_a")
    response = _check(client, _xlsx(demo_rows.loc[[HH1, HH2]]), name="台账.xlsx")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "2 行全部通过检查：将新增 2 户，更新 0 户" in html
    assert _stored(app) == {}  # a dry run writes nothing
    token = _token(response)
    caplog.set_level(logging.INFO, logger="webmap.views.household_import")
    done = _confirm(client, token)
    assert done.status_code == 302 and done.headers["Location"].endswith(PATH)
    assert "已导入：新增 2 户，更新 0 户，未变 0 户。" in client.get(PATH).get_data(as_text=True)
    stored = _stored(app)
    assert sorted(stored) == [HH1, HH2] and stored[HH1][schema.NAME] == "孙敏"
    logged = [r.getMessage() for r in caplog.records if "imported a household ledger" in r.getMessage()]
    assert logged == ["cw-a (caseworker) imported a household ledger: 2 rows (2 new, 0 updated, 0 unchanged)"]
    assert "孙敏" not in caplog.text and "500227194401116803" not in caplog.text
    again = _confirm(client, token)
    assert again.status_code == 400 and "没有待确认的导入" in again.get_data(as_text=True)
    assert list(Path(app.config["HOUSEHOLD_IMPORT_DIR"]).iterdir()) == []  # the file and its metadata are gone


def test_the_dry_run_shows_each_changed_field_masked_and_the_token_of_another_user_is_refused(app, demo_rows):
    client = _store_two(app, demo_rows)
    changed = demo_rows.loc[[HH1, HH2]].copy()
    changed.loc[HH1, "name"] = "孙小敏"
    changed.loc[HH1, "phone"] = "13900001111"
    changed.loc[HH2, "status"] = "completed"
    response = _check(client, _csv(changed))
    html = response.get_data(as_text=True)
    assert "将新增 0 户，更新 2 户" in html
    assert _CHANGES.findall(html) == [
        ("2", HH1, "姓名", "孙*", "孙*"),
        ("2", HH1, "联系电话", "136****7846", "139****1111"),
        ("3", HH2, "状态", "in_progress", "completed"),
    ]
    assert "13900001111" not in html and "孙小敏" not in html
    with app.app_context():  # the masked stored values shown are one bulk read in the access log
        log = [(r["actor"], r["feature_id"], r["reason"], r["channel"]) for r in get_store().access_log()]
    assert len(log) == 1 and log[0][:2] == ("cw-a", "*") and log[0][3] == "web"
    assert log[0][2].startswith("bulk read of 2 rows: dry run of import of ") and log[0][2].endswith(" into household")
    token = _token(response)
    other = _client(app, "admin")
    refused = _confirm(other, token)
    assert refused.status_code == 400 and "没有待确认的导入" in refused.get_data(as_text=True)
    assert _stored(app)[HH1][schema.PHONE] == "13624947846"
    assert _confirm(client, token).status_code == 302
    assert _stored(app)[HH1][schema.PHONE] == "13900001111"


def test_an_admin_sees_no_personal_value_in_the_diff(app, demo_rows):
    _store_two(app, demo_rows)
    changed = demo_rows.loc[[HH1]].copy()
    changed.loc[HH1, "phone"] = "13900001111"
    changed.loc[HH1, "status"] = "in_progress"
    html = _check(_client(app, "admin"), _csv(changed)).get_data(as_text=True)
    assert _CHANGES.findall(html) == [
        ("2", HH1, "状态", "approved", "in_progress"),
        ("2", HH1, "联系电话", "（已隐藏）", "（已隐藏）"),
    ]


def test_a_caseworker_cannot_import_rows_of_another_town(app, demo_rows):
    client = _client(app, "caseworker_b")
    response = _check(client, _csv(demo_rows.loc[[HH_B, HH1]]))
    html = response.get_data(as_text=True)
    assert "没有导入任何数据" in html and 'name="token"' not in html
    assert _PROBLEMS.findall(html) == [
        ("3", HH1, "town_code", "500120001", "不是您负责的镇街",
         "这一行的户属于您负责范围以外的镇街：只能导入本人负责镇街的户；请从文件中删去这一行，或请该镇街的工作人员导入。"),
    ]  # fmt: skip
    assert _stored(app) == {}
    _store_two(app, demo_rows)  # caseworker_a stores HH1 in town A
    moved = demo_rows.loc[[HH1]].copy()
    moved["town_code"], moved["village_code"] = "500120002", demo_rows.loc[HH_B, "village_code"]
    moved["lon"], moved["lat"] = demo_rows.loc[HH_B, "lon"], demo_rows.loc[HH_B, "lat"]
    moved["更正"] = "是"  # a correction moving the household: still not caseworker_b's to write
    html = _check(client, _csv(moved)).get_data(as_text=True)
    assert [p[:5] for p in _PROBLEMS.findall(html)] == [("2", HH1, "town_code", "500120001", "不是您负责的镇街")]
    assert _stored(app)[HH1][schema.TOWN_CODE] == "500120001"


def test_fifteen_rows_of_another_town_are_ten_rows_and_a_summary_row(app, demo_rows):
    """caseworker_b checks 15 households of 璧城街道 (file rows 2-16): 15 problems counted, 10 listed, 1 summary."""
    rows = demo_rows[demo_rows["town_code"] == "500120001"].head(15)
    html = _check(_client(app, "caseworker_b"), _csv(rows)).get_data(as_text=True)
    assert "发现 15 个问题，涉及 15 行中的 15 行。" in html and 'name="token"' not in html
    listed = _PROBLEMS.findall(html)
    assert [p[:3] for p in listed] == [(str(r), rows["id"].iloc[r - 2], "town_code") for r in range(2, 12)]
    summary = re.findall(r'<tr class="problems-summary">' + "<td[^>]*>([^<]*)</td>" * 6, html)
    fix = "另有 5 行有同样的问题（不是您负责的镇街），在“town_code”列：第 12–16 行；改正方法同上。"
    assert summary == [("12–16", "", "town_code", "", "不是您负责的镇街", fix)]
    assert _stored(app) == {}


def test_blank_cells_keep_stored_values_unless_the_box_is_ticked(app, demo_rows):
    client = _store_two(app, demo_rows)
    blank = demo_rows.loc[[HH1]].copy()
    blank.loc[HH1, "needs"] = None
    html = _check(client, _csv(blank)).get_data(as_text=True)
    assert _CHANGES.findall(html) == [] and "空白单元格保留已存的值" in html
    assert _confirm(client, _token(_check(client, _csv(blank)))).status_code == 302
    assert _stored(app)[HH1]["needs"] == "厨房改造；门槛去除"
    response = _check(client, _csv(blank), blank_clears="on")
    html = response.get_data(as_text=True)
    assert _CHANGES.findall(html) == [("2", HH1, "改造需求", "厨房改造；门槛去除", "")]
    assert 'id="h-blank-clears" name="blank_clears" type="checkbox" checked' in html
    assert _confirm(client, _token(response)).status_code == 302
    assert _stored(app)[HH1].get("needs") is None


def test_a_gbk_csv_with_a_totals_row_and_the_legal_basis_chosen_in_the_form(app, demo_rows):
    rows = demo_rows.loc[[HH1, HH2]].drop(columns=["legal_basis"])
    content = _csv(rows, encoding="gbk", tail="合计,2,,,,,,,,,,,,,,\n")
    client = _client(app, "caseworker_a")
    html = _check(client, content).get_data(as_text=True)
    problems = _PROBLEMS.findall(html)
    assert [p[0] for p in problems] == ["整个文件"] and "请在下方的“处理依据”中为整个文件选择" in problems[0][5]
    response = _check(client, content, legal_basis="consent")
    html = response.get_data(as_text=True)
    assert "文件编码：GBK/GB18030" in html and "第 4 行是合计行，已跳过" in html
    assert "2 行全部通过检查" in html
    assert _confirm(client, _token(response)).status_code == 302
    stored = _stored(app)
    assert sorted(stored) == [HH1, HH2] and stored[HH2][schema.NAME] == "石龙"
    assert {r[schema.LEGAL_BASIS] for r in stored.values()} == {"consent"}


def test_a_tab_separated_txt_export_is_checked_and_imported(app, demo_rows):
    # as registries export ledgers: tab-separated text in GBK, uploaded as .txt
    content = demo_rows.loc[[HH1, HH2]].to_csv(sep="\t", index=False).encode("gbk")
    client = _client(app, "caseworker_a")
    response = _check(client, content, name="导出.txt")
    html = response.get_data(as_text=True)
    assert "分隔符：制表符 (tab)" in html and "文件编码：GBK/GB18030" in html
    assert _confirm(client, _token(response)).status_code == 302
    assert sorted(_stored(app)) == [HH1, HH2]


@pytest.mark.parametrize(
    ("form", "content", "name", "expected"),
    [
        ({"datum": "utm"}, b"id\n", "a.csv", "坐标系只能是"),
        ({"legal_basis": "whim"}, b"id\n", "a.csv", "处理依据只能是"),
        ({}, b"id\n", "a.xls", "只能上传 XLSX、CSV 或 TXT 文件"),
        ({}, b"not a zip", "a.xlsx", "无法读取文件"),
    ],
)
def test_bad_uploads_get_a_message_not_a_500(app, form, content, name, expected):
    response = _check(_client(app, "caseworker_a"), content, name=name, **form)
    assert response.status_code == 400 and expected in response.get_data(as_text=True)


def test_a_body_over_max_content_length_gets_the_413_page(app):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    client = _client(app, "caseworker_a")
    response = _check(client, b"x" * 10_000)
    assert response.status_code == 413
