"""The planner's what-if page: each edit's numbers equal a full `measure_coverage`; refusals; saved scenarios."""

from __future__ import annotations

import re
import shutil

import geopandas as gpd
import pytest

from analyses.coverage import measure_coverage
from analyses.inputs import load_points
from layers import jobs as job_store
from layers import schema, users
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import cheap_hash, csrf_token, log_in
from webmap import create_app, jobs
from webmap.runs import app_placer
from webmap.store import get_district, get_store
from webmap.whatif_sessions import WhatIfSessions

demo_key, demo_db = staff_fixtures.demo_key, staff_fixtures.demo_db

#: Villages weighted by population, 2 km on foot: fast on the Bishan network, every town has some of each.
START = {"start": "layer", "facilities": "service_centre", "siting_job": "", "demand": "village",
         "profile": "walk", "threshold": "2km", "grid_spacing": "400"}  # fmt: skip
_SESSION = re.compile(r"/planner/whatif/([A-Za-z0-9_-]{20,})$")


@pytest.fixture(scope="module")
def app(tmp_path_factory, demo_db, demo_key, app_cache_dir):
    folder = tmp_path_factory.mktemp("planner-whatif")
    shutil.copyfile(demo_db, folder / "accessplan.sqlite")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(users, "generate_password_hash", cheap_hash)
        app = create_app({"TESTING": True, "SECRET_KEY": "test-secret",
                          "DATABASE_URL": f"sqlite:///{folder / 'accessplan.sqlite'}", "ENCRYPTION_KEY": demo_key,
                          "CACHE_DIR": str(app_cache_dir), "JOBS_DIR": str(folder / "jobs")})  # fmt: skip
        yield app
    jobs.shutdown_worker(app)
    with app.app_context():
        get_store().close()


def _client(app, role="planner"):
    client = app.test_client()
    assert log_in(client, staff_fixtures.ACCOUNTS[role][0]).status_code == 302
    return client


def _start(client, **changes) -> str:
    form = {**START, **changes, "csrf_token": csrf_token(client, "/planner/whatif")}
    response = client.post("/planner/whatif", data=form)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return _SESSION.search(response.headers["Location"]).group(1)


def _edit(client, session_id, token, **edit):
    return client.post(f"/planner/whatif/{session_id}/edit", json=edit, headers={"X-CSRFToken": token})


def _token(client, session_id) -> str:
    return csrf_token(client, f"/planner/whatif/{session_id}")


def _full_run(app, sites):
    """The same state from scratch: measure_coverage of the sites in service (by the JSON's own list)."""
    kept = [s for s in sites if s["in_service"]]
    with app.app_context():
        facilities = gpd.GeoDataFrame({schema.ID: [s["id"] for s in kept]},
                                      geometry=gpd.points_from_xy([s["lon"] for s in kept], [s["lat"] for s in kept]),
                                      crs=schema.WGS84)  # fmt: skip
        demand = load_points("village", store=get_store(), district=get_district())
        return measure_coverage(app_placer(), facilities, demand, profile="walk", thresholds=["2km"],
                                weight_column=schema.POPULATION)  # fmt: skip


def _assert_equal_to_full_run(app, state):
    full = _full_run(app, state["sites"])
    column = "covered_2km"
    assert state["summary"]["covered"] == full.summary[column]["covered"]
    assert state["summary"]["points"] == full.summary["points"]
    assert state["summary"]["share"] == pytest.approx(full.summary[column]["weighted_share"], rel=1e-9)
    for rows, table in ((state["by_town"], full.by_town), (state["by_village"], full.by_village)):
        assert [r["code"] for r in rows] == [str(c) for c in table.index]
        assert [r["covered"] for r in rows] == table[f"{column}_count"].tolist()
        assert [r["points"] for r in rows] == table["points"].tolist()
        assert [r["share"] for r in rows] == pytest.approx(table[f"{column}_share"].tolist(), rel=1e-9)
    return full


