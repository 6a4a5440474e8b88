"""A saved what-if scenario becomes a siting run that keeps its sites, then compares with the result
(Flask test client, the demo store and the Bishan network; the jobs run for real)."""

from __future__ import annotations

import re
import shutil

import pytest

from layers import jobs as job_store
from layers import users
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import cheap_hash, csrf_token, log_in, run_job
from webmap import create_app, jobs
from webmap.store import get_store

demo_key, demo_db = staff_fixtures.demo_key, staff_fixtures.demo_db

START = {"start": "layer", "facilities": "service_centre", "siting_job": "", "demand": "village",
         "profile": "walk", "threshold": "2km", "grid_spacing": "400"}  # fmt: skip
_SESSION = re.compile(r"/planner/whatif/([A-Za-z0-9_-]{20,})$")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, demo_db, demo_key, app_cache_dir):
    """A saved scenario: today's centres, the first one closed, a planned site P1 added in the south."""
    folder = tmp_path_factory.mktemp("planner-scenario")
    shutil.copyfile(demo_db, folder / "accessplan.sqlite")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(users, "generate_password_hash", cheap_hash)
        app = create_app({"TESTING": True, "SECRET_KEY": "test-secret",
                          "DATABASE_URL": f"sqlite:///{folder / 'accessplan.sqlite'}", "ENCRYPTION_KEY": demo_key,
                          "CACHE_DIR": str(app_cache_dir), "JOBS_DIR": str(folder / "jobs")})  # fmt: skip
        client = app.test_client()
        assert log_in(client, "planner").status_code == 302
        started = client.post("/planner/whatif", data={**START, "csrf_token": csrf_token(client, "/planner/whatif")})
        session_id = _SESSION.search(started.headers["Location"]).group(1)
        token = csrf_token(client, f"/planner/whatif/{session_id}")
        state = client.get(f"/planner/whatif/{session_id}/state.json").get_json()
        closed = state["sites"][0]["id"]
        for edit in ({"action": "add", "lon": 106.18, "lat": 29.45}, {"action": "close", "site_id": closed}):
            assert client.post(f"/planner/whatif/{session_id}/edit", json=edit,
                               headers={"X-CSRFToken": token}).status_code == 200  # fmt: skip
        saved = client.post(f"/planner/whatif/{session_id}/save", data={"name": "南部加一处", "csrf_token": token})
        job_id = saved.headers["Location"].rsplit("/", 1)[-1]
        with app.app_context():
            sites = job_store.get_job(get_store(), job_id).parameters["sites"]
        kept = sorted(s["id"] for s in sites if s["in_service"])
        yield app, client, job_id, kept, closed
        jobs.shutdown_worker(app)
        with app.app_context():
            get_store().close()


def _siting_form(kept: list[str], job_id: str, **changes) -> dict:
    return {"layer": "service_centre", "model": "max_coverage", "p": str(len(kept) + 2), "per_town": "",
            "demand": "village", "profile": "walk", "threshold": "2km", "candidate_radius": "2km",
            "candidates_per_town": "4", "method": "heuristic", "time_limit": "30", "scenario": job_id,
            **changes}  # fmt: skip


def test_the_siting_form_opens_from_a_scenario_with_its_choices(scenario):
    _, client, job_id, kept, closed = scenario
    assert "P1" in kept and closed not in kept and len(kept) == 5  # 5 centres today, one closed, P1 added
    page = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    assert f'<a id="scenario-to-siting" href="/planner/siting?scenario={job_id}">' in page
    form = client.get(f"/planner/siting?scenario={job_id}").get_data(as_text=True)
    assert f'<input type="hidden" name="scenario" value="{job_id}">' in form
    assert "从推演方案“南部加一处”开始：保留它在用的 5 个站点（都计入站点总数 p）" in form
    assert 'id="p" name="p" type="number" min="1" max="500" value="15"' in form  # the plan's 15 ≥ 5 kept
    assert 'id="per_town" name="per_town" type="number" min="1" max="10" value=""' in form
    assert 'id="keep_existing" name="keep_existing" type="checkbox">' in form
    assert 'id="threshold" name="threshold" value="2km"' in form and '<option value="walk" selected>' in form
    assert '<option value="village" selected>' in form


def test_p_below_the_kept_sites_is_refused_on_the_form(scenario):
    _, client, job_id, kept, _closed = scenario
    response = client.post("/planner/siting", data={**_siting_form(kept, job_id, p="4"),
                                                    "csrf_token": csrf_token(client, "/planner/siting")})  # fmt: skip
    assert response.status_code == 400
    message = "“站点总数 p”为 4，少于推演方案保留的 5 个站点（都计入 p）；请把 p 提高到至少 5。"
    assert message in response.get_data(as_text=True)


