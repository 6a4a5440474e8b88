"""Tests for the English staff pages (issue 8): caseworker list, toilet register, admin users, sign-in, planner.

With ``?lang=en`` the staff pages show English headings and labels; what stays Chinese is data
(town, village and toilet names, addresses, needs, masked names) and the "中文" switch link. The
Chinese default still renders Chinese.
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from html.parser import HTMLParser

import pandas as pd
import pytest

from layers import jobs as job_store
from layers import schema, users
from layers.privacy import read_households
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import ACCOUNTS, TOWN_A, cheap_hash, csrf_token, log_in
from webmap import create_app, jobs
from webmap.store import get_district, get_store

demo_key, demo_db, demo_cache = staff_fixtures.demo_key, staff_fixtures.demo_db, staff_fixtures.demo_cache
app, client, client_as = staff_fixtures.app, staff_fixtures.client, staff_fixtures.client_as

_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
#: Attributes whose values people read (screen readers, form hints).
_READ_ATTRIBUTES = ("aria-label", "placeholder", "title", "alt")


class _TextCollector(HTMLParser):
    """Collect the text people see or hear: text nodes and read attributes, not scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.texts.extend(value for name, value in attrs if name in _READ_ATTRIBUTES and value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(data.strip())


def _leftover_chinese(page: str, data_values: set[str]) -> list[str]:
    """Return the page's visible texts that still hold Chinese once the data values are taken out."""
    collector = _TextCollector()
    collector.feed(page)
    values = sorted((v for v in data_values | {"中文"} if v), key=len, reverse=True)
    leftovers = []
    for text in collector.texts:
        rest = text
        for value in values:
            rest = rest.replace(value, "")
        if _CJK.search(rest):
            leftovers.append(text)
    return leftovers


def _strings(frame: pd.DataFrame) -> set[str]:
    return {str(v) for column in frame.columns if column != "geometry" for v in frame[column].dropna()}


def _town_and_village_names(app) -> set[str]:
    with app.app_context():
        district = get_district()
        return set(district.towns["name"].astype(str)) | set(district.villages["name"].astype(str))


def _english(client, path: str) -> str:
    response = client.get(path, query_string={"lang": "en"})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    page = response.get_data(as_text=True)
    assert '<html lang="en">' in page
    return page


# --- English -------------------------------------------------------------------------------------


def test_caseworker_household_list_in_english(app, client_as):
    client = client_as("caseworker_a")
    page = _english(client, "/caseworker/")
    with app.test_request_context():
        households = read_households(get_store(), role="caseworker", user=ACCOUNTS["caseworker_a"][0], towns=(TOWN_A,))
    assert "<h1>Home modification workbench</h1>" in page
    assert f'<h2 id="list-heading">Households ({len(households)})</h2>' in page
    assert '<h2 id="progress-heading">Progress of home modifications (your towns)</h2>' in page
    for label in ("ID", "Village (community)", "Name", "Address", "Disability category", "Grade", "Status"):
        assert f'<th scope="col">{label}</th>' in page
    assert "<legend>Disability grade</legend>" in page and "> Grade 1</label>" in page
    assert "> surveyed</label>" in page  # status filter labels
    assert ">Sign out</button>" in page and ">Household workbench</a>" in page
    assert "Signed in: cw-a (Caseworker (by town))" in page
    data = _strings(households) | _town_and_village_names(app)
    assert _leftover_chinese(page, data) == []


def test_toilet_register_in_english(app, client_as):
    client = client_as("bureau")
    page = _english(client, "/toilets/")
    with app.app_context():
        toilets = get_store().features(schema.ACCESSIBLE_TOILET)
    programme = toilets[toilets[schema.BUILD_TYPE].isin(("rebuild", "new"))]
    accepted = programme[programme[schema.STATUS] == "accepted"]
    assert "<h1>Accessible toilet construction register</h1>" in page
    assert f"Total: {len(accepted)} of 38 accepted" in page
    assert f"Accessible toilets matching the filters: {len(programme)}" in page
    for label in ("Build type", "Status", "Contractor", "Planned completion", "Last changed (Beijing time)"):
        assert f'<th scope="col">{label}</th>' in page
    assert ">Rebuild</th>" in page and ">New build</th>" in page
    assert ">Register and progress</a>" in page and ">Import the register (Excel)</a>" in page
    data = _strings(toilets) | _town_and_village_names(app)
    assert _leftover_chinese(page, data) == []


def test_admin_users_page_in_english(app, client_as):
    client = client_as("admin")
    page = _english(client, "/admin/users")
    assert "<h1>User management</h1>" in page
    assert f"<caption>All accounts ({len(ACCOUNTS)})</caption>" in page
    assert "<td>Caseworker (by town)</td>" in page and "<td>System administrator</td>" in page
    assert "<td>Whole district</td>" in page and "<td>Active</td>" in page
    assert ">Reset password<" in page and ">Deactivate<" in page
    assert '<label for="user-password">Password (at least 10 characters; leave empty to generate one)</label>' in page
    assert _leftover_chinese(page, _town_and_village_names(app)) == []


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/admin/access-log", "<h1>Access log</h1>"),
        ("/admin/users/cw-a/edit", "<h1>Change the role of cw-a</h1>"),
        ("/admin/users/cw-a/password", "<h1>Reset the password of cw-a</h1>"),
        ("/account/password", "<h1>Change password</h1>"),
        ("/account", "<h1>My account</h1>"),
    ],
)
def test_the_admin_and_password_pages_in_english(app, client_as, path, heading):
    client = client_as("admin")
    with app.app_context():
        store = get_store()
        store.log_access("household", ["HH-00013"], user="cw-a", reason="入户走访核实需求", channel="web",
                         ip="10.0.0.1")  # fmt: skip
        store.log_access("household", ["*"], user="planner", reason="bulk read of 3 rows", channel="api")
    page = _english(client, path)
    assert heading in page
    if path == "/admin/access-log":  # the bulk read too, in English
        assert ">(bulk read)<" in client.get("/admin/access-log?kind=all&lang=en").get_data(as_text=True)
    assert _leftover_chinese(page, _town_and_village_names(app) | {"入户走访核实需求"}) == []