def test_each_edit_equals_a_full_coverage_run(app):
    client = _client(app)
    session_id = _start(client)
    page = client.get(f"/planner/whatif/{session_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "whatif-by-town" in html and "village-options" in html and "<script src=" in html
    token = _token(client, session_id)
    state = client.get(f"/planner/whatif/{session_id}/state.json").get_json()
    full = _assert_equal_to_full_run(app, state)
    assert len(state["points"]) == full.summary["points"]
    assert sorted(state["covered"]) == sorted(
        i for i, flag in enumerate(full.points["covered_2km"].tolist()) if flag)  # fmt: skip
    existing = [s["id"] for s in state["sites"]]
    assert existing and all(s["existing"] and s["in_service"] for s in state["sites"])

    with app.app_context():
        village = get_district().villages.iloc[40]
        towns = dict(zip(get_district().towns[schema.TOWN_CODE], get_district().towns[schema.NAME], strict=True))
    label = f"{towns[village[schema.TOWN_CODE]]} · {village[schema.NAME]}"
    before = state["summary"]["covered"]
    edits = [
        {"action": "add", "lon": "106.18", "lat": "29.45"},
        {"action": "add", "village": label},
        {"action": "move", "site_id": "P1", "lon": "106.10", "lat": "29.52"},
        {"action": "close", "site_id": existing[0]},
        {"action": "move", "site_id": existing[1], "lon": "106.25", "lat": "29.40"},
        {"action": "reopen", "site_id": existing[0]},
        {"action": "remove", "site_id": "P2"},
    ]
    for edit in edits:
        response = _edit(client, session_id, token, **edit)
        assert response.status_code == 200, response.get_json()
        state = response.get_json()
        _assert_equal_to_full_run(app, state)
        assert state["server_ms"] > 0
        flipped = state["changed"]
        before += len(flipped["covered"]) - len(flipped["uncovered"])
        assert before == state["summary"]["covered"]  # the map's changes add up to the total
    ids = [s["id"] for s in state["sites"]]
    assert "P1" in ids and "P2" not in ids
    p1 = next(s for s in state["sites"] if s["id"] == "P1")
    assert (p1["lon"], p1["lat"]) == (106.10, 29.52)
    assert p1["place"] and p1["label"].endswith("(P1)")


def test_the_village_site_is_named_by_its_place(app):
    client = _client(app)
    session_id = _start(client)
    with app.app_context():
        district = get_district()
        village = district.villages.iloc[0]
        town = district.towns.set_index(schema.TOWN_CODE).loc[village[schema.TOWN_CODE], schema.NAME]
    label = f"{town} · {village[schema.NAME]}"
    state = _edit(client, session_id, _token(client, session_id), action="add", village=label).get_json()
    site = next(s for s in state["sites"] if s["id"] == "P1")
    assert (site["lon"], site["lat"]) == (round(village[schema.LON], 6), round(village[schema.LAT], 6))
    # standing on the village point: its town, then the village itself (the nearest village of that town)
    assert site["place"].startswith(f"{town} · {village[schema.NAME]}")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"action": "add", "lon": "abc", "lat": "29.5"}, "经度须为"),
        ({"action": "add", "lon": "120.0", "lat": "29.5"}, "经度须为"),
        ({"action": "add", "lon": "106.2", "lat": "nan"}, "纬度须为"),
        ({"action": "add", "village": "没有这个村"}, "没有名为"),
        ({"action": "close", "site_id": "X-404"}, "没有编号为 'X-404' 的站点"),
        ({"action": "move", "site_id": "X-404", "lon": "106.2", "lat": "29.5"}, "没有编号为"),
        ({"action": "explode", "site_id": "X"}, "“action”须为"),
    ],
)
def test_bad_edits_are_refused_with_a_message(app, edit, message):
    client = _client(app)
    session_id = _start(client)
    response = _edit(client, session_id, _token(client, session_id), **edit)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_an_existing_facility_is_closed_not_removed_and_closed_once(app):
    client = _client(app)
    session_id = _start(client)
    token = _token(client, session_id)
    first = client.get(f"/planner/whatif/{session_id}/state.json").get_json()["sites"][0]["id"]
    refused = _edit(client, session_id, token, action="remove", site_id=first)
    assert refused.status_code == 400 and "不能移除" in refused.get_json()["error"]
    assert _edit(client, session_id, token, action="close", site_id=first).status_code == 200
    again = _edit(client, session_id, token, action="close", site_id=first)
    assert again.status_code == 400 and "已关闭" in again.get_json()["error"]


