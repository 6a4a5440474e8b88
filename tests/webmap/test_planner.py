from __future__ import annotations

import io
import re
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from layers import jobs as job_store
from layers import users
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import ROLE_KEYS, cheap_hash, csrf_token, log_in
from webmap import create_app, jobs
from webmap.maps.result_layers import level_tiles, read_index
from webmap.store import get_store

demo_key, demo_db, demo_households = staff_fixtures.demo_key, staff_fixtures.demo_db, staff_fixtures.demo_households

# Village demand: one point per village (ids are village codes), fast on the Bishan network.
COVERAGE_FORM = {"facilities": "service_centre", "demand": "village", "profile": "walk", "thresholds": "800m, 15min",
                 "urban_threshold": "", "rural_threshold": "", "grid_spacing": "400"}  # fmt: skip


def _make_app(db_path, demo_key, app_cache_dir, jobs_dir):
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": f"sqlite:///{db_path}",
            "ENCRYPTION_KEY": demo_key,
            "CACHE_DIR": str(app_cache_dir),
            "JOBS_DIR": str(jobs_dir),
        }
    )


@pytest.fixture
def app(tmp_path, demo_db, demo_key, app_cache_dir, monkeypatch):
    monkeypatch.setattr(users, "generate_password_hash", cheap_hash)
    path = tmp_path / "accessplan.sqlite"
    shutil.copyfile(demo_db, path)
    app = _make_app(path, demo_key, app_cache_dir, tmp_path / "jobs")
    yield app
    jobs.shutdown_worker(app)
    store = app.extensions.get("accessplan_store")
    if store is not None:
        store.close()


def _planner(app):
    client = app.test_client()
    assert log_in(client, "planner").status_code == 302
    return client


def _download(client, job_id: str, fmt: str):
    """GET a result file and close the response (file responses hold the file open until closed)."""
    response = client.get(f"/planner/jobs/{job_id}/download/{fmt}")
    response.get_data()
    response.close()
    return response


def _submit(client, form: dict) -> str:
    response = client.post("/planner/coverage", data={**form, "csrf_token": csrf_token(client, "/planner/coverage")})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def coverage_run(tmp_path_factory, demo_db, demo_key, app_cache_dir):
    """One coverage job with a before/after comparison, run to the end on a copy of the demo store."""
    folder = tmp_path_factory.mktemp("planner-coverage")
    shutil.copyfile(demo_db, folder / "accessplan.sqlite")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(users, "generate_password_hash", cheap_hash)
        app = _make_app(folder / "accessplan.sqlite", demo_key, app_cache_dir, folder / "jobs")
        client = _planner(app)
        job_id = _submit(client, {**COVERAGE_FORM, "scenario": "on"})
        jobs.wait_for_job(app, job_id, timeout_s=300)
        yield app, client, job_id, folder
        jobs.shutdown_worker(app)
        app.extensions["accessplan_store"].close()


def test_a_coverage_job_reaches_done_with_tables_map_and_parameters(coverage_run, bishan):
    app, client, job_id, _ = coverage_run
    status = client.get(f"/planner/jobs/{job_id}.json").get_json()
    assert (status["status"], status["percent"], status["error"]) == ("done", 100.0, None)
    page = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    assert 'id="by-town"' in page and 'id="coverage-summary"' in page and "folium-map" in page
    for name in bishan.towns["name"]:  # every town of Bishan has villages, so a row
        assert f'<th scope="row">{name}</th>' in page
    assert "<progress" not in page
    with app.app_context():
        job = job_store.get_job(get_store(), job_id)
    assert job.parameters["thresholds"] == ["800m", "15min"] and job.parameters["scenario"] is True
    assert job.data_versions["roads_sha256"] and job.data_versions["facilities"]["rows"] >= 1
    n_villages = len(bishan.villages)
    assert job.result["summary"]["points"] == n_villages
    assert sum(row["points"] for row in job.result["by_town"]) == n_villages
    # Adding the planned centres never lowers coverage.
    scenario = job.result["scenario"]
    for column in ("covered_800m", "covered_15min"):
        before = job.result["summary"][column]["weighted_share"]
        assert scenario["after"][column]["weighted_share"] >= before


