from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from analyses.runs.coverage import coverage_change
from layers import schema
from layers.district import load_district
from layers.store import features_table
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import ROLE_KEYS, csrf_token
from webmap.runs import app_placer
from webmap.store import get_store

demo_key, demo_db, demo_cache = staff_fixtures.demo_key, staff_fixtures.demo_db, staff_fixtures.demo_cache
client, client_as = staff_fixtures.client, staff_fixtures.client_as


@pytest.fixture
def app(tmp_path, demo_db, demo_key, demo_cache, monkeypatch):
    """The staff app, with uploads waiting for confirmation in the test's own folder."""
    for app in staff_fixtures.app.__wrapped__(tmp_path, demo_db, demo_key, demo_cache, monkeypatch):
        app.config["TOILET_IMPORT_DIR"] = str(tmp_path / "imports")
        yield app


TOILET = "AT-026"  # rebuild, planned, version 1 in the demo data
EDIT = {"version": "1", "status": "under_construction", "contractor": "重庆某建设工程有限公司"}

# Expected status per role, in ROLE_KEYS order: public, caseworker_a, caseworker_b, bureau, planner, admin.
MATRIX = [
    ("GET", "/toilets/", None, (302, 403, 403, 200, 200, 200)),
    ("GET", "/toilets/?build_type=new&status=planned", None, (302, 403, 403, 200, 200, 200)),
    ("GET", f"/toilets/{TOILET}", None, (302, 403, 403, 200, 200, 200)),
    ("GET", "/toilets/AT-999", None, (302, 403, 403, 404, 404, 404)),
    ("GET", "/toilets/AT-999/reach", None, (302, 403, 403, 404, 404, 404)),
    ("GET", "/toilets/suggest?n=0", None, (302, 403, 403, 400, 400, 400)),
    ("POST", "/toilets/suggest", {"n": "0"}, (302, 403, 403, 400, 400, 400)),
    ("POST", f"/toilets/{TOILET}", EDIT, (302, 403, 403, 302, 403, 302)),
    ("GET", "/toilets/import", None, (302, 403, 403, 200, 403, 200)),
    ("GET", "/toilets/export.csv", None, (302, 403, 403, 200, 200, 200)),
    ("POST", "/toilets/import", {"action": "check"}, (302, 403, 403, 400, 403, 400)),
    ("POST", "/toilets/import", {"action": "confirm", "token": "x" * 32}, (302, 403, 403, 400, 403, 400)),
]


def _request(client, method, path, body):
    if method == "GET":
        return client.get(path)
    token = csrf_token(client)  # every POST carries a valid token: the matrix tests roles, not CSRF
    return client.post(path, data={**body, "csrf_token": token})


@pytest.mark.parametrize("role", ROLE_KEYS)
@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX)
def test_every_route_for_every_role(client_as, role, method, path, body, expected):
    response = _request(client_as(role), method, path, body)
    assert response.status_code == expected[ROLE_KEYS.index(role)]
    if response.status_code == 302 and role == "public":
        assert response.headers["Location"].startswith("/login")


def test_the_matrix_covers_every_route(app):
    covered = {re.sub(r"\?.*", "", path) for _, path, _, _ in MATRIX}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("toilets."):
            pattern = re.sub(r"<[^>]+>", "[^/]+", rule.rule)
            assert any(re.fullmatch(pattern, p) for p in covered), rule.rule


def _demo_toilets() -> pd.DataFrame:
    return pd.read_csv(load_district().demo_dir / "accessible_toilet.csv", dtype=str)


def _cells(html: str, row_id: str) -> list[str]:
    row = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]


def test_progress_bars_match_the_demo_data(client_as):
    demo = _demo_toilets()
    html = client_as("planner").get("/toilets/").get_data(as_text=True)
    programme = demo[demo["build_type"].isin(["rebuild", "new"])]
    accepted = programme[programme["status"] == "accepted"]
    assert f"合计：已验收 {len(accepted)} / 38 座" in html
    for build_type in ("rebuild", "new"):
        of_type = programme[programme["build_type"] == build_type]
        n = int((of_type["status"] == "accepted").sum())
        cells = _cells(html, f"progress-{build_type}")
        assert cells[2] == f"{n} / 19"
        assert cells[3:] == [
            str(int((of_type["status"] == s).sum())) for s in ("completed", "under_construction", "planned")
        ]
        assert f'<progress max="19" value="{n}"' in html
    for town, group in programme.groupby("town_code"):
        n = int((group["status"] == "accepted").sum())
        cells = _cells(html, f"progress-town-{town}")
        assert cells[2] == f"{n} / {len(group)}"
        assert f'<progress max="{len(group)}" value="{n}"' in html