def test_another_users_session_is_not_found(app):
    session_id = _start(_client(app))
    other = _client(app, "admin")
    assert other.get(f"/planner/whatif/{session_id}").status_code == 404
    assert other.get(f"/planner/whatif/{session_id}/state.json").status_code == 404
    token = csrf_token(other, "/planner/whatif")
    response = _edit(other, session_id, token, action="add", lon="106.2", lat="29.5")
    assert response.status_code == 404


def test_an_edit_without_the_csrf_token_is_refused(app):
    client = _client(app)
    session_id = _start(client)
    response = client.post(f"/planner/whatif/{session_id}/edit", json={"action": "add", "lon": "106.2", "lat": "29.5"})
    assert response.status_code == 400
    state = client.get(f"/planner/whatif/{session_id}/state.json").get_json()
    assert [s for s in state["sites"] if not s["existing"]] == []  # nothing was added


@pytest.mark.parametrize("role", ["caseworker_a", "bureau"])
def test_other_roles_cannot_open_or_edit_a_whatif(app, role):
    session_id = _start(_client(app))
    client = _client(app, role)
    assert client.get("/planner/whatif").status_code == 403
    assert client.get(f"/planner/whatif/{session_id}").status_code == 403
    anonymous = app.test_client()
    assert anonymous.get(f"/planner/whatif/{session_id}/state.json").status_code in (302, 401)


def test_the_start_form_names_its_problems(app):
    client = _client(app)
    form = {**START, "threshold": "far", "profile": "fly", "csrf_token": csrf_token(client, "/planner/whatif")}
    response = client.post("/planner/whatif", data=form)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "阈值 &#39;far&#39; 无法识别" in html and "fly" in html


def test_a_form_post_without_script_edits_and_returns_to_the_page(app):
    client = _client(app)
    session_id = _start(client)
    response = client.post(f"/planner/whatif/{session_id}/edit",
                           data={"action": "add", "lon": "106.2", "lat": "29.5",
                                 "csrf_token": _token(client, session_id)})  # fmt: skip
    assert response.status_code == 303 and response.headers["Location"].endswith(session_id)
    assert "P1" in client.get(f"/planner/whatif/{session_id}").get_data(as_text=True)


def test_a_saved_scenario_reopens_and_compares_with_a_coverage_result(app):
    client = _client(app)
    session_id = _start(client)
    token = _token(client, session_id)
    first = client.get(f"/planner/whatif/{session_id}/state.json").get_json()["sites"][0]["id"]
    _edit(client, session_id, token, action="add", lon="106.18", lat="29.45")
    state = _edit(client, session_id, token, action="close", site_id=first).get_json()
    saved = client.post(f"/planner/whatif/{session_id}/save", data={"name": "南部加一处", "csrf_token": token})
    assert saved.status_code == 303
    job_id = saved.headers["Location"].rsplit("/", 1)[-1]
    with app.app_context():
        record = job_store.get_job(get_store(), job_id)
    assert record.kind == "whatif" and record.status == "done" and record.parameters["name"] == "南部加一处"
    assert record.data_versions["roads_sha256"] and record.data_versions["demand"]["rows"] == state["summary"]["points"]
    assert record.result["summary"]["covered_2km"]["covered"] == state["summary"]["covered"]
    assert {s["id"]: s["in_service"] for s in record.parameters["sites"]}[first] is False
    page = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    assert "南部加一处" in page and "scenario-sites" in page and "by-town" in page
    download = client.get(f"/planner/jobs/{job_id}/download/csv")
    assert download.status_code == 200 and b"covered_2km" in download.get_data()
    download.close()
    # reopened: the same sites (the closed one still closed) and the same numbers
    reopened = client.post(f"/planner/whatif/open/{job_id}", data={"csrf_token": token})
    assert reopened.status_code == 303
    again = client.get(reopened.headers["Location"] + "/state.json").get_json()
    assert [(s["id"], s["in_service"]) for s in again["sites"]] == [(s["id"], s["in_service"]) for s in state["sites"]]
    assert again["by_town"] == state["by_town"]
    # compared with the coverage of today's centres: the same demand, the what-if's changes per town
    form = {"facilities": "service_centre", "demand": "village", "profile": "walk", "thresholds": "2km",
            "urban_threshold": "", "rural_threshold": "", "grid_spacing": "400",
            "csrf_token": csrf_token(client, "/planner/coverage")}  # fmt: skip
    submitted = client.post("/planner/coverage", data=form)
    coverage_id = submitted.headers["Location"].rsplit("/", 1)[-1]
    jobs.wait_for_job(app, coverage_id, timeout_s=300)
    compared = client.get(f"/planner/compare?a={coverage_id}&b={job_id}")
    assert compared.status_code == 200, compared.get_data(as_text=True)[:500]
    with app.app_context():
        today = job_store.get_job(get_store(), coverage_id).result["summary"]["covered_2km"]["covered"]
    html = compared.get_data(as_text=True)
    assert f">{today}<" in html and f">{state['summary']['covered']}<" in html


