"""Planner pages for service areas, siting and comparing two stored results (Flask test client)."""

from __future__ import annotations

import io
import shutil

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point

from layers import jobs as job_store
from layers import users
from layers.district import load_district
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import ROLE_KEYS, cheap_hash, csrf_token, log_in
from tests.webmap.test_planner import _download, _make_app, _planner
from webmap import jobs
from webmap.store import get_store

demo_key, demo_db, demo_households = staff_fixtures.demo_key, staff_fixtures.demo_db, staff_fixtures.demo_households


# 15 渝馨家园, one per town, today's 5 centres kept, households within 15 min by car (the form's defaults).
SITING_FORM = {"layer": "service_centre", "model": "max_coverage", "p": "15", "per_town": "1", "keep_existing": "on",
               "demand": "household", "profile": "drive", "threshold": "15min", "candidate_radius": "2km",
               "candidates_per_town": "8", "method": "exact", "time_limit": "60"}  # fmt: skip
AREAS_FORM = {"facilities": "service_centre", "status_filter": "in_service", "profile": "walk",
              "thresholds": "300m, 800m", "shape": "hull", "buffer_m": "50", "demand": "village"}  # fmt: skip


@pytest.fixture
def app(tmp_path, demo_db, demo_key, app_cache_dir, monkeypatch):
    monkeypatch.setattr(users, "generate_password_hash", cheap_hash)
    shutil.copyfile(demo_db, tmp_path / "accessplan.sqlite")
    app = _make_app(tmp_path / "accessplan.sqlite", demo_key, app_cache_dir, tmp_path / "jobs")
    yield app
    jobs.shutdown_worker(app)
    store = app.extensions.get("accessplan_store")
    if store is not None:
        store.close()


def _post(client, path: str, form: dict):
    return client.post(path, data={**form, "csrf_token": csrf_token(client, path)})


def _submit(client, path: str, form: dict) -> str:
    response = _post(client, path, form)
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, demo_db, demo_key, app_cache_dir):
    """One siting and one service-areas job run to the end on a copy of the demo store."""
    folder = tmp_path_factory.mktemp("planner-siting")
    shutil.copyfile(demo_db, folder / "accessplan.sqlite")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(users, "generate_password_hash", cheap_hash)
        app = _make_app(folder / "accessplan.sqlite", demo_key, app_cache_dir, folder / "jobs")
        client = _planner(app)
        siting_id = _submit(client, "/planner/siting", SITING_FORM)
        areas_id = _submit(client, "/planner/service-areas", AREAS_FORM)
        jobs.wait_for_job(app, siting_id, timeout_s=300)
        jobs.wait_for_job(app, areas_id, timeout_s=300)
        yield app, client, {"siting": siting_id, "service_areas": areas_id}, folder
        jobs.shutdown_worker(app)
        app.extensions["accessplan_store"].close()


def _job(app, job_id):
    with app.app_context():
        return job_store.get_job(get_store(), job_id)


# --- siting --------------------------------------------------------------------------------------


def test_the_siting_form_shows_the_plan_defaults(app):
    page = _planner(app).get("/planner/siting").get_data(as_text=True)
    assert 'name="p" type="number" min="1" max="500" value="15"' in page
    assert 'name="per_town" type="number" min="1" max="10" value="1"' in page
    assert 'id="keep_existing" name="keep_existing" type="checkbox" checked' in page
    assert '<option value="max_coverage" selected>' in page and '<option value="exact" selected>' in page


def test_a_siting_job_opens_one_centre_per_town_and_keeps_the_current_ones(runs):
    app, client, ids, _ = runs
    job = _job(app, ids["siting"])
    assert job.status == "done", job.error
    result, towns = job.result, load_district().towns["town_code"].astype(str)
    assert len(result["selected"]) == 15 and len(result["sites"]) == 15
    assert sorted(str(s["town_code"]) for s in result["sites"]) == sorted(towns)  # one per town
    assert [row["sites"] for row in result["by_town"]] == [1] * 15
    centres = pd.read_csv(load_district().demo_dir / "service_centre.csv", dtype=str)
    assert set(centres["id"]) <= set(result["selected"])  # the 5 open centres are kept
    assert sum(not s["new"] for s in result["sites"]) == 5 and sum(s["new"] for s in result["sites"]) == 10
    summary = result["comparison"]["summary"]
    assert (summary["sites_before"], summary["sites_after"]) == (5, 15)
    assert summary["covered_share_after"] >= summary["covered_share_before"]
    assert result["optimal"] is True
    assert job.data_versions["roads_sha256"] and job.data_versions["demand"]["rows"] == 1196
    households = sum(row["points"] for row in result["by_village"])
    assert households == sum(row["points"] for row in result["by_town"]) == 1196