def test_register_filters_by_build_type_status_and_town(client_as):
    demo = _demo_toilets()
    town = demo["town_code"].iloc[0]
    expected = demo[(demo["build_type"] == "new") & (demo["status"] == "planned") & (demo["town_code"] == town)]
    html = client_as("bureau").get(f"/toilets/?build_type=new&status=planned&town={town}").get_data(as_text=True)
    assert f"符合条件的无障碍厕所：{len(expected)} 座" in html
    programme = demo[demo["build_type"].isin(["rebuild", "new"])]
    html = client_as("bureau").get("/toilets/").get_data(as_text=True)
    assert f"符合条件的无障碍厕所：{len(programme)} 座" in html
    assert not re.search(r"""(src|href)=["']https?://""", html)  # the map is served offline
    assert client_as("bureau").get("/toilets/?status=done").status_code == 400


def test_an_edit_moves_the_status_one_step_and_writes_history(client_as, app):
    client = client_as("bureau")
    token = csrf_token(client, f"/toilets/{TOILET}")
    response = client.post(f"/toilets/{TOILET}", data={**EDIT, "room_area_m2": "4.2", "csrf_token": token})
    assert response.status_code == 302
    html = client.get(f"/toilets/{TOILET}").get_data(as_text=True)
    assert "规划中 → 在建" in html and "施工单位" in html
    with app.app_context():
        row = get_store().feature(schema.ACCESSIBLE_TOILET, TOILET)
    assert (row[schema.STATUS], row[schema.CONTRACTOR], row["room_area_m2"], row[schema.VERSION]) == (
        "under_construction", "重庆某建设工程有限公司", 4.2, 2,
    )  # fmt: skip
    skip = client.post(f"/toilets/{TOILET}", data={"version": "2", "status": "accepted", "csrf_token": token})
    assert skip.status_code == 400
    assert "没有保存" in skip.get_data(as_text=True)


def test_register_and_detail_show_times_in_beijing_time(client_as, app):
    client = client_as("bureau")
    with app.app_context():  # a known last-change time: 16:30 UTC on 1 January is 00:30 on 2 January in Beijing
        with get_store().engine.begin() as conn:
            at = datetime(2026, 1, 1, 16, 30, tzinfo=UTC)
            conn.execute(sa.update(features_table).where(features_table.c.id == TOILET).values(updated_at=at))
        stored = get_store().history(schema.ACCESSIBLE_TOILET, TOILET)[0]["at"]  # history is append-only
    stored = stored if stored.tzinfo else stored.replace(tzinfo=UTC)  # SQLite returns UTC without a zone
    imported = stored.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    html = client.get(f"/toilets/{TOILET}").get_data(as_text=True)
    assert "时间（北京时间）" in html
    assert f"<tr><td>{imported}</td>" in html  # the history row (the import)
    assert "2026-01-02 00:30:00 修改" in html  # the version line
    assert "2026-01-01" not in html
    listing = client.get("/toilets/").get_data(as_text=True)
    assert "最后修改（北京时间）" in listing
    row = re.search(rf"<td>{TOILET}</td>.*?</tr>", listing, re.S).group(0)
    assert row.endswith("<td>2026-01-02 00:30</td>\n      </tr>")


def test_a_stale_edit_names_who_changed_the_row_and_changes_nothing(client_as, app):
    first, second = client_as("bureau"), client_as("admin")
    token = csrf_token(first, f"/toilets/{TOILET}")
    assert first.post(f"/toilets/{TOILET}", data={**EDIT, "csrf_token": token}).status_code == 302
    with app.app_context():
        before = get_store().feature(schema.ACCESSIBLE_TOILET, TOILET)
    token = csrf_token(second, f"/toilets/{TOILET}")
    stale = {"version": "1", "status": "under_construction", "contractor": "另一家公司", "csrf_token": token}
    response = second.post(f"/toilets/{TOILET}", data=stale)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "已被 bureau 于" in html and "现为第 2 版，您编辑的是第 1 版" in html
    with app.app_context():
        after = get_store().feature(schema.ACCESSIBLE_TOILET, TOILET)
        history = get_store().history(schema.ACCESSIBLE_TOILET, TOILET)
    assert after == before
    assert len(history) == 2


HEADERS = ["编号", "名称", "镇街", "详细地址", "经度", "纬度", "状态", "建设类型", "施工单位", "计划完工日期", "门净宽"]