def test_sessions_are_bounded_per_user_in_number_and_by_idle_time():
    kept = WhatIfSessions(idle_s=3600, max_per_user=2, max_sessions=3)
    a1, a2 = (kept.add("a", object(), choices={}, sites={}, data_versions={}) for _ in range(2))
    a3 = kept.add("a", object(), choices={}, sites={}, data_versions={})
    assert kept.get(a1.id, "a") is None and kept.get(a2.id, "a") is a2 and kept.get(a3.id, "a") is a3
    b1 = kept.add("b", object(), choices={}, sites={}, data_versions={})
    assert len(kept) == 3 and kept.get(b1.id, "b") is b1 and kept.get(b1.id, "a") is None
    kept.add("c", object(), choices={}, sites={}, data_versions={})  # full: the least recently used (a2) goes
    assert kept.get(a2.id, "a") is None and kept.get(a3.id, "a") is a3
    idle = WhatIfSessions(idle_s=0, max_per_user=2, max_sessions=3)
    gone = idle.add("a", object(), choices={}, sites={}, data_versions={})
    assert idle.get(gone.id, "a") is None and len(idle) == 0


def test_the_page_is_in_english_on_request(app):
    client = _client(app)
    session_id = _start(client)
    html = client.get(f"/planner/whatif/{session_id}?lang=en").get_data(as_text=True)
    assert "Add by coordinates" in html and "By town" in html
    state = client.get(f"/planner/whatif/{session_id}/state.json").get_json()
    response = _edit(client, session_id, _token(client, session_id), action="add", lon="abc", lat="29.5")
    assert "Longitude must be" in response.get_json()["error"]
    assert state["sites"]


def test_a_scenario_saves_and_reopens_on_sqlite_and_postgresql(database_url, tmp_path, app_cache_dir, monkeypatch):
    """The saved scenario is a done job in the store: the same on both databases."""
    from cryptography.fernet import Fernet

    from layers.demo import load_demo_layers

    monkeypatch.setattr(users, "generate_password_hash", cheap_hash)
    other = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "DATABASE_URL": database_url,
                        "ENCRYPTION_KEY": Fernet.generate_key(), "CACHE_DIR": str(app_cache_dir),
                        "JOBS_DIR": str(tmp_path / "jobs")})  # fmt: skip
    with other.app_context():
        load_demo_layers(get_store(), get_district())
        users.add_user(get_store(), "planner", role="planner", password=staff_fixtures.PASSWORD)
    try:
        client = _client(other)
        session_id = _start(client)
        token = _token(client, session_id)
        state = _edit(client, session_id, token, action="add", lon="106.18", lat="29.45").get_json()
        saved = client.post(f"/planner/whatif/{session_id}/save", data={"name": "方案 A", "csrf_token": token})
        job_id = saved.headers["Location"].rsplit("/", 1)[-1]
        with other.app_context():
            record = job_store.get_job(get_store(), job_id)
        assert (record.kind, record.status, record.created_by) == ("whatif", "done", "planner")
        assert [s["id"] for s in record.parameters["sites"]] == [s["id"] for s in state["sites"]]
        reopened = client.post(f"/planner/whatif/open/{job_id}", data={"csrf_token": token})
        again = client.get(reopened.headers["Location"] + "/state.json").get_json()
        assert again["summary"] == state["summary"] and again["by_village"] == state["by_village"]
        listed = client.get("/planner/whatif").get_data(as_text=True)
        assert "方案 A" in listed
    finally:
        jobs.shutdown_worker(other)
        with other.app_context():
            get_store().close()