def test_the_siting_page_shows_the_map_sites_and_tables(runs):
    _, client, ids, _ = runs
    page = client.get(f"/planner/jobs/{ids['siting']}").get_data(as_text=True)
    assert 'id="chosen-sites"' in page and 'id="by-town"' in page and 'id="by-village"' in page
    assert "橙色为新选站点" in page and page.index('id="map-heading"') < page.index('class="map-frame"')
    assert "folium-map" in page
    # the links from demand points to their sites come on demand, one line per assigned point
    links = client.get(f"/planner/jobs/{ids['siting']}/layers/links.geojson").get_json()
    assert f'data-layer-url="/planner/jobs/{ids["siting"]}/layers/links.geojson"' in page
    assert {f["geometry"]["type"] for f in links["features"]} == {"LineString"}
    sites = page[page.index('id="chosen-sites"') : page.index("</table>", page.index('id="chosen-sites"'))]
    assert sites.count("<td>新选</td>") == 10 and sites.count("<td>现有</td>") == 5
    assert '<strong id="n-sites">15</strong>' in page and "<progress" not in page
    # each site's place (not its code) in the sites table and in its map tooltip
    for site in _job(runs[0], ids["siting"]).result["sites"]:
        assert site["place"].count(" · ") >= 1
        assert f"<td>{site['place']}</td>" in sites and page.count(site["place"]) >= 2
    for name in load_district().towns["name"]:
        assert f'<th scope="row">{name}</th>' in page


def test_siting_downloads_parse(runs):
    _, client, ids, folder = runs
    job_id = ids["siting"]
    csv = pd.read_csv(io.BytesIO(_download(client, job_id, "csv").data), dtype={"id": str})
    assert csv["place"].str.contains(" · ").all()  # the place, in the download too
    assert len(csv) == 15 and csv["selected"].all()
    sheets = pd.read_excel(io.BytesIO(_download(client, job_id, "xlsx").data), sheet_name=None, engine="calamine")
    assert {"sites", "assignment", "by_town", "by_village", "before_after", "summary"} <= set(sheets)
    assert len(sheets["assignment"]) == 1196
    path = folder / "siting.gpkg"
    path.write_bytes(_download(client, job_id, "gpkg").data)
    assignment = gpd.read_file(path, layer="assignment")
    # covered after = cost within 15 min; before-covered points stay covered (the old sites are kept)
    assert (assignment["covered"] == (assignment["cost"] <= 900)).all()
    assert not (assignment["covered_before"] & ~assignment["covered"]).any()
    assert set(assignment["site_id"].dropna()) <= set(csv["id"])
    assert len(_download(client, job_id, "geojson").get_json()["features"]) == 15


def test_a_failed_siting_job_shows_why(app):
    client = _planner(app)
    job_id = _submit(client, "/planner/siting", {**SITING_FORM, "p": "2", "per_town": "", "method": "heuristic"})
    jobs.wait_for_job(app, job_id, timeout_s=300)
    status = client.get(f"/planner/jobs/{job_id}.json").get_json()
    assert status["status"] == "failed"
    detail = (
        "站点数 `p` = 2 少于保留的 5 个现有站点；请提高 `p`。"
        " (`p` = 2 is fewer than the 5 existing sites kept open; raise `p`.)"
    )
    assert jobs.read_keyed(status["error"]) == ("infeasible", {"detail": detail})
    assert status["error_label"] == (
        "选址模型无解：没有一组站点能同时满足站点总数 p、每个镇街的站点数和保留的现有站点。请调整这些参数。"
        f"求解器的说明：{detail}"
    )
    page = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    assert 'role="alert"' in page and "选址模型无解" in page and "fewer than the 5 existing sites" in page
    assert "少于保留的 5 个现有站点" in page  # the reason in Chinese first, not only in English


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("threshold", "far", "阈值 &#39;far&#39; 无法识别"), ("model", "greedy", "“model”须为"),
     ("p", "0", "站点总数 p须为 1–500 之间的整数"), ("candidate_radius", "10min", "候选点范围须为距离"),
     ("time_limit", "x", "求解时间上限须为")],
)  # fmt: skip
def test_a_bad_siting_form_is_refused_without_a_job(app, field, value, message):
    response = _post(_planner(app), "/planner/siting", {**SITING_FORM, field: value})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    with app.app_context():
        assert job_store.list_jobs(get_store()) == []