def test_a_scenario_becomes_a_siting_run_that_keeps_its_sites_and_compares_with_it(scenario):
    app, client, job_id, kept, _closed = scenario
    record = run_job(app, client, "/planner/siting", _siting_form(kept, job_id))
    siting_id, result = record.id, record.result
    # every kept site is open, and they count toward p = 5 + 2
    assert set(kept) <= set(result["selected"]) and len(result["selected"]) == 7
    assert sorted(result["parameters"]["fixed_sites"]) == kept
    p1 = next(s for s in result["sites"] if s["id"] == "P1")
    assert (round(p1["lon"], 6), round(p1["lat"], 6)) == (106.18, 29.45)  # where the scenario put it
    new = sorted(set(result["selected"]) - set(kept))
    assert len(new) == 2

    page = client.get(f"/planner/compare?a={job_id}&b={siting_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "结果 A 有 5 个站点，结果 B 有 7 个；只在 A 中的 0 个，只在 B 中的 2 个。" in html
    only_b = html[html.index('id="sites-only-b"') : html.index("</table>", html.index('id="sites-only-b"'))]
    assert re.findall(r'<th scope="row">([^<]+)</th>', only_b) == new
    assert 'id="sites-only-a"' not in html
    names = re.search(r'data-sync-maps="(map_\w+) (map_\w+)"', html)
    assert names and names.group(1) != names.group(2)
    assert html.count('class="folium-map"') == 2 and '<script src="/static/js/map_sync.js"></script>' in html
    # the scenario's page offers the siting result among the results it compares with
    assert f'<option value="{siting_id}">' in client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)


def test_the_sites_a_scenario_closed_are_neither_kept_nor_candidates_of_its_siting_run(scenario):
    app, client, job_id, kept, closed = scenario
    form = client.get(f"/planner/siting?scenario={job_id}").get_data(as_text=True)
    assert f"它关闭的 1 处设施（{closed}）不保留，也不作候选。" in form
    # keep_existing on: without the fix the closed centre came back as a kept site of today
    record = run_job(app, client, "/planner/siting", _siting_form(kept, job_id, keep_existing="on"))
    siting_id = record.id
    assert record.parameters["closed_sites"] == [closed]
    result = record.result
    assert result["parameters"]["closed_sites"] == [closed]
    assert closed not in result["selected"] and closed not in result["parameters"]["current_sites"]
    assert set(kept) <= set(result["selected"]) and len(result["selected"]) == len(kept) + 2
    import pyogrio

    candidates = pyogrio.read_dataframe(f"{record.result_path}/siting.gpkg", layer="candidates", read_geometry=False)
    assert closed not in set(candidates["id"].astype(str))
    # the job's parameters panel names the closed facility under its label
    page = client.get(f"/planner/jobs/{siting_id}").get_data(as_text=True)
    assert "推演方案关闭的设施（不保留、不作候选）" in page and closed in page


def test_a_closed_optimum_is_not_chosen_and_the_run_equals_enumeration_over_the_rest(scenario, tmp_path):
    # p-median, one site, among today's open centres and two file candidates, villages weighted by population
    from analyses.inputs import load_demand
    from analyses.runs.siting import SitingParameters, run_siting, site_pool, siting_candidates, without_closed
    from analyses.runs.siting import whole_network_cutoff as cutoff_of
    from analyses.siting import model_from_network
    from layers.privacy import CLI_READER
    from webmap.runs import app_network
    from webmap.store import get_district

    app = scenario[0]
    csv = tmp_path / "sites.csv"
    csv.write_text("id,lon,lat,town_code\nx1,106.2248,29.5949,500120001\nx2,106.2,29.59,500120002\n",
                   encoding="utf-8")  # fmt: skip
    base = SitingParameters(layer="service_centre", demand="village", threshold=None, model="p_median", p=1,
                            profile="walk", weight_column="population", candidates=str(csv), datum="wgs84")  # fmt: skip
    with app.app_context():
        inputs = {"store": get_store(), "district": get_district(), "network": app_network(), "reader": CLI_READER}
        best = run_siting(base, **inputs)
        (optimum,) = best.result.selected
        shut = run_siting(SitingParameters(**{**base.__dict__, "closed_sites": (optimum,)}), **inputs)
        # enumeration: every remaining candidate alone, on the same costs
        roads = inputs["network"]()
        demand = load_demand("village", store=inputs["store"], district=inputs["district"], reader=CLI_READER)
        found = siting_candidates(roads.placer, inputs["store"], inputs["district"], source=str(csv), datum="wgs84")
        pool, current = site_pool("service_centre", inputs["store"].features("service_centre"), found)
        rest, rest_current = without_closed(pool, current, (optimum,))
        assert optimum in set(pool["id"]) and optimum not in set(rest["id"]) and optimum not in rest_current
        model = model_from_network("p_median", roads.placer, demand, rest, profile="walk",
                                   cutoff=cutoff_of(roads.placer.net, "walk"),
                                   weight_column="population", p=1)  # fmt: skip
        objectives = {c: model.evaluate([c]).objective for c in rest["id"]}
    (chosen,) = shut.result.selected
    assert chosen != optimum and len(objectives) == len(pool) - 1
    assert shut.result.objective == pytest.approx(min(objectives.values()))
    assert chosen == min(objectives, key=objectives.get)
    assert best.result.objective <= shut.result.objective
    assert shut.parameters["closed_sites"] == [optimum] and optimum not in shut.parameters["current_sites"]