def test_downloads_parse(coverage_run, bishan):
    _, client, job_id, _ = coverage_run
    n_villages = len(bishan.villages)
    csv = _download(client, job_id, "csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    table = pd.read_csv(io.BytesIO(csv.data), dtype={"demand_id": str})
    assert len(table) == n_villages and {"demand_id", "covered_800m", "covered_15min"} <= set(table.columns)
    xlsx = _download(client, job_id, "xlsx")
    sheets = pd.read_excel(io.BytesIO(xlsx.data), sheet_name=None, engine="calamine")
    assert {"points", "by_town", "by_village", "summary"} <= set(sheets) and len(sheets["points"]) == n_villages
    gpkg = _download(client, job_id, "gpkg")
    assert gpkg.status_code == 200
    path = coverage_run[3] / "download.gpkg"
    path.write_bytes(gpkg.data)
    points = gpd.read_file(path, layer="coverage")
    assert len(points) == n_villages and points.crs.to_epsg() == 4326
    assert (
        points["covered_800m"] == table.set_index("demand_id").loc[points["demand_id"], "covered_800m"].values
    ).all()
    assert len(gpd.read_file(path, layer="facilities")) >= 1
    geojson = _download(client, job_id, "geojson")
    assert geojson.get_json()["type"] == "FeatureCollection" and len(geojson.get_json()["features"]) == n_villages
    assert _download(client, job_id, "shp").status_code == 404


def test_results_reopen_after_an_app_restart(coverage_run, demo_key, app_cache_dir):
    app, client, job_id, folder = coverage_run
    before = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(users, "generate_password_hash", cheap_hash)
        restarted = _make_app(folder / "accessplan.sqlite", demo_key, app_cache_dir, folder / "jobs")
    try:
        client2 = _planner(restarted)
        listing = client2.get("/planner/").get_data(as_text=True)
        assert f"/planner/jobs/{job_id}" in listing
        after = client2.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
        assert 'id="by-town"' in after
        table = before[before.index('id="by-town"') : before.index("</table>", before.index('id="by-town"'))]
        assert table in after
        assert _download(client2, job_id, "csv").status_code == 200
    finally:
        restarted.extensions["accessplan_store"].close()


def test_a_gaps_job_maps_and_counts_the_uncovered_villages(coverage_run, bishan):
    app, client, coverage_id, _ = coverage_run
    form = {"facilities": "service_centre", "demand": "village", "profile": "walk", "threshold": "800m",
            "hex_size": "1000"}  # fmt: skip
    response = client.post("/planner/gaps", data={**form, "csrf_token": csrf_token(client, "/planner/gaps")})
    assert response.status_code == 303
    job_id = response.headers["Location"].rsplit("/", 1)[-1]
    jobs.wait_for_job(app, job_id, timeout_s=300)
    status = client.get(f"/planner/jobs/{job_id}.json").get_json()
    assert status["status"] == "done", status["error"]
    with app.app_context():
        gaps_result = job_store.get_job(get_store(), job_id).result
        coverage_result = job_store.get_job(get_store(), coverage_id).result
    # Same facilities, demand and threshold as the coverage job: uncovered = not covered and reachable.
    summary = coverage_result["summary"]
    not_covered = summary["points"] - summary["covered_800m"]["covered"]
    counts = gaps_result["summary"]
    assert counts["gap_uncovered"] + counts["gap_unreachable"] + counts["gap_too_far"] == not_covered
    assert sum(r["uncovered"] for r in gaps_result["by_town"]) == counts["gap_uncovered"]
    page = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    assert 'id="by-town"' in page and "folium-map" in page and "服务缺口区" in page
    csv = pd.read_csv(io.BytesIO(_download(client, job_id, "csv").data), dtype={"demand_id": str})
    assert len(csv) == counts["gap_uncovered"]
    path = coverage_run[3] / "gaps.gpkg"
    path.write_bytes(_download(client, job_id, "gpkg").data)
    assert len(gpd.read_file(path, layer="gap_hexagons")) == counts["gap_hexagons"]


def test_households_appear_only_as_ids_towns_and_villages(coverage_run, demo_households):
    app, client, _, _ = coverage_run
    job_id = _submit(client, {**COVERAGE_FORM, "demand": "household", "thresholds": "500m"})
    jobs.wait_for_job(app, job_id, timeout_s=300)
    assert client.get(f"/planner/jobs/{job_id}.json").get_json()["status"] == "done"
    csv = pd.read_csv(io.BytesIO(_download(client, job_id, "csv").data), dtype=str)
    assert sorted(csv["demand_id"]) == sorted(demo_households["id"])
    texts = [client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)]
    texts += [_download(client, job_id, fmt).get_data().decode("utf-8", "replace")
              for fmt in ("csv", "geojson")]  # fmt: skip
    for column in ("name", "id_number", "phone", "address"):
        if column in demo_households:
            for value in demo_households[column].dropna().head(50):
                assert all(value not in text for text in texts), column


