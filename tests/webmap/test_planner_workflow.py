"""The planner's workflow: job names and summaries, the form refilled from a job, impossible quotas refused,
the labelled parameters panel (Flask test client, real SQLite store, jobs run by the embedded worker)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from layers import jobs as job_store
from layers import users
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import cheap_hash, csrf_token
from tests.webmap.test_planner import _make_app, _planner
from webmap import jobs
from webmap.store import get_store

demo_key, demo_db = staff_fixtures.demo_key, staff_fixtures.demo_db

SITING_FORM = {"layer": "service_centre", "model": "max_coverage", "p": "15", "per_town": "1", "keep_existing": "on",
               "demand": "village", "profile": "drive", "threshold": "15min", "candidate_radius": "2km",
               "candidates_per_town": "8", "method": "heuristic", "time_limit": "30"}  # fmt: skip
COVERAGE_FORM = {"facilities": "service_centre", "demand": "village", "profile": "walk", "thresholds": "800m, 15min",
                 "urban_threshold": "", "rural_threshold": "", "grid_spacing": "400"}  # fmt: skip


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


def _failing(job, progress, out_dir):
    msg = "no sites"
    raise ValueError(msg)


def _done(job, progress, out_dir):
    return jobs.JobOutcome(result={})


#: Data versions as a run stores them: the road file by its server path, a layer's last change in UTC.
VERSIONS = {"roads": "/srv/accessplan/data/bishan/roads.gpkg", "roads_sha256": "0123456789abcdef" * 4,
            "demand": {"rows": 7, "max_updated_at": "2026-01-01T16:30:00+00:00"}}


def test_jobs_list_a_given_name_or_one_made_of_kind_and_main_parameters(app):
    jobs.register_job_function(app, "coverage", _failing)  # a job's name needs no result
    jobs.register_job_function(app, "siting", _done)
    client = _planner(app)
    named = _submit(client, "/planner/coverage", {**COVERAGE_FORM, "name": "  步行  八百米 "})
    plain = _submit(client, "/planner/siting", SITING_FORM)
    for job_id in (named, plain):
        jobs.wait_for_job(app, job_id)
    listing = client.get("/planner/").get_data(as_text=True)
    assert "<td>步行 八百米</td>" in listing  # blanks folded
    assert "<td>选址 · 最大覆盖 · 渝馨家园 · p=15 · 15min</td>" in listing
    summary = ('<td class="job-summary">模型：最大覆盖（阈值内的需求最多）；图层：渝馨家园（残疾人服务中心）；'
               "选址数（p）：15；阈值：15min；每个镇街的站点数：1；保留现有站点：是；出行方式：驾车；需求：村（社区），按人口加权；"
               "求解方法：快速启发式（贪心加交换）</td>")  # fmt: skip
    assert summary in listing
    assert '<td class="job-summary">设施：渝馨家园（残疾人服务中心）；阈值：800m, 15min；出行方式：步行；' in listing
    english = client.get("/planner/?lang=en").get_data(as_text=True)
    assert "<td>Siting · Maximal covering · " in english
    page = client.get(f"/planner/jobs/{named}?lang=zh").get_data(as_text=True)
    assert "<h1>步行 八百米 · 任务" in page
    too_long = _post(client, "/planner/coverage", {**COVERAGE_FORM, "name": "名" * 101})
    assert too_long.status_code == 400 and "“名称”最多 100 个字；收到 101 个字。" in too_long.get_data(as_text=True)


def test_a_failed_jobs_change_parameters_opens_its_form_filled_in(app):
    jobs.register_job_function(app, "siting", _failing)
    client = _planner(app)
    submitted = {**SITING_FORM, "p": "20", "per_town": "", "model": "p_median", "threshold": "25min",
                 "candidate_radius": "3km", "candidates_per_town": "5", "time_limit": "42", "profile": "walk",
                 "name": "二十处"}  # fmt: skip
    submitted.pop("keep_existing")
    job_id = _submit(client, "/planner/siting", submitted)
    jobs.wait_for_job(app, job_id)
    page = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    link = f'<a id="change-parameters" href="/planner/siting?from={job_id}">'
    assert link in page
    form = client.get(f"/planner/siting?from={job_id}").get_data(as_text=True)
    for expected in ('id="p" name="p" type="number" min="1" max="500" value="20"',
                     'id="per_town" name="per_town" type="number" min="1" max="10" value=""',
                     '<option value="p_median" selected>', '<option value="walk" selected>',
                     'id="threshold" name="threshold" value="25min"',
                     'id="candidate_radius" name="candidate_radius" value="3km"',
                     'value="5"', 'id="time_limit" name="time_limit" type="number" min="1" max="600" value="42.0"',
                     'id="job-name" name="name" maxlength="100" value="二十处"',
                     '<option value="heuristic" selected>'):  # fmt: skip
        assert expected in form, expected
    assert 'id="keep_existing" name="keep_existing" type="checkbox">' in form  # left unticked, as submitted
    # a job of another kind is not this form's
    assert client.get(f"/planner/coverage?from={job_id}").status_code == 400


def test_a_coverage_jobs_form_comes_back_with_its_thresholds_as_text(app):
    jobs.register_job_function(app, "coverage", _failing)
    client = _planner(app)
    job_id = _submit(client, "/planner/coverage", {**COVERAGE_FORM, "scenario": "on"})
    jobs.wait_for_job(app, job_id)
    form = client.get(f"/planner/coverage?from={job_id}").get_data(as_text=True)
    assert 'value="800m, 15min"' in form and 'name="scenario" type="checkbox" checked' in form.replace(
        'id="scenario" ', ""
    )


@pytest.mark.parametrize(("p", "per_town", "refused"), [("14", "1", True), ("15", "1", False), ("29", "2", True),
                                                        ("30", "2", False)])  # fmt: skip
def test_quotas_beyond_p_are_refused_naming_the_fields_and_numbers(app, p, per_town, refused):
    jobs.register_job_function(app, "siting", _done)
    response = _post(_planner(app), "/planner/siting", {**SITING_FORM, "p": p, "per_town": per_town})
    need = 15 * int(per_town)  # the demo district (Bishan) has 15 towns
    message = (f"“每个镇街的站点数”为 {per_town}，15 个镇街共需 {need} 个站点，多于“站点总数 p”的 {p} 个；"
               f"请把 p 提高到至少 {need}，或减少每个镇街的站点数。")  # fmt: skip
    shown = message in response.get_data(as_text=True)
    assert (response.status_code, shown) == ((400, True) if refused else (303, False))


def test_the_quota_message_in_english(app):
    response = _post(_planner(app), "/planner/siting?lang=en", {**SITING_FORM, "p": "10"})
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "“Sites per town” is 1: 15 towns need 15 sites, more than the 10 of “Sites in total p”" in text


def test_the_parameters_panel_is_a_labelled_table_in_beijing_time_without_server_paths(app):
    jobs.register_job_function(app, "coverage", _failing)
    client = _planner(app)
    job_id = _submit(client, "/planner/coverage", {**COVERAGE_FORM, "scenario": "on"})
    jobs.wait_for_job(app, job_id)
    with app.app_context(), get_store().engine.begin() as conn:
        table = job_store.jobs_table
        finished = datetime(2026, 3, 1, 17, 5, tzinfo=UTC)  # 01:05 on 2 March in Beijing
        conn.execute(sa.update(table).where(table.c.id == job_id).values(finished_at=finished, data_versions=VERSIONS))
    page = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
    params = page[page.index('id="job-parameters"') : page.index("</table>", page.index('id="job-parameters"'))]
    assert "<caption>参数</caption>" in params
    assert '<tr><th scope="row">设施</th><td>渝馨家园（残疾人服务中心）</td></tr>' in params
    assert '<tr><th scope="row">出行方式</th><td>步行</td></tr>' in params
    assert '<tr><th scope="row">阈值</th><td>800m, 15min</td></tr>' in params
    assert '<tr><th scope="row">方案</th><td>是</td></tr>' in params
    assert '<tr><th scope="row">网格间距（米）</th><td>400</td></tr>' in params
    versions = page[page.index('id="job-versions"') : page.index("</table>", page.index('id="job-versions"'))]
    assert '<tr><th scope="row">道路文件</th><td>roads.gpkg</td></tr>' in versions
    assert '<tr><th scope="row">道路文件校验码</th><td>0123456789ab</td></tr>' in versions
    assert '<tr><th scope="row">需求 · 最后修改（北京时间）</th><td>2026-01-02 00:30:00</td></tr>' in versions
    assert "完成时间 2026-03-02 01:05:00（北京时间）" in page
    assert "/srv/accessplan" not in page and "<pre>" not in page
    english = client.get(f"/planner/jobs/{job_id}?lang=en").get_data(as_text=True)
    assert '<tr><th scope="row">Travel mode</th><td>Walking</td></tr>' in english


# --- progress texts and solver states in the page's language ---------------------------------------


def _reports_then_fails(job, progress, out_dir):
    from analyses.siting import IncumbentReport
    from webmap.views.planner.kind import PlannerStages

    stages = PlannerStages(progress)
    stages.expect(2)
    stages.stage("network costs from the demand points to the candidate sites and solving")
    stages(IncumbentReport("p_median", 1234.5, 1200.0), 0.5)
    raise jobs.KeyedJobError("no_solution", seconds=job.parameters["time_limit"])


def test_a_models_progress_is_stored_as_numbers_and_shown_in_the_pages_language(app):
    jobs.register_job_function(app, "siting", _reports_then_fails)
    client = _planner(app)
    job_id = _submit(client, "/planner/siting", SITING_FORM)
    jobs.wait_for_job(app, job_id)
    with app.app_context():
        stored = job_store.get_job(get_store(), job_id)
    # stored as a key and numbers, not as an English sentence
    assert jobs.read_keyed(stored.stage) == (
        "incumbent", {"bound": 1200.0, "gap": 34.5 / 1234.5, "model": "p_median", "objective": 1234.5})
    assert jobs.read_keyed(stored.error) == ("no_solution", {"seconds": 30.0})
    status = client.get(f"/planner/jobs/{job_id}.json").get_json()
    # gap = |1234.5 − 1200| / 1234.5 = 2.79 %
    assert status["stage_label"] == "p-中位：当前最好的解 1,234.5，界 1,200，差距 2.79%"
    assert status["error_label"] == "求解器在 30 秒的时间上限内没有找到可行解；请提高“求解时间上限”或改用快速启发式。"
    english = client.get(f"/planner/jobs/{job_id}.json?lang=en").get_json()
    assert english["stage_label"] == "p-median: best solution so far 1,234.5, bound 1,200, gap 2.79%"
    assert english["error_label"].startswith("The solver found no feasible solution within the time limit of 30 s")
    page = client.get(f"/planner/jobs/{job_id}?lang=zh").get_data(as_text=True)
    assert '<p id="job-error">求解器在 30 秒的时间上限内没有找到可行解' in page


def test_the_incumbent_report_keeps_the_commands_text():
    from analyses.siting import IncumbentReport

    report = IncumbentReport("max_coverage", 950.0, 1000.0)
    assert report == "max_coverage: best 950, bound 1,000, gap 5.26%"  # |950 − 1000| / 950
    assert (report.objective, report.bound, round(report.gap, 6)) == (950.0, 1000.0, round(50 / 950, 6))
    assert IncumbentReport("p_median", 10.0) == "p_median: best 10" and IncumbentReport("p_median", 10.0).gap is None


@pytest.mark.parametrize(
    ("result", "zh", "en"),
    [({"optimal": True, "gap": 0.0, "solver": "HiGHS via scipy 1.17.1", "parameters": {"method": "exact"}},
      "HiGHS；已证明最优", "HiGHS; proven optimal"),
     ({"optimal": False, "gap": 0.0123, "solver": "HiGHS via scipy 1.17.1 (stopped by the time limit; greedy+swap "
       "incumbent)", "parameters": {"method": "exact"}},
      "HiGHS；达到时间上限，未证明最优（差距 1.23%）", "HiGHS; time limit reached, not proven optimal (gap 1.23%)"),
     ({"optimal": False, "gap": None, "solver": "greedy+swap", "parameters": {"method": "heuristic"}},
      "快速启发式（贪心加交换）；未证明最优", "Fast heuristic (greedy plus swaps); not proven optimal")],
)  # fmt: skip
def test_solver_states_in_both_languages(app, result, zh, en):
    from webmap.views.planner.siting import solver_state

    with app.test_request_context("/planner/"):
        assert solver_state(result) == zh
    with app.test_request_context("/planner/?lang=en"):
        assert solver_state(result) == en