def test_a_model_needs_p_or_a_quota_but_set_cover_needs_neither(app):
    client = _planner(app)
    response = _post(client, "/planner/siting", {**SITING_FORM, "p": "", "per_town": ""})
    assert response.status_code == 400 and "需要站点总数 p" in response.get_data(as_text=True)
    jobs.register_job_function(app, "siting", lambda job, progress, out: jobs.JobOutcome(result={}))
    job_id = _submit(client, "/planner/siting", {**SITING_FORM, "model": "set_cover", "p": "7", "per_town": ""})
    assert _job(app, job_id).parameters["p"] is None


# --- service areas -------------------------------------------------------------------------------


def test_a_service_areas_job_draws_one_area_per_facility_and_threshold(runs):
    app, client, ids, _ = runs
    job = _job(app, ids["service_areas"])
    assert job.status == "done", job.error
    result = job.result
    assert [row["threshold"] for row in result["summary"]] == ["300m", "800m"]
    assert len(result["per_facility"]) == 5 * 2  # 5 open centres × 2 thresholds
    assert result["coverage_columns"] == ["covered_300m", "covered_800m"]
    n_villages = len(load_district().villages)
    s300, s800 = result["summary"]
    assert s300["points"] == s800["points"] == n_villages
    assert s300["covered"] <= s800["covered"]  # a larger threshold never covers fewer villages
    assert s300["area_m2"] <= s800["area_m2"]
    assert sum(row["covered_800m_count"] for row in result["by_town"]) == s800["covered"]
    assert job.parameters["thresholds"] == ["300m", "800m"] and job.data_versions["facilities"]["rows"] == 5


def test_the_service_areas_page_and_downloads(runs):
    _, client, ids, folder = runs
    job_id = ids["service_areas"]
    page = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    assert 'id="per-facility"' in page and 'id="by-town"' in page and "folium-map" in page
    assert page.count("<td>800m</td>") == 5 and page.count("<td>300m</td>") == 5
    csv = pd.read_csv(io.BytesIO(_download(client, job_id, "csv").data), dtype={"facility_id": str})
    assert len(csv) == 10 and {"facility_id", "threshold", "area_km2", "points_inside"} <= set(csv.columns)
    path = folder / "areas.gpkg"
    path.write_bytes(_download(client, job_id, "gpkg").data)
    areas = gpd.read_file(path, layer="service_areas")
    points = gpd.read_file(path, layer="points")
    # The per-facility counts are the villages inside each facility's own polygon.
    for row in areas.itertuples():
        inside = int(points.within(row.geometry).sum())
        expected = csv[(csv["facility_id"] == row.facility_id) & (csv["threshold"] == row.threshold)]
        assert int(expected["points_inside"].iloc[0]) == inside
    assert len(_download(client, job_id, "geojson").get_json()["features"]) == 10
    sheets = pd.read_excel(io.BytesIO(_download(client, job_id, "xlsx").data), sheet_name=None, engine="calamine")
    assert {"per_facility", "dissolved", "by_town", "points"} <= set(sheets)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("thresholds", "", "请至少填写一个阈值"), ("shape", "circle", "“shape”须为"),
     ("buffer_m", "-1", "道路缓冲距离须为"), ("thresholds", "1,2,3,4,5min", "最多填写 4 个阈值")],
)  # fmt: skip
def test_a_bad_service_areas_form_is_refused(app, field, value, message):
    response = _post(_planner(app), "/planner/service-areas", {**AREAS_FORM, field: value})
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_service_areas_of_a_status_without_facilities_fail_with_a_message(app):
    client = _planner(app)
    job_id = _submit(client, "/planner/service-areas", {**AREAS_FORM, "status_filter": "planned"})
    jobs.wait_for_job(app, job_id, timeout_s=300)
    status = client.get(f"/planner/jobs/{job_id}.json").get_json()
    assert status["status"] == "failed" and "没有符合状态筛选（planned）的设施" in status["error"]


# --- compare -------------------------------------------------------------------------------------

