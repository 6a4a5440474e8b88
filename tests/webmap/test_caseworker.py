"""Tests for the caseworker pages (webmap.views.caseworker) on the Bishan demo store."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
import pytest
import sqlalchemy as sa

from analyses.costs import Placer
from analyses.visits import order_visits
from layers import schema
from layers.store import features_table
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import ROLE_KEYS, TOWN_A, csrf_token
from webmap.store import get_store
from webmap.views.caseworker import format_leg_minutes

demo_key, demo_db = staff_fixtures.demo_key, staff_fixtures.demo_db
demo_households = staff_fixtures.demo_households
app, client, client_as = staff_fixtures.app, staff_fixtures.client, staff_fixtures.client_as

HH_A = "HH-00013"  # 璧城街道 (town A), status surveyed, version 1
HH_B = "HH-00119"  # 璧泉街道 (town B)
REASON = {"reason": "入户走访核实需求"}
_LIST_COUNT = re.compile(r"改造户名单（(\d+) 户）")


@pytest.fixture(scope="session")
def demo_cache(app_cache_dir):
    """Share the session's prepared Bishan network with the analysis tests (built once, ~30 s)."""
    return app_cache_dir


# Expected status per role, in ROLE_KEYS order: public, caseworker_a, caseworker_b, bureau, planner, admin.
MATRIX = [
    ("GET", "/caseworker/", None, (302, 200, 200, 403, 403, 403)),
    ("GET", f"/caseworker/household/{HH_A}", None, (302, 200, 404, 403, 403, 403)),
    ("GET", f"/caseworker/household/{HH_B}", None, (302, 404, 200, 403, 403, 403)),
    ("GET", "/caseworker/household/HH-99999", None, (302, 404, 404, 403, 403, 403)),
    ("POST", f"/caseworker/household/{HH_A}/full", REASON, (302, 200, 404, 403, 403, 403)),
    (
        "POST",
        f"/caseworker/household/{HH_A}/status",
        {"status": "approved", "version": "1"},
        (302, 302, 404, 403, 403, 403),
    ),  # fmt: skip
    ("GET", "/caseworker/visits", None, (302, 200, 200, 403, 403, 403)),
    ("GET", f"/caseworker/visits?id={HH_B}", None, (302, 404, 200, 403, 403, 403)),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, _b, _e in MATRIX])
def test_every_route_for_every_role(client_as, method, path, body, expected):
    for role_key, status in zip(ROLE_KEYS, expected, strict=True):
        client = client_as(role_key)
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data={**body, "csrf_token": csrf_token(client)})
        assert response.status_code == status, (role_key, path, response.get_data(as_text=True)[:300])
        if role_key == "public":
            assert "/login" in response.headers["Location"]


def test_out_of_town_household_is_404_and_logged_without_personal_data(client_as, caplog, demo_households):
    name = demo_households.set_index("id").loc[HH_B, "name"]
    with caplog.at_level(logging.WARNING, logger="webmap.views.api"):
        response = client_as("caseworker_a").get(f"/caseworker/household/{HH_B}")
    assert response.status_code == 404
    assert name not in response.get_data(as_text=True)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(HH_B in m and "cw-a" in m for m in messages)
    assert not any(name in m for m in messages)


def test_list_shows_own_town_masked(client_as, demo_households):
    page = client_as("caseworker_a").get("/caseworker/").get_data(as_text=True)
    town_a = demo_households[demo_households["town_code"] == TOWN_A]
    assert _LIST_COUNT.search(page).group(1) == str(len(town_a))
    row = town_a.set_index("id").loc[HH_A]
    assert row["name"] not in page and row["id_number"] not in page and row["phone"] not in page
    assert f'href="/caseworker/household/{HH_A}"' in page
    others = demo_households[demo_households["town_code"] != TOWN_A]["id"]
    assert not any(f">{hid}<" in page for hid in others)
    assert not re.search(r'(src|href)="https?://', page)


