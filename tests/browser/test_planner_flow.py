"""Browser test of the planner pages: a siting job submitted, its progress bar watched, the result read."""

from __future__ import annotations

import threading

import pytest

from layers import users
from tests.browser.harness import axe_violations, wait_until
from webmap import jobs
from webmap.store import get_store

PASSWORD = "browser planner 123"

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


@pytest.fixture(scope="session")
def planner(demo_app, tmp_path_factory):
    """A planner account in the browser app's store; job files go to a temporary folder."""
    demo_app.config["SESSION_COOKIE_SECURE"] = False
    demo_app.config["JOBS_DIR"] = str(tmp_path_factory.mktemp("browser-jobs"))
    with demo_app.app_context():
        users.add_user(get_store(), "planner-browser", role="planner", password=PASSWORD)
    return "planner-browser"


@pytest.fixture
def held_siting(demo_app):
    """Run the real siting job, but hold it when its second stage starts until the test lets it go.

    A siting job on the demo district can finish between two polls of the page; holding it mid-way lets the
    test see the page show a stage and a percent strictly between 0 and 100, every time.
    """
    release = threading.Event()
    run_siting = jobs.job_function(demo_app, "siting")

    def held(job, progress, out_dir):
        stage = progress.stage

        def stage_then_hold(text):
            stage(text)
            if progress.done == 2:
                release.wait(timeout=300)

        progress.stage = stage_then_hold
        return run_siting(job, progress, out_dir)

    jobs.register_job_function(demo_app, "siting", held)
    yield release
    release.set()
    jobs.register_job_function(demo_app, "siting", run_siting)


def test_a_planner_runs_a_siting_job_and_watches_it_reach_the_result(
    page, planner, held_siting, axe_source, screenshot_dir
):
    page.goto(f"{page.base_url}/login?next=/planner/siting")
    page.fill("#login-name", planner)
    page.fill("#login-password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/planner/siting")
    assert page.input_value("#p") == "15" and page.input_value("#per_town") == "1"
    assert axe_violations(page, axe_source) == []

    page.click("text=开始选址")
    page.wait_for_url("**/planner/jobs/*")
    bar = page.locator("#job-bar")
    assert bar.is_visible()
    # The bar moves past the first stage while the page polls; the stage text names what runs.
    wait_until(page, "() => Number(document.getElementById('job-bar').value) > 0", timeout_s=120)
    stage = page.inner_text("#job-stage")
    assert stage and stage != "等待开始"
    percent = page.inner_text("#job-percent")
    assert percent.endswith("%") and 0 < int(percent[:-1]) < 100
    assert page.locator("#chosen-sites").count() == 0

    held_siting.set()
    page.wait_for_selector("#chosen-sites", timeout=300_000)  # the page reloads itself when the job is done
    assert page.locator("#job-bar").count() == 0
    assert page.inner_text("#n-sites") == "15"
    assert page.locator("#chosen-sites tbody tr").count() == 15
    assert page.locator("#by-town tbody tr").count() == 15
    assert page.locator(".folium-map, .leaflet-container").count() >= 1
    assert axe_violations(page, axe_source) == []
    page.screenshot(path=str(screenshot_dir / "planner_siting.png"), full_page=True)
    assert page.traffic.blocked == [] and page.traffic.errors == []