def test_deactivating_a_user_flashes_english(client_as):
    client = client_as("admin")
    _english(client, "/admin/users")  # remembers English in the cookie
    token = csrf_token(client, "/admin/users")
    response = client.post("/admin/users/bureau/active", data={"active": "0", "csrf_token": token})
    assert response.status_code == 302
    page = client.get("/admin/users").get_data(as_text=True)
    assert "Deactivated user bureau." in page
    assert "<td>Deactivated</td>" in page


def test_sign_in_page_in_english(client):
    page = _english(client, "/login")
    assert "<h1>Staff sign-in</h1>" in page
    assert '<label for="login-name">User name</label>' in page
    assert '<label for="login-password">Password</label>' in page
    assert '<button type="submit">Sign in</button>' in page
    assert _leftover_chinese(page, set()) == []


def test_wrong_password_is_reported_in_english(client):
    _english(client, "/login")
    token = csrf_token(client)
    response = client.post("/login", data={"name": "cw-a", "password": "wrong password", "csrf_token": token})
    assert response.status_code == 401
    assert "Wrong user name or password." in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("role_key", "path", "message"),
    [
        ("caseworker_a", "/caseworker/?status=done", "Parameter status must be one of surveyed, approved"),
        ("bureau", "/toilets/?build_type=old", "build_type must be one of existing, rebuild, new; got &#39;old&#39;."),
        ("bureau", "/toilets/NO-SUCH-ID", "There is no accessible toilet with ID &#39;NO-SUCH-ID&#39;."),
    ],
)
def test_error_messages_in_english(client_as, role_key, path, message):
    client = client_as(role_key)
    response = client.get(path + ("&" if "?" in path else "?") + "lang=en")
    assert response.status_code in (400, 404)
    assert message in response.get_data(as_text=True)


# --- planner ---------------------------------------------------------------------------------------