@pytest.mark.parametrize(
    ("query", "select"),
    [
        ("status=surveyed", lambda h: h["status"] == "surveyed"),
        ("status=surveyed&status=declined", lambda h: h["status"].isin(["surveyed", "declined"])),
        ("village=500120001001", lambda h: h["village_code"] == "500120001001"),
        ("category=4", lambda h: h["disability_category"] == "4"),
        ("grade=1&category=4", lambda h: (h["disability_grade"] == "1") & (h["disability_category"] == "4")),
        ("need=扶手", lambda h: h["needs"].fillna("").str.contains("扶手")),
    ],
)
def test_filters(client_as, demo_households, query, select):
    town_a = demo_households[demo_households["town_code"] == TOWN_A]
    expected = int(select(town_a).sum())
    assert 0 < expected < len(town_a)
    page = client_as("caseworker_a").get(f"/caseworker/?{query}").get_data(as_text=True)
    assert _LIST_COUNT.search(page).group(1) == str(expected)


def test_bad_filters(client_as):
    client = client_as("caseworker_a")
    assert client.get("/caseworker/?status=done").status_code == 400
    assert client.get("/caseworker/?village=500120002001").status_code == 404  # a village of town B


def test_progress_block_counts_own_towns(client_as, demo_households):
    town_a = demo_households[demo_households["town_code"] == TOWN_A]
    in_need = int((town_a["status"] != "declined").sum())
    modified = int(town_a["status"].isin(["completed", "verified"]).sum())
    page = client_as("caseworker_a").get("/caseworker/").get_data(as_text=True)
    assert f"已完工或已验收 {modified} 户 / 需改造 {in_need} 户" in page
    assert f"{modified / in_need * 100:.1f}%" in page
    assert "规划目标：100%" in page


def test_reveal_shows_full_record_once_and_writes_the_access_log(app, client_as, demo_households):
    row = demo_households.set_index("id").loc[HH_A]
    client = client_as("caseworker_a")
    masked = client.get(f"/caseworker/household/{HH_A}").get_data(as_text=True)
    assert row["name"] not in masked and row["id_number"] not in masked
    response = client.post(f"/caseworker/household/{HH_A}/full", data={**REASON, "csrf_token": csrf_token(client)})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert row["name"] in page and row["id_number"] in page and row["phone"] in page
    with app.app_context():
        log = get_store().access_log()
    assert [(e["actor"], e["feature_id"], e["reason"]) for e in log] == [("cw-a", HH_A, REASON["reason"])]
    assert row["name"] not in client.get(f"/caseworker/household/{HH_A}").get_data(as_text=True)


def test_reveal_without_reason_is_refused_and_not_logged(app, client_as, demo_households):
    client = client_as("caseworker_a")
    response = client.post(f"/caseworker/household/{HH_A}/full", data={"reason": " ", "csrf_token": csrf_token(client)})
    assert response.status_code == 400
    assert "理由" in response.get_data(as_text=True)
    assert demo_households.set_index("id").loc[HH_A, "name"] not in response.get_data(as_text=True)
    with app.app_context():
        assert get_store().access_log() == []


@pytest.mark.parametrize("reason", ["x", "xxxx", "1234"])
def test_a_reason_that_says_nothing_is_refused_with_the_rule_and_not_logged(app, client_as, reason):
    client = client_as("caseworker_a")
    form = {"reason": reason, "csrf_token": csrf_token(client)}
    response = client.post(f"/caseworker/household/{HH_A}/full", data=form)
    assert response.status_code == 400
    assert "至少 4 个字，其中至少 2 个汉字或字母" in response.get_data(as_text=True)
    with app.app_context():
        assert get_store().access_log() == []


def test_the_address_is_masked_to_town_and_village_until_revealed_and_the_log_has_channel_and_ip(
    app, client_as, demo_households
):
    address = demo_households.set_index("id").loc[HH_A, "address"]  # 璧山区璧城街道…社区…街…号
    kept = re.match(r".*?(?:社区|村)", address).group()
    client = client_as("caseworker_a")
    for page in (client.get("/caseworker/").get_data(as_text=True),
                 client.get(f"/caseworker/household/{HH_A}").get_data(as_text=True)):  # fmt: skip
        assert f"{kept}****" in page and address not in page
    response = client.post(f"/caseworker/household/{HH_A}/full", data={**REASON, "csrf_token": csrf_token(client)})
    assert address in response.get_data(as_text=True)
    with app.app_context():
        log = get_store().access_log()
    (entry,) = [e for e in log if e["feature_id"] != "*"]  # the list page's bulk read is logged too
    assert (entry["channel"], entry["ip"]) == ("web", "127.0.0.1")
    bulk = [e for e in log if e["feature_id"] == "*"]
    assert bulk and {(e["channel"], e["ip"]) for e in bulk} == {("web", "127.0.0.1")}