def test_submitting_returns_at_once_and_the_progress_page_polls(app):
    release = threading.Event()

    def slow(job, progress, out_dir):
        progress.expect(2)
        progress.stage("第一步")
        assert release.wait(30)
        return jobs.JobOutcome(result={"ok": True})

    jobs.register_job_function(app, "coverage", slow)
    client = _planner(app)
    job_id = _submit(client, COVERAGE_FORM)
    page = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    assert '<progress id="job-bar" max="100"' in page
    assert '<noscript><meta http-equiv="refresh"' in page and "刷新本页" in page
    assert f'data-status-url="/planner/jobs/{job_id}.json"' in page
    script = page[page.index("<script nonce=") : page.index("</script>", page.index("<script nonce="))]
    assert "fetch(" in script
    status = client.get(f"/planner/jobs/{job_id}.json").get_json()
    assert status["status"] in ("queued", "running") and status["url"] == f"/planner/jobs/{job_id}"
    release.set()
    jobs.wait_for_job(app, job_id)
    assert client.get(f"/planner/jobs/{job_id}.json").get_json()["status"] == "done"


def test_progress_stages_are_stored(app):
    seen = []

    def staged(job, progress, out_dir):
        progress.expect(4)
        for stage in ("a", "b", "c"):
            progress.stage(stage)
            seen.append(job_store.get_job(get_store(), job.id).percent)
        progress("c half", 0.5)
        seen.append(job_store.get_job(get_store(), job.id).percent)
        return jobs.JobOutcome(result={})

    jobs.register_job_function(app, "coverage", staged)
    job_id = _submit(_planner(app), COVERAGE_FORM)
    jobs.wait_for_job(app, job_id)
    assert seen == [0.0, 25.0, 50.0, 62.5]


def test_job_pages_show_the_submission_time_in_beijing_time(app):
    client = _planner(app)
    with app.app_context():  # a queued job with a known time: 16:30 UTC on 1 January is 00:30 on 2 January in Beijing
        store = get_store()
        job_id = job_store.create_job(store, "coverage", parameters=COVERAGE_FORM, created_by="planner")
        with store.engine.begin() as conn:
            table = job_store.jobs_table
            conn.execute(
                sa.update(table).where(table.c.id == job_id).values(created_at=datetime(2026, 1, 1, 16, 30, tzinfo=UTC))
            )
    page = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    assert "提交时间 2026-01-02 00:30:00（北京时间）" in page
    listing = client.get("/planner/").get_data(as_text=True)
    assert "提交时间（北京时间）" in listing and "<td>2026-01-02 00:30:00</td>" in listing
    assert "2026-01-01" not in page + listing


def test_a_failing_job_shows_its_error(app):
    def broken(job, progress, out_dir):
        (out_dir / "partial.csv").write_text("x")
        msg = "`facilities` has no open rows; add facilities first."
        raise ValueError(msg)

    jobs.register_job_function(app, "coverage", broken)
    client = _planner(app)
    job_id = _submit(client, COVERAGE_FORM)
    jobs.wait_for_job(app, job_id)
    status = client.get(f"/planner/jobs/{job_id}.json").get_json()
    assert status["status"] == "failed"
    assert status["error"] == "`facilities` has no open rows; add facilities first."
    page = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    assert 'role="alert"' in page and "`facilities` has no open rows; add facilities first." in page
    assert _download(client, job_id, "csv").status_code == 404
    with app.app_context():
        assert not jobs.job_dir(job_id).exists()  # partial files removed


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("thresholds", "abc", "阈值 &#39;abc&#39; 无法识别"), ("facilities", "household", "“facilities”须为"),
     ("thresholds", "", "请至少填写一个阈值"), ("grid_spacing", "1", "网格间距须为")],
)  # fmt: skip
def test_a_bad_form_is_refused_without_a_job(app, field, value, message):
    client = _planner(app)
    token = csrf_token(client, "/planner/coverage")
    response = client.post("/planner/coverage", data={**COVERAGE_FORM, field: value, "csrf_token": token})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    with app.app_context():
        assert job_store.list_jobs(get_store()) == []


def test_unknown_job_is_404(app):
    client = _planner(app)
    assert client.get("/planner/jobs/0123456789abcdef0123456789abcdef").status_code == 404
    assert client.get("/planner/jobs/0123456789abcdef0123456789abcdef.json").status_code == 404


def test_targets_dashboard_for_a_chosen_date(app):
    client = _planner(app)
    page = client.get("/planner/targets?date=2023-06-30").get_data(as_text=True)
    assert 'value="2023-06-30"' in page and 'id="indicators"' in page and 'id="huican-tasks"' in page
    assert client.get("/planner/targets?date=30/06/2023").status_code == 400


PATHS = [
    "/planner/",
    "/planner/coverage",
    "/planner/gaps",
    "/planner/targets",
    "/planner/jobs/0123456789abcdef0123456789abcdef",
]