# 15 渝馨家园, one per town, today's centres kept, villages within 15 min by car.
_SITING_FORM = {"layer": "service_centre", "model": "max_coverage", "p": "15", "per_town": "1", "keep_existing": "on",
                "demand": "village", "profile": "drive", "threshold": "15min", "candidate_radius": "2km",
                "candidates_per_town": "8", "method": "exact", "time_limit": "60"}  # fmt: skip


@pytest.fixture(scope="module")
def siting_run(tmp_path_factory, demo_db, demo_key, app_cache_dir):
    """One siting job run to the end on a copy of the demo store; yields the app, a planner client and its id."""
    folder = tmp_path_factory.mktemp("i18n-siting")
    shutil.copyfile(demo_db, folder / "accessplan.sqlite")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(users, "generate_password_hash", cheap_hash)
        app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "ENCRYPTION_KEY": demo_key,
                          "DATABASE_URL": f"sqlite:///{folder / 'accessplan.sqlite'}",
                          "CACHE_DIR": str(app_cache_dir), "JOBS_DIR": str(folder / "jobs")})  # fmt: skip
        client = app.test_client()
        assert log_in(client, "planner").status_code == 302
        response = client.post(
            "/planner/siting", data={**_SITING_FORM, "csrf_token": csrf_token(client, "/planner/siting")}
        )
        assert response.status_code == 303, response.get_data(as_text=True)
        job_id = response.headers["Location"].rsplit("/", 1)[-1]
        jobs.wait_for_job(app, job_id, timeout_s=300)
        yield app, client, job_id
        jobs.shutdown_worker(app)
        app.extensions["accessplan_store"].close()


def test_planner_index_in_english(client_as):
    page = _english(client_as("planner"), "/planner/")
    assert "<h1>Planning analyses</h1>" in page
    assert ">Coverage</a>: Network distance or time from every demand point" in page
    assert ">Service gaps</a>:" in page and ">Plan targets dashboard</a>:" in page
    assert '<h2 id="jobs-heading">Recent analysis jobs</h2>' in page and "<p>No analysis jobs yet.</p>" in page
    assert _leftover_chinese(page, set()) == []


def test_coverage_form_in_english(client_as):
    page = _english(client_as("planner"), "/planner/coverage")
    assert "<h1>Coverage</h1>" in page
    assert '<label for="facilities">Facility layer</label>' in page
    assert ">Yuxin Home (disability service centre)</option>" in page
    assert '<option value="household" selected>Households in need (IDs, towns and villages only)</option>' in page
    assert '<option value="walk" selected>Walking</option>' in page and ">Wheelchair</option>" in page
    assert '<label for="thresholds">Thresholds (one or more, separated by commas)</label>' in page
    assert '<button type="submit">Start the analysis</button>' in page
    assert _leftover_chinese(page, set()) == []


def test_a_bad_coverage_form_is_explained_in_english(client_as):
    client = client_as("planner")
    _english(client, "/planner/coverage")  # remembers English in the cookie
    form = {"facilities": "service_centre", "demand": "village", "profile": "walk", "thresholds": "800 steps",
            "grid_spacing": "10", "csrf_token": csrf_token(client, "/planner/coverage")}  # fmt: skip
    response = client.post("/planner/coverage", data=form)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "The form has these problems; please correct them and submit again:" in page
    assert "<li>Threshold &#39;800 steps&#39; not understood: write it like 800m, 1.5km or 15min.</li>" in page
    assert "<li>The grid spacing must be a number between 50 and 5000 metres; got &#39;10&#39;.</li>" in page
    assert _leftover_chinese(page, set()) == []


def test_siting_form_in_english(client_as):
    page = _english(client_as("planner"), "/planner/siting")
    assert "<h1>Siting</h1>" in page
    assert '<label for="model">Siting model</label>' in page
    assert '<option value="max_coverage" selected>Maximal covering (most demand within the threshold)</option>' in page
    assert '<option value="drive" selected>Driving</option>' in page
    assert '<button type="submit">Start siting</button>' in page
    assert _leftover_chinese(page, set()) == []