def test_reveal_needs_csrf(client_as):
    assert client_as("caseworker_a").post(f"/caseworker/household/{HH_A}/full", data=REASON).status_code == 400


def test_household_page_offers_next_statuses_and_the_version(client_as):
    page = client_as("caseworker_a").get(f"/caseworker/household/{HH_A}").get_data(as_text=True)
    assert '<input type="hidden" name="version" value="1">' in page
    options = re.findall(r'<option value="([a-z_]+)">', page)
    assert options == ["approved", "declined"]


def test_status_change_follows_the_workflow_and_appears_in_history(app, client_as):
    client = client_as("caseworker_a")
    response = client.post(
        f"/caseworker/household/{HH_A}/status",
        data={"status": "approved", "version": "1", "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "状态已改为“已审批”（第 2 版）" in page
    assert "已摸底 → 已审批" in page and "<td>cw-a</td>" in page
    with app.app_context():
        row = get_store().feature(schema.HOUSEHOLD, HH_A)
    assert (row[schema.STATUS], row[schema.VERSION], row[schema.UPDATED_BY]) == ("approved", 2, "cw-a")


def test_household_page_shows_times_in_beijing_time(app, client_as):
    client = client_as("caseworker_a")
    with app.app_context():  # a known last-change time: 16:30 UTC on 1 January is 00:30 on 2 January in Beijing
        with get_store().engine.begin() as conn:
            at = datetime(2026, 1, 1, 16, 30, tzinfo=UTC)
            conn.execute(sa.update(features_table).where(features_table.c.id == HH_A).values(updated_at=at))
        stored = get_store().history(schema.HOUSEHOLD, HH_A)[0]["at"]  # history is append-only
    stored = stored if stored.tzinfo else stored.replace(tzinfo=UTC)  # SQLite returns UTC without a zone
    imported = stored.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    page = client.get(f"/caseworker/household/{HH_A}").get_data(as_text=True)
    assert "时间（北京时间）" in page and "UTC" not in page
    assert f"<tr><td>{imported}</td>" in page  # the history row (the import)
    assert "2026-01-02 00:30:00）" in page  # the version line
    assert "2026-01-01" not in page


def test_workflow_refusal_leaves_the_row_unchanged(app, client_as):
    client = client_as("caseworker_a")
    response = client.post(
        f"/caseworker/household/{HH_A}/status",
        data={"status": "verified", "version": "1", "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 400
    assert "状态不能从“已摸底”改为“已验收”；可以改为：已审批、已放弃。" in response.get_data(as_text=True)
    with app.app_context():
        row = get_store().feature(schema.HOUSEHOLD, HH_A)
    assert (row[schema.STATUS], row[schema.VERSION]) == ("surveyed", 1)


def test_stale_edit_names_who_changed_it_and_overwrites_nothing(app, client_as):
    client = client_as("caseworker_a")
    form = client.get(f"/caseworker/household/{HH_A}").get_data(as_text=True)
    version = re.search(r'name="version" value="(\d+)"', form).group(1)
    with app.app_context():  # another session saves first
        get_store().update_feature(schema.HOUSEHOLD, HH_A, {schema.STATUS: "approved"}, version=1, user="colleague")
    response = client.post(
        f"/caseworker/household/{HH_A}/status",
        data={"status": "declined", "version": version, "csrf_token": csrf_token(client)},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "此记录已被 colleague 于 " in page and "现为第 2 版，您编辑的是第 1 版" in page
    assert "没有覆盖任何内容" in page
    assert f'<a href="/caseworker/household/{HH_A}">重新载入最新记录</a>' in page
    with app.app_context():
        row = get_store().feature(schema.HOUSEHOLD, HH_A)
    assert (row[schema.STATUS], row[schema.VERSION], row[schema.UPDATED_BY]) == ("approved", 2, "colleague")


def test_bad_status_form_values(client_as):
    client = client_as("caseworker_a")
    token = csrf_token(client)
    url = f"/caseworker/household/{HH_A}/status"
    assert client.post(url, data={"status": "done", "version": "1", "csrf_token": token}).status_code == 400
    assert client.post(url, data={"status": "approved", "version": "x", "csrf_token": token}).status_code == 400


def test_visits_page_orders_the_picked_households(app, client_as, bishan, bishan_net, demo_households):
    town_a = demo_households[(demo_households["town_code"] == TOWN_A) & (demo_households["status"] != "declined")]
    picked = town_a["id"].iloc[[0, 20, 40, 60]].tolist()
    client = client_as("caseworker_a")
    query = "&".join(f"id={hid}" for hid in picked)
    response = client.get(f"/caseworker/visits?start={TOWN_A}&{query}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page[:500]

    with app.app_context():
        stored = get_store().features(schema.HOUSEHOLD, towns=(TOWN_A,)).set_index(schema.ID, drop=False).loc[picked]
    seat = bishan.towns[bishan.towns[schema.TOWN_CODE] == TOWN_A].iloc[0]
    start = gpd.GeoDataFrame(geometry=gpd.points_from_xy([seat["seat_lon"]], [seat["seat_lat"]]), crs="EPSG:4326")
    route = order_visits(Placer(bishan_net), start, stored)
    shown = re.findall(r'<tr><td>\d+</td><th scope="row">(HH-\d+)</th>', page)
    assert shown == list(route.order)
    assert f"全程约 <strong>{route.total_length_m / 1000:.1f} 公里</strong>" in page
    assert f"用时约 <strong>{route.total_time_s / 60:.0f} 分钟</strong>" in page
    assert "走访顺序（从璧城街道驻地出发，驾车）" in page
    assert "未知属性策略：" in page
    assert "size: A4 portrait" in page
    assert 'stop-number\\"\\u003e1\\u003c' in page  # the numbered stop icons, JSON-escaped in the map script
    names = demo_households.set_index("id").loc[picked, "name"]
    assert not any(name in page for name in names)
    exported = client.get(f"/caseworker/visits?start={TOWN_A}&{query}&format=xlsx")
    table = pd.read_excel(io.BytesIO(exported.data), engine="calamine", dtype=str)
    assert list(table.columns[:3]) == ["顺序", "家庭编号", "镇街代码"]
    assert list(table.columns[-2:]) == ["本段距离（米）", "本段用时（分钟）"]
    assert table["家庭编号"].tolist() == list(route.order)
    assert table["本段距离（米）"].astype(int).tolist() == [round(v) for v in route.leg_length_m]
    assert not set(names) & set(table["姓名（已脱敏）"])
    english = client.get(f"/caseworker/visits?start={TOWN_A}&{query}&format=csv&lang=en")
    columns = pd.read_csv(io.BytesIO(english.data), encoding="utf-8-sig").columns
    assert list(columns[-2:]) == ["Leg distance (m)", "Leg time (min)"]


def test_visits_refusals(client_as):
    client = client_as("caseworker_a")
    response = client.get("/caseworker/visits?start=500120002")  # town B's seat
    assert response.status_code == 404
    assert "出发点 &#39;500120002&#39; 不是您负责的镇街" in response.get_data(as_text=True)
    assert client.get(f"/caseworker/visits?id={HH_A}&weight=fast").status_code == 400
    assert client.get(f"/caseworker/visits?id={HH_A}&profile=bike").status_code == 400
    assert client.get(f"/caseworker/visits?start=hh:{HH_B}").status_code == 404  # town B's household


def test_26_households_get_a_message_and_keep_the_selection(client_as, demo_households):
    town_a = demo_households[(demo_households["town_code"] == TOWN_A) & (demo_households["status"] != "declined")]
    picked = town_a["id"].iloc[:26].tolist()
    response = client_as("caseworker_a").get("/caseworker/visits?" + "&".join(f"id={hid}" for hid in picked))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "一次最多安排 25 户走访，您选了 26 户。请取消勾选 1 户后再排顺序；已选的家庭仍保留在下方。" in page
    checked = re.findall(r'name="id" value="(HH-\d+)" id="pick-HH-\d+" checked', page)
    assert checked == picked
    english = client_as("caseworker_a").get("/caseworker/visits?lang=en&" + "&".join(f"id={h}" for h in picked))
    assert "at most 25 households" in english.get_data(as_text=True)


@pytest.mark.parametrize(
    ("seconds", "zh", "en"),
    [(0, "< 1 分钟", "< 1 min"), (59.9, "< 1 分钟", "< 1 min"), (60, "1 分钟", "1 min"),
     (89, "1 分钟", "1 min"), (151, "3 分钟", "3 min")],
)  # fmt: skip
def test_leg_minutes_under_one_minute_are_not_zero(app, seconds, zh, en):
    with app.test_request_context("/"):
        assert format_leg_minutes(seconds) == zh
    with app.test_request_context("/?lang=en"):
        assert format_leg_minutes(seconds) == en


def test_start_point_choices(app, client_as, bishan, bishan_net, demo_households):
    town_a = demo_households[(demo_households["town_code"] == TOWN_A) & (demo_households["status"] != "declined")]
    picked = town_a["id"].iloc[[0, 20, 40]].tolist()
    query = "&".join(f"id={hid}" for hid in picked)
    client = client_as("caseworker_a")
    # from a household: the route is the one `order_visits` makes from that household's stored point
    first = picked[1]
    page = client.get(f"/caseworker/visits?start=hh:{first}&{query}").get_data(as_text=True)
    assert f"从家庭 {first}出发" in page
    with app.app_context():
        stored = get_store().features(schema.HOUSEHOLD, towns=(TOWN_A,)).set_index(schema.ID, drop=False)
    route = order_visits(Placer(bishan_net), stored.loc[[first]], stored.loc[picked])
    stop = r'<tr><td>(\d+)</td><th scope="row">(HH-\d+)</th>.*?<td>([\d.]+)</td><td class="leg-time">([^<]+)</td>'
    rows = re.findall(stop, page)
    assert [r[1] for r in rows] == list(route.order)
    assert [r[3] for r in rows] == [
        "&lt; 1 分钟" if t < 60 else f"{round(t / 60)} 分钟" for t in route.leg_time_s
    ]
    # from the device's location: the town seat's coordinates give the same route as the seat itself
    seat = bishan.towns[bishan.towns[schema.TOWN_CODE] == TOWN_A].iloc[0]
    here = client.get(f"/caseworker/visits?start=here&lat={seat['seat_lat']}&lon={seat['seat_lon']}&{query}")
    from_seat = client.get(f"/caseworker/visits?start={TOWN_A}&{query}")
    order = re.compile(r'<tr><td>\d+</td><th scope="row">(HH-\d+)</th>')
    assert here.status_code == 200 and "从当前位置出发" in here.get_data(as_text=True)
    assert order.findall(here.get_data(as_text=True)) == order.findall(from_seat.get_data(as_text=True))
    # no coordinates, or a place outside the district: a message naming the value and the fix
    missing = client.get(f"/caseworker/visits?start=here&{query}")
    assert missing.status_code == 400
    assert "没有收到有效的经纬度（lat=&#39;&#39;，lon=&#39;&#39;）" in missing.get_data(as_text=True)
    far = client.get(f"/caseworker/visits?start=here&lat=39.9&lon=116.4&{query}")
    assert far.status_code == 400
    assert "当前位置（纬度 39.90000，经度 116.40000）不在" in far.get_data(as_text=True)
    # from an office listed in district.toml ([[offices]]): placed at the seat here, so the seat's route
    import dataclasses

    from layers.district import Office

    office = Office("璧城街道便民服务中心", float(seat["seat_lon"]), float(seat["seat_lat"]))
    app.extensions["accessplan_district"] = dataclasses.replace(bishan, offices=(office,))
    try:
        offered = client.get(f"/caseworker/visits?{query}").get_data(as_text=True)
        assert '<option value="office:0">璧城街道便民服务中心</option>' in offered
        from_office = client.get(f"/caseworker/visits?start=office:0&{query}").get_data(as_text=True)
        assert "从璧城街道便民服务中心出发" in from_office
        assert order.findall(from_office) == order.findall(from_seat.get_data(as_text=True))
        unknown = client.get(f"/caseworker/visits?start=office:3&{query}")
        assert unknown.status_code == 400 and "不是本区登记的办公地点" in unknown.get_data(as_text=True)
    finally:
        app.extensions.pop("accessplan_district")


def test_offices_are_read_from_district_toml_and_checked(tmp_path):
    import shutil

    from layers.district import DEFAULT_DISTRICT_DIR, Office, load_district
    from layers.errors import DistrictDataError

    folder = tmp_path / "bishan"
    shutil.copytree(DEFAULT_DISTRICT_DIR, folder, ignore=shutil.ignore_patterns("*.bz2", "*.tif", "demo", "plan"))
    toml = folder / "district.toml"
    base = toml.read_text(encoding="utf-8")
    toml.write_text(base + '\n[[offices]]\nname = "区残联"\nlon = 106.2272\nlat = 29.5925\n', encoding="utf-8")
    assert load_district(folder).offices == (Office("区残联", 106.2272, 29.5925),)
    toml.write_text(base + '\n[[offices]]\nname = "区残联"\nlon = "东"\nlat = 29.5925\n', encoding="utf-8")
    with pytest.raises(DistrictDataError, match=r"第 1 个 \[\[offices\]\] 须有 name、lon、lat.*entry 1 needs"):
        load_district(folder)


def test_walking_profile_is_used_and_named(client_as, bishan_net, demo_households):
    town_a = demo_households[(demo_households["town_code"] == TOWN_A) & (demo_households["status"] != "declined")]
    query = "&".join(f"id={hid}" for hid in town_a["id"].iloc[[0, 20]])
    client = client_as("caseworker_a")
    walk = client.get(f"/caseworker/visits?profile=walk&{query}").get_data(as_text=True)
    drive = client.get(f"/caseworker/visits?profile=drive&{query}").get_data(as_text=True)
    assert "，步行）" in walk and "，驾车）" in drive
    minutes = re.compile(r"用时约 <strong>(\d+) 分钟</strong>")
    assert int(minutes.search(walk).group(1)) > int(minutes.search(drive).group(1))


def test_household_export_xlsx_csv_headers_masking_and_access_log(app, client_as, demo_households):
    with app.app_context():
        store = get_store()
        store.update_feature(schema.HOUSEHOLD, HH_A, {schema.NEEDS: "=HYPERLINK(\"http://x\")"}, version=1, user="t")
    client = client_as("caseworker_a")
    response = client.get("/caseworker/export.xlsx?status=surveyed")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].endswith('.xlsx"')
    table = pd.read_excel(io.BytesIO(response.data), engine="calamine", dtype=str)
    assert list(table.columns) == ["家庭编号", "镇街代码", "镇街", "村（社区）代码", "村（社区）", "姓名（已脱敏）",
                                   "地址（已脱敏）", "残疾类别", "残疾等级", "改造需求", "状态"]  # fmt: skip
    expected = demo_households[(demo_households["town_code"] == TOWN_A) & (demo_households["status"] == "surveyed")]
    assert sorted(table["家庭编号"]) == sorted(expected["id"])
    row = table.set_index("家庭编号").loc[HH_A]
    assert (row["镇街代码"], row["镇街"], row["状态"]) == (TOWN_A, "璧城街道", "已摸底")
    assert row["改造需求"] == "'=HYPERLINK(\"http://x\")"
    names = set(demo_households["name"])
    assert not names & set(table["姓名（已脱敏）"])
    csv = client.get("/caseworker/export.csv?lang=en")
    english = pd.read_csv(io.BytesIO(csv.data), dtype=str, encoding="utf-8-sig")
    assert list(english.columns)[:3] == ["Household ID", "Town code", "Town"]
    assert len(english) == (demo_households["town_code"] == TOWN_A).sum()
    with app.app_context():
        log = get_store().access_log()
    bulk = [(e["actor"], e["feature_id"], e["reason"]) for e in log if e["feature_id"] == "*"]
    n = (demo_households["town_code"] == TOWN_A).sum()  # the caller's towns are read, then filtered
    reason = "bulk read of {n} rows (caseworker): GET /caseworker/export.{fmt}"
    assert bulk == [("cw-a", "*", reason.format(n=n, fmt=fmt)) for fmt in ("xlsx", "csv")]
    assert client.get("/caseworker/export.pdf").status_code == 404
    assert client_as("planner").get("/caseworker/export.csv").status_code == 403


def test_nav_link_for_caseworkers_only(client_as):
    assert 'href="/caseworker/"' in client_as("caseworker_a").get("/account").get_data(as_text=True)
    assert 'href="/caseworker/"' not in client_as("planner").get("/account").get_data(as_text=True)


def test_visit_log_appends_corrections_shows_history_and_exports(app, client_as, caplog):
    client = client_as("caseworker_a")
    url = f"/caseworker/household/{HH_A}/visit-log"
    form = {"visited_on": "2026-11-23", "found": "门槛高 12 厘米", "next_step": "报审批"}
    form["csrf_token"] = csrf_token(client)
    with caplog.at_level(logging.DEBUG):
        first = client.post(url, data=form)
        assert first.status_code == 302 and "门槛" not in first.headers["Location"]
        second = client.post(url, data={**form, "found": "=门槛高 15 厘米", "corrects": "1"})
        assert second.status_code == 302
    assert not any("门槛" in r.getMessage() or "审批" in r.getMessage() for r in caplog.records)  # never in logs
    page = client.get(f"/caseworker/household/{HH_A}").get_data(as_text=True)
    assert "<td>1</td><td>2026-11-23</td><td>cw-a</td><td>门槛高 12 厘米</td><td>报审批</td><td></td>" in page
    assert "<td>2</td><td>2026-11-23</td><td>cw-a</td><td>=门槛高 15 厘米</td><td>报审批</td><td>1</td>" in page
    exported = client.get(f"{url}.csv")
    table = pd.read_csv(io.BytesIO(exported.data), dtype=str, encoding="utf-8-sig", keep_default_na=False)
    headers = ["序号", "走访日期", "走访人", "发现情况", "下一步", "更正第几条", "记录时间（北京时间）"]
    assert list(table.columns) == headers
    assert table[["序号", "发现情况", "更正第几条"]].values.tolist() == [
        ["1", "门槛高 12 厘米", ""], ["2", "'=门槛高 15 厘米", "1"]  # formula-safe
    ]  # fmt: skip
    english = client.get(f"{url}.xlsx?lang=en")
    columns = pd.read_excel(io.BytesIO(english.data), engine="calamine").columns
    assert list(columns)[:3] == ["No.", "Visit date", "Visited by"]
    # another town's caseworker neither reads, writes nor exports it
    other = client_as("caseworker_b")
    assert other.get(f"{url}.csv").status_code == 404
    assert other.post(url, data={**form, "csrf_token": csrf_token(other)}).status_code == 404
    assert "门槛" not in other.get(f"/caseworker/household/{HH_A}").get_data(as_text=True)
    with app.app_context():
        assert [v["seq"] for v in get_store().visits(HH_A)] == [1, 2]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("visited_on", "23/11/2026", "走访日期“23/11/2026”无效：请填写 YYYY-MM-DD 格式的日期，例如 2026-11-23。"),
        ("visited_on", "2999-01-01", "走访日期 2999-01-01 晚于今天：请填写已完成走访的日期。"),
        ("found", "  ", "“发现情况”不能为空：请填写。"),
        ("corrects", "7", "要更正的记录“7”不是本户的走访记录：请从列表中选择。"),
    ],
)
def test_bad_visit_log_entries_are_refused_with_the_field_and_the_fix(app, client_as, field, value, message):
    client = client_as("caseworker_a")
    form = {"visited_on": "2026-11-23", "found": "门槛高", "next_step": "报审批", "csrf_token": csrf_token(client)}
    response = client.post(f"/caseworker/household/{HH_A}/visit-log", data={**form, field: value})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert get_store().visits(HH_A) == []


def test_caseworker_maps_are_fitted_to_their_points_and_the_route_map_has_roads(app, bishan):
    from webmap.maps.base import render_map_parts
    from webmap.maps.households import households_map

    points = gpd.GeoDataFrame(
        {schema.ID: ["HH-1", "HH-2"], schema.STATUS: ["surveyed", "approved"]},
        geometry=gpd.points_from_xy([106.20, 106.22], [29.58, 29.60]), crs="EPSG:4326",
    )  # fmt: skip
    start = gpd.GeoDataFrame(geometry=gpd.points_from_xy([106.21], [29.57]), crs="EPSG:4326")
    route = type("Route", (), {"order": ("HH-1", "HH-2"), "unreachable": ()})()
    roads = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
        "highway": "primary", "name": "璧山大道"}, "geometry": {"type": "LineString",
        "coordinates": [[106.20, 29.58], [106.22, 29.60]]}}]}  # fmt: skip
    bounds = re.compile(r"fitBounds\(\s*(\[\[.*?\]\])", re.DOTALL)
    with app.test_request_context("/"):
        towns = (TOWN_A,)
        listing = render_map_parts(households_map(bishan, points, towns=towns)).script
        routed = render_map_parts(households_map(bishan, points, towns=towns, route=route, start=start, roads=roads))
    assert json.loads(bounds.search(listing).group(1)) == [[29.58, 106.20], [29.60, 106.22]]
    assert json.loads(bounds.search(routed.script).group(1)) == [[29.57, 106.20], [29.60, 106.22]]  # the start too
    road = json.dumps("璧山大道")[1:-1]  # as the map's JSON spells it
    assert road in routed.script and road not in listing