@pytest.mark.parametrize("role", ROLE_KEYS)
@pytest.mark.parametrize("path", PATHS)
def test_only_planners_and_admins_get_in(app, role, path):
    client = app.test_client()
    if role != "public":
        log_in(client, staff_fixtures.ACCOUNTS[role][0])
    response = client.get(path)
    if role in ("planner", "admin"):
        assert response.status_code == (404 if "/jobs/" in path else 200)
    elif role == "public":
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    else:
        assert response.status_code == 403


@pytest.mark.parametrize(
    ("role", "shown"), [("planner", True), ("admin", True), ("bureau", False), ("caseworker_a", False)]
)
def test_the_nav_links_the_planner_pages_for_planners_and_admins(app, role, shown):
    client = app.test_client()
    log_in(client, staff_fixtures.ACCOUNTS[role][0])
    page = client.get("/account").get_data(as_text=True)
    assert ('<a href="/planner/">规划分析</a>' in page) is shown


def test_a_50m_grid_coverage_page_stays_small_and_its_hexagons_add_up(coverage_run):
    """Issue 18: ~100,000 grid points; the page and its layers ≤ 600 KB, the hexagon counts = the result's."""
    app, client, _, _ = coverage_run
    job_id = _submit(client, {**COVERAGE_FORM, "demand": "grid", "grid_spacing": "50", "thresholds": "800m"})
    jobs.wait_for_job(app, job_id, timeout_s=600)
    status = client.get(f"/planner/jobs/{job_id}.json").get_json()
    assert status["status"] == "done", status["error"]
    page = client.get(f"/planner/jobs/{job_id}").get_data()
    url = f"/planner/jobs/{job_id}/layers/points_hex.geojson"
    assert f'data-layer-url="{url}"'.encode() in page
    layer = client.get(url)
    assert layer.status_code == 200 and layer.mimetype == "application/geo+json"
    assert len(page) + len(layer.get_data()) <= 600 * 1024
    with app.app_context():
        summary = job_store.get_job(get_store(), job_id).result["summary"]
    assert summary["points"] > 50_000
    counts = [[int(n) for n in re.findall(r"：(\d+)", f["properties"]["label"])] for f in layer.get_json()["features"]]
    assert [sum(c[0] for c in counts), sum(c[1] for c in counts)] == [
        summary["covered_800m"]["covered"], summary["points"] - summary["covered_800m"]["covered"]]
    zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and len(zipped.get_data()) < len(layer.get_data()) / 3
    # detail on zoom: every finer level counts every point once; its fullest tiles are sent ≤ 600 KB each
    with app.app_context():
        folder = Path(job_store.get_job(get_store(), job_id).result_path)
    (entry,) = [e for e in read_index(folder) if e["name"] == "points_hex"]
    assert [lv["edge_m"] for lv in entry["zoom"]["levels"]] == [150.0, 50.0, 20.0]
    covered = summary["covered_800m"]["covered"]
    for level in range(3):
        cells = np.load(folder / "display" / f"points_hex.{level}.npy")
        assert cells["n"].sum(axis=0).tolist() == [covered, summary["points"] - covered]
        for x, y, n in level_tiles(folder, "points_hex", level)[:2]:
            tile = client.get(f"{url}?level={level}&x={x}&y={y}")
            assert tile.status_code == 200 and len(tile.get_data()) <= 600 * 1024
            assert len(tile.get_json()["features"]) == n
    for query, message in (("level=3&x=0&y=0", "没有第 3 级格子"), ("level=0&x=-1&y=0", "须用整数 level、x、y 请求"),
                           ("level=0&x=1", "须用整数 level、x、y 请求")):  # fmt: skip
        refused = client.get(f"{url}?{query}")
        assert refused.status_code == 404 and message in refused.get_data(as_text=True)


@pytest.mark.parametrize("role_key", ["public", "caseworker_a", "bureau"])
def test_a_result_layer_is_only_for_planners_and_admins(coverage_run, role_key):
    app, client, job_id, _ = coverage_run
    page = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    (url,) = re.findall(r'data-layer-url="(/planner/jobs/[^"]+/layers/points_0\.geojson)"', page)
    assert client.get(url).status_code == 200  # the planner
    other = app.test_client()
    if role_key != "public":
        assert log_in(other, staff_fixtures.ACCOUNTS[role_key][0]).status_code == 302
    response = other.get(url)
    assert response.status_code in (302, 403), response.status_code
    assert b"FeatureCollection" not in response.get_data()
    admin = app.test_client()
    assert log_in(admin, "admin").status_code == 302
    assert admin.get(url).status_code == 200
    assert client.get(f"/planner/jobs/{job_id}/layers/nope.geojson").status_code == 404
    assert client.get(f"/planner/jobs/{job_id}/layers/..%2Fcoverage.gpkg.geojson").status_code == 404