#: Two coverage results on four points: A covers p1, p2; B covers p2, p3, p4 (towns T1: p1, p2; T2: p3, p4).
_COVERED = {"A": {"p1": True, "p2": True, "p3": False, "p4": False},
            "B": {"p1": False, "p2": True, "p3": True, "p4": True}}  # fmt: skip
_TOWNS = {"p1": "500120001", "p2": "500120001", "p3": "500120100", "p4": "500120100"}


def _fake_coverage(job, progress, out_dir):
    covered = _COVERED[job.parameters["thresholds"][0] == "800m" and "A" or "B"]
    points = gpd.GeoDataFrame(
        {"demand_id": list(covered), "town_code": [_TOWNS[p] for p in covered], "covered_800m": list(covered.values())},
        geometry=[Point(106.2 + i / 100, 29.6) for i in range(4)],
        crs="EPSG:4326",
    )
    points.to_file(out_dir / "coverage.gpkg", layer="coverage")
    share = sum(covered.values()) / 4
    return jobs.JobOutcome(result={"coverage_columns": ["covered_800m"],
                                   "summary": {"covered_800m": {"weighted_share": share}}},
                           data_versions={"roads_sha256": job.parameters["thresholds"][0]})  # fmt: skip


def _fake_gaps(job, progress, out_dir):
    uncovered = ["p3", "p4"] if job.parameters["threshold"] == "800m" else ["p1"]
    gdf = gpd.GeoDataFrame({"demand_id": uncovered, "town_code": [_TOWNS[p] for p in uncovered]},
                           geometry=[Point(106.2, 29.6)] * len(uncovered), crs="EPSG:4326")  # fmt: skip
    gdf.to_file(out_dir / "gaps.gpkg", layer="gap_uncovered")
    by_town = [{"town_code": t, "points": 2, "uncovered": sum(_TOWNS[p] == t for p in uncovered), "unreachable": 0,
                "too_far_from_road": 0} for t in ("500120001", "500120100")]  # fmt: skip
    return jobs.JobOutcome(result={"summary": {"gap_uncovered": len(uncovered)}, "by_town": by_town})


def _two_fake(app, kind, function, forms):
    jobs.register_job_function(app, kind, function)
    client = _planner(app)
    ids = [_submit(client, f"/planner/{kind}", form) for form in forms]
    for job_id in ids:
        jobs.wait_for_job(app, job_id)
    return client, ids