def test_wheelchair_route_uses_the_chosen_unknown_policy_and_says_so(app, client_as, bishan, demo_households):
    from dataclasses import replace

    from analyses.costs import CostSettings, load_district_network

    town_a = demo_households[(demo_households["town_code"] == TOWN_A) & (demo_households["status"] != "declined")]
    picked = town_a["id"].iloc[[0, 20, 40]].tolist()
    query = "&".join(f"id={hid}" for hid in picked)
    client = client_as("caseworker_a")
    assert client.get(f"/caseworker/visits?policy=loose&{query}").status_code == 400
    with app.app_context():
        stored = get_store().features(schema.HOUSEHOLD, towns=(TOWN_A,)).set_index(schema.ID, drop=False).loc[picked]
        settings = CostSettings.from_config(app.config)
        cache = Path(app.config["CACHE_DIR"]) / "networks"
    seat = bishan.towns[bishan.towns[schema.TOWN_CODE] == TOWN_A].iloc[0]
    start = gpd.GeoDataFrame(geometry=gpd.points_from_xy([seat["seat_lon"]], [seat["seat_lat"]]), crs="EPSG:4326")
    # the demo roads carry no wheelchair tags: strict leaves no usable piece, and the page says so
    strict = client.get(f"/caseworker/visits?profile=wheelchair&policy=strict&{query}")
    assert strict.status_code == 200
    assert ("按“轮椅”和未知属性策略“严格（属性未知的路段视为不可通行）”，路网中没有可用的路段，无法排出路线。"
            "请改选“宽松”策略或其他出行方式。") in strict.get_data(as_text=True)  # fmt: skip
    page = client.get(f"/caseworker/visits?profile=wheelchair&policy=lenient&{query}").get_data(as_text=True)
    assert "，轮椅）" in page and "未知属性策略：宽松（属性未知的路段视为可通行）。" in page
    net = load_district_network(bishan, cache_dir=cache, settings=replace(settings, unknown="lenient"))
    route = order_visits(Placer(net), start, stored, profile="wheelchair")
    assert re.findall(r'<tr><td>\d+</td><th scope="row">(HH-\d+)</th>', page) == list(route.order)
    assert f"全程约 <strong>{route.total_length_m / 1000:.1f} 公里</strong>" in page