def test_gaps_form_in_english(client_as):
    page = _english(client_as("planner"), "/planner/gaps")
    assert "<h1>Service gaps</h1>" in page
    assert '<label for="hex_size">Hexagon size (metres)</label>' in page
    assert '<label for="roads">Also find road stretches beyond the threshold (slower)</label>' in page
    assert _leftover_chinese(page, set()) == []


def test_targets_dashboard_in_english(app, client_as):
    from analyses.targets import targets_report_from_store

    client = client_as("planner")
    _english(client, "/planner/")  # remembers English in the cookie
    response = client.get("/planner/targets", query_string={"date": "2023-06-30"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<h1>Plan targets dashboard</h1>" in page
    assert "<p>Plan period 2021–2025; the state on 2023-06-30.</p>" in page
    assert '<h2 id="indicators-heading">Main indicators (Box 1)</h2>' in page
    for label in ("No.", "Task", "Lead units", "Start", "Deadline", "Status", "Days to the deadline"):
        assert f'<th scope="col">{label}</th>' in page
    with app.app_context():
        district = get_district()
        report = targets_report_from_store(get_store(), district.plan_dir, district.towns, on=date(2023, 6, 30))
    tables = report.to_dict()
    data = {str(v) for key in ("indicators", "key_projects", "plan_tasks", "huican_tasks") for row in tables[key]
            for v in row.values() if isinstance(v, str)}  # fmt: skip
    assert _leftover_chinese(page, data) == []


def _fake_coverage(job, progress, out_dir):
    """A coverage job without the network: two towns, two points each, covered by hand (800m: 2 of 4; 1km: 3 of 4)."""
    import geopandas as gpd
    from shapely.geometry import Point

    a = {"p1": True, "p2": True, "p3": False, "p4": False}
    covered = {"p1": True, "p2": False, "p3": True, "p4": True} if job.parameters["thresholds"] == ["1km"] else a
    towns = {"p1": "500120001", "p2": "500120001", "p3": "500120100", "p4": "500120100"}
    column = f"covered_{job.parameters['thresholds'][0]}"
    points = gpd.GeoDataFrame({"demand_id": list(covered), "town_code": list(towns.values()),
                               column: list(covered.values())},
                              geometry=[Point(106.2 + i / 100, 29.6) for i in range(4)], crs="EPSG:4326")  # fmt: skip
    points.to_file(out_dir / "coverage.gpkg", layer="coverage")
    facilities = gpd.GeoDataFrame(
        {"id": ["F1"], "name": ["渝馨家园 F1"]}, geometry=[Point(106.21, 29.6)], crs="EPSG:4326"
    )
    facilities.to_file(out_dir / "coverage.gpkg", layer="facilities")
    n = sum(covered.values())
    by_town = [{"town_code": t, "points": 2, f"{column}_count": sum(covered[p] for p in towns if towns[p] == t),
                f"{column}_share": sum(covered[p] for p in towns if towns[p] == t) / 2, "unreachable": 0}
               for t in ("500120001", "500120100")]  # fmt: skip
    summary = {"points": 4, "unreachable": 0, "too_far_from_road": 0, column: {"covered": n, "weighted_share": n / 4}}
    return jobs.JobOutcome(result={"coverage_columns": [column], "summary": summary, "by_town": by_town,
                                   "by_village": [], "scenario": None})  # fmt: skip


def test_a_coverage_result_and_a_comparison_in_english(app, client_as, tmp_path):
    app.config["JOBS_DIR"] = str(tmp_path / "jobs")
    jobs.register_job_function(app, "coverage", _fake_coverage)
    client = client_as("planner")
    _english(client, "/planner/")  # remembers English in the cookie
    form = {"facilities": "service_centre", "demand": "village", "profile": "walk", "grid_spacing": "400"}
    ids = []
    for threshold in ("800m", "1km"):
        token = csrf_token(client, "/planner/coverage")
        response = client.post("/planner/coverage", data={**form, "thresholds": threshold, "csrf_token": token})
        assert response.status_code == 303, response.get_data(as_text=True)
        ids.append(response.headers["Location"].rsplit("/", 1)[-1])
        jobs.wait_for_job(app, ids[-1])
    data = _town_and_village_names(app) | {"渝馨家园 F1"}
    page = client.get(f"/planner/jobs/{ids[0]}").get_data(as_text=True)
    assert re.search(rf"<h1>Coverage · [^<]*Walking[^<]* · Job {ids[0][:8]}</h1>", page)  # its name: kind, parameters
    assert '<th scope="col">Covered (800m)</th>' in page and "<td>2 / 4</td>" in page
    assert "Demand points unreachable along the roads: 0; demand points too far from a road: 0." in page
    assert "Demand points covered (2)" in page and "Facilities counted" in page  # map legends
    assert _leftover_chinese(page, data) == []
    listing = client.get("/planner/").get_data(as_text=True)
    assert "<td>Coverage</td>" in listing and "<td>Done</td>" in listing
    assert _leftover_chinese(listing, data) == []
    page = client.get(f"/planner/compare?a={ids[0]}&b={ids[1]}").get_data(as_text=True)
    assert "<h1>Compare results: Coverage</h1>" in page
    assert "<td>2</td><td>3</td><td>+1</td>" in page  # covered in A, in B, change
    assert "3 in all: 2 newly covered, 1 no longer covered." in page  # p3, p4 gained; p2 lost
    assert _leftover_chinese(page, data) == []


def test_job_stages_stored_in_chinese_are_shown_in_english(app):
    from webmap.views.planner.pages import stage_label

    with app.test_request_context("/planner/", query_string={"lang": "en"}):
        assert stage_label("计算覆盖") == "Measuring coverage"  # marked with N_ in the worker, stored in Chinese
        assert stage_label("求解完成") == "Solved"
        assert stage_label(None) == "Waiting to start"
        assert stage_label("reading the facility and demand points") == "reading the facility and demand points"
    with app.test_request_context("/planner/"):
        assert stage_label("计算覆盖") == "计算覆盖"


def test_a_finished_siting_result_in_english(siting_run):
    app, client, job_id = siting_run
    page = _english(client, f"/planner/jobs/{job_id}")
    assert re.search(rf"<h1>Siting · Maximal covering · [^<]* · Job {job_id[:8]}</h1>", page)
    assert 'Status: <strong id="job-status">Done</strong>' in page
    assert "<li>Model: Maximal covering (most demand within the threshold); Sites chosen: " in page
    assert '<strong id="n-sites">15</strong> (10 new)</li>' in page
    assert (
        '<h2 id="sites-heading">Chosen sites</h2>' in page
        and '<h2 id="downloads-heading">Download the results</h2>' in page
    )
    for label in ("Site", "Town", "Type", "Longitude", "Latitude"):
        assert f'<th scope="col">{label}</th>' in page
    # Map legends (in the map's script): sites kept and new, demand points by before/after coverage.
    assert "Existing sites kept (5)" in page and "Newly chosen sites (10)" in page
    assert "Lines from demand points to their assigned sites" in page
    with app.app_context():
        sites = pd.DataFrame(job_store.get_job(get_store(), job_id).result["sites"])
    assert sites["new"].sum() == 10 and (~sites["new"].astype(bool)).sum() == 5  # 15 towns, one each, 5 kept
    data = _town_and_village_names(app) | _strings(sites)
    assert _leftover_chinese(page, data) == []


# --- Chinese default -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role_key", "path", "chinese", "english"),
    [
        ("caseworker_a", "/caseworker/", "<h1>无障碍改造户工作台</h1>", "Home modification workbench"),
        ("bureau", "/toilets/", "<h1>无障碍厕所建设登记</h1>", "Accessible toilet construction register"),
        ("admin", "/admin/users", "<h1>用户管理</h1>", "User management"),
        ("public", "/login", "<h1>工作人员登录</h1>", "Staff sign-in"),
    ],
)
def test_chinese_is_the_default(client_as, role_key, path, chinese, english):
    page = client_as(role_key).get(path).get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert chinese in page
    assert english not in page


def test_leftover_check_finds_chinese_chrome(client):
    page = client.get("/login").get_data(as_text=True)
    leftovers = _leftover_chinese(page, set())
    assert "工作人员登录" in leftovers and "用户名" in leftovers