def test_compare_two_coverage_results_by_hand(app):
    form = {"facilities": "service_centre", "demand": "village", "profile": "walk", "grid_spacing": "400"}
    client, (a, b) = _two_fake(app, "coverage", _fake_coverage, [{**form, "thresholds": "800m"},
                                                                 {**form, "thresholds": "1km"}])  # fmt: skip
    listing = client.get("/planner/").get_data(as_text=True)
    assert 'id="compare-a" name="a"' in listing and f'<option value="{a}"' in listing
    response = client.get(f"/planner/compare?a={a}&b={b}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    overall = page[page.index('id="compare-overall"') : page.index("</table>", page.index('id="compare-overall"'))]
    # A covers 2 of 4 (50 %), B 3 of 4 (75 %): +1 point, +25 percentage points.
    assert "<td>2</td><td>3</td><td>+1</td>" in overall and "<td>50%</td><td>75%</td><td>+25.0" in overall
    towns = page[page.index('id="compare-by-town"') : page.index("</table>", page.index('id="compare-by-town"'))]
    # 璧城街道 (p1, p2): 2 → 1 (−1, −50 points); 八塘镇 (p3, p4): 0 → 2 (+2, +100 points).
    assert '<th scope="row">璧城街道</th><td>2 / 2</td><td>100%</td><td>1 / 2</td><td>50%</td><td>-1</td>' in towns
    assert '<th scope="row">八塘镇</th><td>0 / 2</td><td>0%</td><td>2 / 2</td><td>100%</td><td>+2</td>' in towns
    assert "共 3 个：新增覆盖 2 个，不再覆盖 1 个。" in page
    changed = page[page.index('id="compare-changed"') :]
    assert changed.index(">p1<") < changed.index(">p3<") < changed.index(">p4<") and ">p2<" not in changed
    params = page[page.index('id="compare-parameters"') :]
    assert '<th scope="row">阈值 <strong>（不同）</strong></th><td>800m</td><td>1km</td>' in params
    assert '<th scope="row">道路文件校验码 <strong>（不同）</strong></th><td>800m</td><td>1km</td>' in page


def test_compare_two_gaps_results_by_hand(app):
    form = {"facilities": "service_centre", "demand": "village", "profile": "walk", "hex_size": "500"}
    client, (a, b) = _two_fake(app, "gaps", _fake_gaps, [{**form, "threshold": "800m"}, {**form, "threshold": "1km"}])
    page = client.get(f"/planner/compare?a={a}&b={b}").get_data(as_text=True)
    # A leaves p3, p4 uncovered (2 of 4 covered), B only p1 (3 of 4): the same changes as above.
    overall = page[page.index('id="compare-overall"') : page.index("</table>", page.index('id="compare-overall"'))]
    assert "<td>2</td><td>3</td><td>+1</td>" in overall
    assert "共 3 个：新增覆盖 2 个，不再覆盖 1 个。" in page


def test_compare_refuses_mixed_kinds_unfinished_and_missing_jobs(runs):
    _, client, ids, _ = runs
    mixed = client.get(f"/planner/compare?a={ids['siting']}&b={ids['service_areas']}")
    text = mixed.get_data(as_text=True)
    # not a 400: the planner's page again, the form as chosen, the reason in the page's language
    assert mixed.status_code == 200 and 'id="compare-errors"' in text
    names = ("“选址 · 最大覆盖 · 渝馨家园 · p=15 · 15min”（选址）和"
             "“服务范围 · 渝馨家园 · 300m, 800m · 步行 · 在用的设施”（服务范围）")
    assert names + "不是同一种分析，无法对比；请选择同一种分析的两个结果" in text
    assert f'<option value="{ids["service_areas"]}" selected>' in text
    same = client.get(f"/planner/compare?a={ids['siting']}&b={ids['siting']}")
    assert same.status_code == 200
    assert "结果 A 和结果 B 是同一个任务；请选择两个不同的结果。" in same.get_data(as_text=True)
    missing = client.get(f"/planner/compare?a={ids['siting']}")
    assert missing.status_code == 200
    assert "请选择两个要对比的结果（结果 A 和结果 B）。" in missing.get_data(as_text=True)
    english = client.get(f"/planner/compare?a={ids['siting']}&b={ids['service_areas']}&lang=en").get_data(as_text=True)
    assert "are not the same kind of analysis and cannot be compared" in english
    client.get("/planner/?lang=zh")  # the module's client goes on in Chinese
    assert client.get(f"/planner/compare?a={ids['siting']}&b={'0' * 32}").status_code == 404


def test_compare_two_real_siting_results(runs):
    app, client, ids, _ = runs
    other = _submit(client, "/planner/siting", {**SITING_FORM, "method": "heuristic"})
    jobs.wait_for_job(app, other, timeout_s=300)
    assert _job(app, other).status == "done"
    page = client.get(f"/planner/compare?a={ids['siting']}&b={other}").get_data(as_text=True)
    assert 'id="compare-by-town"' in page and "<td>1196</td><td>1196</td><td>+0</td>" in page
    assert ('<th scope="row">求解方法 <strong>（不同）</strong></th><td>精确求解（HiGHS，给出最优性差距）</td>'
            "<td>快速启发式（贪心加交换）</td>") in page


# --- permissions ---------------------------------------------------------------------------------

PATHS = ["/planner/service-areas", "/planner/siting", f"/planner/compare?a={'0' * 32}&b={'1' * 32}"]


@pytest.mark.parametrize("role", ROLE_KEYS)
@pytest.mark.parametrize("path", PATHS)
def test_only_planners_and_admins_reach_the_new_pages(app, role, path):
    client = app.test_client()
    if role != "public":
        log_in(client, staff_fixtures.ACCOUNTS[role][0])
    response = client.get(path)
    if role in ("planner", "admin"):
        assert response.status_code == (404 if "compare" in path else 200)
    elif role == "public":
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", ["caseworker_a", "bureau"])
@pytest.mark.parametrize(("path", "form"), [("/planner/siting", SITING_FORM), ("/planner/service-areas", AREAS_FORM)])
def test_other_staff_cannot_submit_jobs(app, role, path, form):
    client = app.test_client()
    log_in(client, staff_fixtures.ACCOUNTS[role][0])
    token = csrf_token(client, "/account")
    assert client.post(path, data={**form, "csrf_token": token}).status_code == 403
    with app.app_context():
        assert job_store.list_jobs(get_store()) == []