def _xlsx(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


GOOD_ROWS = [
    [
        "AT-101",
        "新建测试公厕一",
        "璧城街道",
        "璧城街道测试路1号",
        106.227,
        29.591,
        "规划",
        "新建",
        "甲公司",
        "2025-06-30",
        900,
    ],
    [
        "AT-102",
        "新建测试公厕二",
        "璧泉街道",
        "璧泉街道测试路2号",
        106.20,
        29.59,
        "在建",
        "新建",
        "乙公司",
        "2025-09-30",
        850,
    ],
]


def _upload(client, content: bytes, *, datum: str = "wgs84", name: str = "台账.xlsx"):
    token = csrf_token(client, "/toilets/import")
    data = {"csrf_token": token, "action": "check", "datum": datum, "file": (io.BytesIO(content), name)}
    return client.post("/toilets/import", data=data, content_type="multipart/form-data"), token


def _pending_files(app) -> list[Path]:
    folder = Path(app.config["TOILET_IMPORT_DIR"])
    return sorted(folder.glob("*")) if folder.exists() else []


def _token(response) -> str:
    match = re.search(r'name="token" value="([^"]+)"', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)
    return match.group(1)


def _confirm(client, token: str):
    data = {"csrf_token": csrf_token(client, "/toilets/import"), "action": "confirm", "token": token}
    return client.post("/toilets/import", data=data)


def _n_toilets(app) -> int:
    with app.app_context():
        return get_store().count(schema.ACCESSIBLE_TOILET)


def test_a_spreadsheet_with_one_bad_row_shows_that_row_and_imports_nothing(client_as, app):
    client = client_as("bureau")
    bad = ["AT-103", "新建测试公厕三", "璧城街道", "测试路3号", 106.227, 29.591, "规划", "新建", "丙公司", "明年", 900]
    with app.app_context():
        n_before = get_store().count(schema.ACCESSIBLE_TOILET)
    response, _ = _upload(client, _xlsx([*GOOD_ROWS, bad]))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "没有导入任何数据" in html
    problems = re.findall(r"<tr><td class=\"num\">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", html)
    assert problems == [("4", "AT-103", "计划完工日期", "明年")]  # header is row 1
    assert "确认导入" not in html
    with app.app_context():
        assert get_store().count(schema.ACCESSIBLE_TOILET) == n_before
    assert _pending_files(app) == []


def test_a_good_spreadsheet_imports_only_after_confirmation(client_as, app):
    client = client_as("bureau")
    with app.app_context():
        n_before = get_store().count(schema.ACCESSIBLE_TOILET)
    response, token = _upload(client, _xlsx(GOOD_ROWS), name="../../etc/台账.xlsx")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "2 行全部通过检查：将新增 2 条，更新 0 条" in html
    files = _pending_files(app)  # the file under its token beside its metadata, never under the uploader's name
    assert [p.suffix for p in files] == [".json", ".xlsx"] and not any("台账" in p.name for p in files)
    with app.app_context():
        assert get_store().count(schema.ACCESSIBLE_TOILET) == n_before  # a dry run writes nothing
    upload_token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    assert (
        client.post("/toilets/import", data={"csrf_token": token, "action": "confirm", "token": "y" * 32}).status_code
        == 400
    )
    confirm = client.post("/toilets/import", data={"csrf_token": token, "action": "confirm", "token": upload_token})
    assert confirm.status_code == 302
    assert "新增 2 条" in client.get(confirm.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        assert get_store().count(schema.ACCESSIBLE_TOILET) == n_before + 2
        row = get_store().feature(schema.ACCESSIBLE_TOILET, "AT-102")
    assert (row[schema.STATUS], row[schema.BUILD_TYPE], row[schema.CONTRACTOR]) == (
        "under_construction",
        "new",
        "乙公司",
    )
    assert _pending_files(app) == []
    again = client.post("/toilets/import", data={"csrf_token": token, "action": "confirm", "token": upload_token})
    assert again.status_code == 400  # a token is good for one import only


def test_a_second_confirmation_of_the_same_token_is_refused_and_imports_nothing_more(client_as, app):
    client = client_as("bureau")
    token = _token(_upload(client, _xlsx(GOOD_ROWS))[0])
    assert _confirm(client, token).status_code == 302
    with app.app_context():  # edited after the import: a second run of the file would set 乙公司 again
        get_store().update_feature(schema.ACCESSIBLE_TOILET, "AT-102", {schema.CONTRACTOR: "丁公司"}, version=1,
                                   user="test")  # fmt: skip
    n_after = _n_toilets(app)
    again = _confirm(client, token)
    assert again.status_code == 400
    assert "没有待确认的导入（可能已导入、已过期或已被新的上传取代）：请重新上传文件。" in again.get_data(as_text=True)
    with client.session_transaction() as session:  # as a request racing the first, sent with the same cookie
        session["toilet_import"] = token
    assert _confirm(client, token).status_code == 400
    with app.app_context():
        assert get_store().feature(schema.ACCESSIBLE_TOILET, "AT-102")[schema.CONTRACTOR] == "丁公司"
    assert _n_toilets(app) == n_after and _pending_files(app) == []


def test_a_file_changed_on_disk_between_dry_run_and_confirmation_is_refused(client_as, app):
    client = client_as("bureau")
    n_before = _n_toilets(app)
    token = _token(_upload(client, _xlsx(GOOD_ROWS[:1]))[0])
    (path,) = [p for p in _pending_files(app) if p.suffix == ".xlsx"]
    path.write_bytes(_xlsx(GOOD_ROWS))  # not the file that was checked
    refused = _confirm(client, token)
    assert refused.status_code == 400 and "没有待确认的导入" in refused.get_data(as_text=True)
    assert _n_toilets(app) == n_before and _pending_files(app) == []


def test_the_token_of_another_user_is_refused(client_as, app):
    bureau, admin = client_as("bureau"), client_as("admin")
    n_before = _n_toilets(app)
    token = _token(_upload(bureau, _xlsx(GOOD_ROWS))[0])
    refused = _confirm(admin, token)
    assert refused.status_code == 400 and "没有待确认的导入" in refused.get_data(as_text=True)
    assert _n_toilets(app) == n_before
    assert _confirm(bureau, token).status_code == 302  # the uploader's file still waits for the uploader
    assert _n_toilets(app) == n_before + 2
    again = [list(row) for row in GOOD_ROWS]
    again[1][6] = "已完工"
    token = _token(_upload(bureau, _xlsx(again))[0])
    with admin.session_transaction() as session:  # even with the token in the session it is not the admin's file
        session["toilet_import"] = token
    assert _confirm(admin, token).status_code == 400
    with app.app_context():
        assert get_store().feature(schema.ACCESSIBLE_TOILET, "AT-102")[schema.STATUS] == "under_construction"


def test_an_upload_without_datum_or_of_the_wrong_type_is_refused(client_as, app):
    client = client_as("admin")
    response, _ = _upload(client, _xlsx(GOOD_ROWS), datum="")
    html = response.get_data(as_text=True)
    assert "没有导入任何数据" in html and "datum" in html
    response, _ = _upload(client, b"MZ\x90\x00", name="tool.exe")
    assert response.status_code == 400
    assert "只能上传 XLSX、CSV 或 TXT" in response.get_data(as_text=True)
    assert _pending_files(app) == []


def test_an_upload_over_the_size_limit_is_refused(client_as, app):
    app.config["TOILET_IMPORT_MAX_BYTES"] = 1000
    response, _ = _upload(client_as("bureau"), _xlsx(GOOD_ROWS))
    assert response.status_code == 413
    assert "文件太大" in response.get_data(as_text=True)
    assert _pending_files(app) == []


def _wide_xlsx() -> bytes:
    """The issue's file in small: a value in column XFD (the old reader held 8,000 such rows in 3.5 GB)."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADERS)
    for i, row in enumerate(GOOD_ROWS, start=2):
        sheet.append(row)
        sheet.cell(row=i, column=16384).value = 1
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", ["无法读取文件", "is not an XLSX workbook"]),
        (b"PK\x03\x04 not really a zip", ["无法读取文件", "is not an XLSX workbook"]),
        ("cut", ["无法读取文件"]),
        ("wide", ["文件超出导入上限，未导入任何数据", "column XFD", "at most 256 columns"]),
    ],
)
def test_an_empty_damaged_or_oversized_spreadsheet_is_a_message_not_a_500(client_as, app, content, expected):
    if content == "cut":
        content = _xlsx(GOOD_ROWS)[:-100]
    elif content == "wide":
        content = _wide_xlsx()
    response, _ = _upload(client_as("bureau"), content)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert all(text in html for text in expected), html
    assert "确认导入" not in html and _pending_files(app) == []


def test_a_body_over_max_content_length_gets_a_friendly_413_page(client_as, app):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    client = client_as("bureau")
    token = csrf_token(client, "/toilets/import")
    data = {"csrf_token": token, "action": "check", "datum": "wgs84", "file": (io.BytesIO(b"x" * 10_000), "a.csv")}
    response = client.post("/toilets/import", data=data, content_type="multipart/form-data")
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "请求太大：最多 0.00390625 MB。请上传更小的文件。" in html and "<h1>" in html
    data["file"] = (io.BytesIO(b"x" * 10_000), "a.csv")
    english = client.post("/toilets/import?lang=en", data=data, content_type="multipart/form-data")
    assert english.status_code == 413 and "Request too large" in english.get_data(as_text=True)
    assert _pending_files(app) == []


def test_a_filled_down_id_lists_five_rows_per_problem(client_as, app):
    rows = [[*GOOD_ROWS[0][:1], *GOOD_ROWS[0][1:]] for _ in range(300)]  # AT-101 filled down 300 rows
    response, _ = _upload(client_as("bureau"), _xlsx(rows))
    html = response.get_data(as_text=True)
    assert "发现 300 个问题，涉及 300 行中的 300 行。" in html
    assert html.count("每个编号只能用一次。共 300 行：第 2, 3, 4, 5, 6 … 行。") == 10  # the first 10, then a summary
    assert "另有 290 行有同样的问题（编号重复），在“编号”列：第 12–301 行；改正方法同上。" in html
    assert len(html) < 30 * 1000  # the old page listed 300 rows on each of 300 lines, then 300 lines


def _summary_rows(html: str) -> list[tuple[str, ...]]:
    return re.findall(r'<tr class="problems-summary">' + "<td[^>]*>([^<]*)</td>" * 6 + "</tr>", html)


def test_a_town_filled_down_60_rows_shows_ten_rows_and_one_summary_row(client_as, app):
    """60 new rows (file rows 2-61), all in 黄泥镇 (no town of the district): the page counts 60 problems, lists
    rows 2-11 and sums up the other 50 in one row that names its rows, the column and the rule, no value."""
    rows = [[f"AT-{i}", "测试公厕", "黄泥镇", "测试路", 106.227, 29.591, "规划", "新建", "甲", "2025-06-30", 900]
            for i in range(201, 261)]  # fmt: skip
    response, _ = _upload(client_as("bureau"), _xlsx(rows))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "发现 60 个问题，涉及 60 行中的 60 行。" in html and "没有导入任何数据" in html
    listed = re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>', html)
    assert listed == [(str(r), f"AT-{r + 199}", "镇街", "黄泥镇") for r in range(2, 12)]
    fix = "另有 50 行有同样的问题（镇街不对），在“镇街”列：第 12–61 行；改正方法同上。"
    assert _summary_rows(html) == [("12–61", "", "镇街", "", "镇街不对", fix)]
    assert 'id="problems-grouped"' in html
    assert _n_toilets(app) == len(_demo_toilets())
    english = client_as("bureau")
    english.get("/toilets/import", query_string={"lang": "en"})  # the cookie keeps English for the upload
    html = _upload(english, _xlsx(rows))[0].get_data(as_text=True)
    assert _summary_rows(html)[0][5] == (
        "50 more row(s) with the same problem (Unknown town) in column “镇街”: rows 12–61; fix them as above."
    )


def test_an_accepted_toilet_shows_coverage_without_and_with_it(client_as, app, app_cache_dir):
    import geopandas as gpd

    from webmap.views import toilets

    app.config["CACHE_DIR"] = str(app_cache_dir)  # the session's prepared Bishan network
    html = client_as("planner").get("/toilets/AT-001").get_data(as_text=True)
    summary = re.search(r'id="coverage-summary">全区：之前 ([\d.]+)%，之后 ([\d.]+)%；新增覆盖 (\d+) 个网格点', html)
    assert summary, html[html.find('id="coverage"') :][:500]
    with app.test_request_context():
        accepted = get_store().features(schema.ACCESSIBLE_TOILET, statuses=("accepted",))
        demand = toilets._demand()
        result = coverage_change(app_placer(), accepted, "AT-001", demand, profile="walk", threshold="300m")
    column = "covered_300m"
    new = result.after.points[column] & ~result.before.points[column]
    assert int(new.sum()) == int(summary.group(3))
    assert float(summary.group(2)) >= float(summary.group(1))
    # Every newly covered point is within 300 m of AT-001 in a straight line (the network is never shorter).
    toilet = accepted[accepted[schema.ID] == "AT-001"].to_crs(load_district().crs).geometry.iloc[0]
    points = gpd.GeoSeries(demand.set_index(schema.ID).geometry, crs="EPSG:4326").to_crs(load_district().crs)
    assert (points.loc[new[new].index].distance(toilet) <= 300.0 + 1e-6).all()
    # Without AT-001 in the accepted set, "before" is the same as measuring the others alone.
    assert result.before.parameters["n_facilities"] == len(accepted) - 1


def test_a_turning_diameter_of_minus_5_is_refused_on_the_edit_form_and_in_an_upload(client_as, app):
    client = client_as("bureau")
    token = csrf_token(client, f"/toilets/{TOILET}")
    response = client.post(f"/toilets/{TOILET}", data={**EDIT, "turning_diameter_m": "-5", "csrf_token": token})
    assert response.status_code == 400
    assert "轮椅回转直径 应在 0 到 10 之间，收到 -5" in response.get_data(as_text=True)
    with app.app_context():
        assert get_store().feature(schema.ACCESSIBLE_TOILET, TOILET)[schema.VERSION] == 1
    upload = (Path(__file__).resolve().parents[1] / "data" / "ledgers" / "toilet_negative_turning.csv").read_bytes()
    response, _ = _upload(client, upload, datum="", name="台账.csv")
    html = response.get_data(as_text=True)
    assert "没有导入任何数据" in html
    assert re.search(r'<tr><td class="num">2</td><td>AT-900</td><td>[^<]*</td><td>-5</td><td>超出范围</td>', html)


def test_a_blank_cell_keeps_the_stored_value_unless_the_box_is_ticked_and_the_check_shows_each_change(client_as, app):
    client = client_as("bureau")
    response, token = _upload(client, _xlsx(GOOD_ROWS))
    upload_token = re.search(r'name="token" value="([^"]+)"', response.get_data(as_text=True)).group(1)
    client.post("/toilets/import", data={"csrf_token": token, "action": "confirm", "token": upload_token})
    again = [list(GOOD_ROWS[0]), list(GOOD_ROWS[1])]
    again[0][8] = None  # 施工单位 blank
    again[1][6] = "已完工"  # 在建 → 已完工
    response, _ = _upload(client, _xlsx(again))
    html = response.get_data(as_text=True)
    assert "将新增 0 条，更新 2 条" in html
    changes = re.findall(
        r"<tr><td class=\"num\">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", html
    )
    assert changes == [("3", "AT-102", "状态", "under_construction", "completed")]  # the blank 施工单位 is kept
    token = csrf_token(client, "/toilets/import")
    data = {"csrf_token": token, "action": "check", "datum": "wgs84", "blank_clears": "on",
            "file": (io.BytesIO(_xlsx(again)), "台账.xlsx")}  # fmt: skip
    html = client.post("/toilets/import", data=data, content_type="multipart/form-data").get_data(as_text=True)
    changes = re.findall(
        r"<tr><td class=\"num\">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", html
    )
    assert changes == [
        ("2", "AT-101", "施工单位", "甲公司", ""),
        ("3", "AT-102", "状态", "under_construction", "completed"),
    ]
    assert 'id="i-blank-clears" name="blank_clears" type="checkbox" checked' in html


# --- overdue, GB 50763 check, export ---------------------------------------------------------------


def test_register_flags_overdue_toilets_against_a_fixed_beijing_date(client_as, app):
    app.config["TOILET_TODAY"] = "2025-07-04"  # AT-033 was due 2025-07-03, AT-038 is due 2025-07-12
    html = client_as("bureau").get("/toilets/").get_data(as_text=True)
    at033 = re.search(r"<td>AT-033</td>.*?</tr>", html, re.S).group(0)
    at038 = re.search(r"<td>AT-038</td>.*?</tr>", html, re.S).group(0)
    at028 = re.search(r"<td>AT-028</td>.*?</tr>", html, re.S).group(0)  # completed 2024: never overdue
    assert "逾期 1 天" in at033 and '<td class="overdue-cell">否</td>' in at038
    assert '<td class="overdue-cell">否</td>' in at028
    demo = _demo_toilets()
    programme = demo[demo["build_type"].isin(["rebuild", "new"]) & ~demo["status"].isin(["completed", "accepted"])]
    late = programme[programme["planned_completion"] < "2025-07-04"]
    assert f"按北京时间 2025-07-04）：{len(late)} 座" in html
    app.config["TOILET_TODAY"] = "2025-07-03"  # due today: not overdue yet
    html = client_as("bureau").get("/toilets/").get_data(as_text=True)
    assert "逾期 1 天" not in re.search(r"<td>AT-033</td>.*?</tr>", html, re.S).group(0)


def test_gb50763_failures_on_the_register_and_the_toilet_page(client_as, app, app_cache_dir):
    # AT-031 (completed): a men's cubicle without an accessible urinal (GB 50763-2012 §3.9.1)
    html = client_as("bureau").get("/toilets/").get_data(as_text=True)
    row = re.search(r"<td>AT-031</td>.*?</tr>", html, re.S).group(0)
    assert "不符合" in row and "无障碍小便器：未设置" in row
    page = client_as("bureau").get("/toilets/AT-031").get_data(as_text=True)
    assert '<p id="gb-result" class="gb-fail">结果：不符合</p>' in page
    assert "无障碍小便器：未设置（GB 50763-2012 第 3.9 节要求设置）" in page
    planned = client_as("bureau").get(f"/toilets/{TOILET}?lang=en").get_data(as_text=True)
    assert "Result: not fully surveyed" in planned
    app.config["CACHE_DIR"] = str(app_cache_dir)  # AT-005 is accepted: its page measures coverage
    existing = client_as("bureau").get("/toilets/AT-005").get_data(as_text=True)  # no planned completion date
    assert '<dd id="overdue">未记录</dd>' in existing


def test_the_register_exports_as_xlsx_and_csv_with_headers_in_both_languages(client_as, app):
    app.config["TOILET_TODAY"] = "2025-07-04"
    client = client_as("bureau")
    token = csrf_token(client, f"/toilets/{TOILET}")
    formula = '=HYPERLINK("http://x/","点击")'
    edit = {**EDIT, "contractor": formula, "csrf_token": token}
    assert client.post(f"/toilets/{TOILET}", data=edit).status_code == 302
    html = client.get("/toilets/").get_data(as_text=True)
    assert 'href="/toilets/export.xlsx?' in html and 'href="/toilets/export.csv?' in html
    response = client.get("/toilets/export.xlsx?build_type=rebuild")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    sheets = pd.read_excel(io.BytesIO(response.data), sheet_name=None, engine="calamine", dtype=str)
    register, progress = sheets["登记表"], sheets["按镇街进度"]
    assert list(register.columns)[:5] == ["编号", "镇街代码", "镇街", "村（社区）代码", "村（社区）"]
    assert {"逾期天数（天）", "GB 50763 核查结果", "门净宽（毫米）", "轮椅回转直径（米）"} <= set(register.columns)
    assert list(progress.columns) == ["镇街代码", "镇街", "已验收（座）", "登记改建和新建（座）", "验收完成率（%）"]
    demo = _demo_toilets()
    assert len(register) == int((demo["build_type"] == "rebuild").sum())
    by_id = register.set_index("编号")
    assert by_id.loc["AT-033", "逾期天数（天）"] == "1" and by_id.loc["AT-033", "是否逾期"] == "是"
    assert by_id.loc["AT-031", "GB 50763 核查结果"] == "不符合"
    assert by_id.loc[TOILET, "施工单位"] == "'" + formula  # formula-safe
    assert by_id.loc["AT-033", "村（社区）"] and by_id.loc["AT-033", "镇街"]
    for _, town in progress.iterrows():  # shares as percentages rounded to 0.1
        share = float(town["验收完成率（%）"])
        assert share == round(100 * int(town["已验收（座）"]) / int(town["登记改建和新建（座）"]), 1)
    english = client.get("/toilets/export.csv?lang=en")
    assert english.status_code == 200 and english.data.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(io.BytesIO(english.data), dtype=str, encoding="utf-8-sig")
    assert "Door clear width (mm)" in table.columns and "Days overdue (days)" in table.columns
    english_xlsx = client.get("/toilets/export.xlsx?lang=en")
    assert set(pd.read_excel(io.BytesIO(english_xlsx.data), sheet_name=None, engine="calamine")) == {
        "Register",
        "Progress by town",
    }
    assert client.get("/toilets/export.pdf").status_code == 404
    assert client.get("/toilets/export.csv?status=done").status_code == 400


def test_an_accepted_toilets_coverage_is_computed_once_per_data_version(client_as, app, app_cache_dir):
    from webmap.views import toilets

    app.config["CACHE_DIR"] = str(app_cache_dir)
    client = client_as("bureau")
    first = client.get("/toilets/AT-001").get_data(as_text=True)
    cache = app.extensions["accessplan_toilet_coverage"]
    assert len(cache) == 1
    (key,) = cache
    run = cache[key]
    with app.app_context():
        assert key[:2] == (get_store().url, get_store().data_version())
    second = client.get("/toilets/AT-001?lang=en").get_data(as_text=True)  # another language, same run
    assert len(cache) == 1 and cache[key] is run
    assert 'id="coverage-summary">全区：' in first and 'id="coverage-summary">Whole district:' in second
    token = csrf_token(client, f"/toilets/{TOILET}")
    assert client.post(f"/toilets/{TOILET}", data={**EDIT, "csrf_token": token}).status_code == 302  # a write
    assert client.get("/toilets/AT-001").status_code == 200
    assert len(cache) == 2 and list(cache)[0] == key  # recomputed for the new data version
    (new_key,) = [k for k in cache if k != key]
    assert new_key[1] > key[1] and cache[new_key] is not run
    assert toilets.COVERAGE_CACHE_SIZE >= 2


def test_a_planned_toilets_page_links_to_households_and_people_it_would_reach(client_as, app, app_cache_dir):
    import geopandas as gpd

    from analyses.inputs import villages_as_demand

    app.config["CACHE_DIR"] = str(app_cache_dir)
    client = client_as("bureau")
    demo = _demo_toilets()
    planned = demo[demo["status"] == "planned"]["id"].tolist()
    assert '<a id="reach-link" href="/toilets/AT-026/reach">' in client.get("/toilets/AT-026").get_data(as_text=True)
    district = load_district()
    villages = villages_as_demand(district.villages).to_crs(district.crs)
    added, befores = {}, set()
    for toilet_id in planned:
        response = client.get(f"/toilets/{toilet_id}/reach")
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        hb, ha, pb, pa, vb, va = map(int, re.search(
            r"户数 (\d+) → (\d+)，人口 (\d+) → (\d+)，村（社区） (\d+) → (\d+)", html).groups())  # fmt: skip
        assert ha >= hb and pa >= pb and va >= vb
        cache = app.extensions["accessplan_toilet_coverage"]
        (result,) = [v for k, v in cache.items() if k[2] == ("reach", toilet_id, "walk", "300m")]
        assert (result.total["households_before"], result.total["households_after"]) == (hb, ha)
        # every village the toilet adds is within 300 m of it in a straight line (the network is never shorter)
        row = demo[demo["id"] == toilet_id].iloc[0]
        point = gpd.GeoSeries(gpd.points_from_xy([float(row["lon"])], [float(row["lat"])]), crs="EPSG:4326")
        point = point.to_crs(district.crs).iloc[0]
        near = villages[villages.distance(point) <= 300.0]
        # the demo's villages near a planned toilet are one each, so the toilet adds that village or nothing
        assert ha - hb in (0, int(near["households"].sum())) and pa - pb in (0, int(near["population"].sum()))
        added[toilet_id] = ha - hb
        befores.add(hb)
    assert len(befores) == 1  # "before" is the accepted toilets: the same for every planned one
    # AT-059 is 31 m and AT-049 44 m from a village point (villages.csv: 500120003205 with 560 households,
    # 500120002005 with 4196): each adds exactly that village
    assert (added["AT-059"], added["AT-049"]) == (560, 4196)
    english = client.get(f"/toilets/{planned[0]}/reach?lang=en").get_data(as_text=True)
    assert "Whole district: households" in english


def _accept_a_suggestion(client, app, n=2):
    """Ask for ``n`` suggested sites, accept the first; return the site row and the new toilet's id."""
    html = client.get(f"/toilets/suggest?n={n}").get_data(as_text=True)
    sites = re.findall(r'<tr id="site-([^"]+)"><th scope="row">([^<]+)</th>', html)
    assert len(sites) == n and all("·" in place for _, place in sites)  # named by PlaceNamer, not by a node
    assert "登记表中尚缺 0 座" in html  # the demo registers all 19 new builds
    site_id, place = sites[0]
    with app.app_context():
        before = get_store().features(schema.ACCESSIBLE_TOILET)
    token = csrf_token(client, "/toilets/suggest?n=2")
    response = client.post("/toilets/suggest", data={"n": str(n), "site": site_id, "csrf_token": token})
    assert response.status_code == 302
    new_id = response.headers["Location"].rsplit("/", 1)[1]
    numbers = [int(i.split("-")[1]) for i in before[schema.ID]]
    assert new_id == f"AT-{max(numbers) + 1:03d}"
    with app.app_context():
        row = get_store().feature(schema.ACCESSIBLE_TOILET, new_id)
        history = get_store().history(schema.ACCESSIBLE_TOILET, new_id)
    assert (row[schema.STATUS], row[schema.BUILD_TYPE], row[schema.NAME]) == ("planned", "new", f"{place}（建议新建）")
    assert [(h["action"], h["actor"]) for h in history] == [("insert", "bureau")]
    stale = client.post("/toilets/suggest", data={"n": str(n), "site": "no-such-site", "csrf_token": token})
    assert stale.status_code == 400 and "已不在当前建议中" in stale.get_data(as_text=True)
    return site_id, new_id


def test_suggested_sites_and_accepting_one_on_sqlite(client_as, app, app_cache_dir):
    app.config["CACHE_DIR"] = str(app_cache_dir)
    _accept_a_suggestion(client_as("bureau"), app)
    planner = client_as("planner")
    assert "加入规划" not in planner.get("/toilets/suggest?n=2").get_data(as_text=True)
    token = csrf_token(planner, "/toilets/suggest?n=2")
    assert planner.post("/toilets/suggest", data={"n": "2", "site": "x", "csrf_token": token}).status_code == 403
    bad = client_as("bureau").get("/toilets/suggest?n=abc")
    assert bad.status_code == 400 and "建议座数应为 1 到 19 的整数" in bad.get_data(as_text=True)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_suggested_sites_and_accepting_one_on_postgresql(database_url, demo_key, app_cache_dir, monkeypatch):
    from cryptography.fernet import Fernet

    from layers import users
    from layers.crypto import BlindIndex, FieldCipher
    from layers.demo import load_demo_layers
    from layers.store import Store
    from webmap import create_app

    monkeypatch.setattr(users, "generate_password_hash", staff_fixtures.cheap_hash)
    store = Store(database_url, cipher=FieldCipher(demo_key), blind_index=BlindIndex(Fernet.generate_key()))
    load_demo_layers(store, load_district())
    users.add_user(store, "bureau", role="bureau", password=staff_fixtures.PASSWORD)
    store.close()
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "DATABASE_URL": database_url,
                      "ENCRYPTION_KEY": demo_key, "CACHE_DIR": str(app_cache_dir)})  # fmt: skip
    try:
        client = app.test_client()
        assert staff_fixtures.log_in(client, "bureau").status_code == 302
        _accept_a_suggestion(client, app)
    finally:
        app.extensions["accessplan_store"].close()
