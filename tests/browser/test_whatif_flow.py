"""Browser test of the what-if page: sites added (form, village, map click), dragged, moved, removed and closed
in real Chromium; the page's per-town table then equals `accessplan coverage` on the same sites."""

from __future__ import annotations

import json

import pytest

from layers import users
from tests.browser.harness import axe_violations, wait_until
from webmap.store import get_district, get_store

PASSWORD = "browser whatif 123"

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


@pytest.fixture(scope="session")
def whatif_planner(demo_app, tmp_path_factory):
    """A planner account of its own in the browser app's store."""
    demo_app.config["SESSION_COOKIE_SECURE"] = False
    demo_app.config.setdefault("JOBS_DIR", str(tmp_path_factory.mktemp("browser-whatif-jobs")))
    with demo_app.app_context():
        users.add_user(get_store(), "planner-whatif", role="planner", password=PASSWORD)
    return "planner-whatif"


def _edited(page, n: int) -> None:
    wait_until(page, f"() => Number(document.body.dataset.whatifEdits || 0) >= {n}", timeout_s=60)
    assert page.inner_text("#whatif-message").startswith("已更新"), page.inner_text("#whatif-message")


def _rows(page, table: str) -> list[list[str]]:
    rows = page.locator(f"{table} tbody tr")
    return [[c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()] for i in range(rows.count())]


def _sites(page) -> list[dict]:
    return [{"id": r[0], "place": r[1], "lon": float(r[2]), "lat": float(r[3]), "status": r[4]}
            for r in _rows(page, "#whatif-sites")]  # fmt: skip


def _site(page, site_id: str) -> dict:
    return next(s for s in _sites(page) if s["id"] == site_id)


def test_a_planner_edits_sites_and_the_table_equals_the_cli(
    page, demo_app, whatif_planner, axe_source, screenshot_dir, tmp_path
):
    page.goto(f"{page.base_url}/login?next=/planner/whatif")
    page.fill("#login-name", whatif_planner)
    page.fill("#login-password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/planner/whatif")
    assert axe_violations(page, axe_source) == []
    page.select_option("#demand", "village")
    page.select_option("#profile", "walk")
    page.fill("#threshold", "2km")
    page.click("text=开始推演", no_wait_after=True)  # the first what-if prepares the district's network
    page.wait_for_url("**/planner/whatif/*", timeout=300_000)
    wait_until(page, "() => document.body.dataset.whatifReady === '1'", timeout_s=120)
    existing = [s["id"] for s in _sites(page)]
    assert existing and all(s["status"] == "现有" for s in _sites(page))
    assert page.locator(".whatif-site").count() == len(existing)

    # 1. by typed coordinates (keyboard: Enter submits the form)
    page.fill("#add-lon", "106.18")
    page.fill("#add-lat", "29.45")
    page.press("#add-lat", "Enter")
    _edited(page, 1)
    p1 = _site(page, "P1")
    assert (p1["lon"], p1["lat"], p1["status"]) == (106.18, 29.45, "规划") and " · " in p1["place"]
    # 2. by a village chosen from the list
    option = page.locator("#village-options option").nth(30).get_attribute("value")
    page.fill("#add-village-name", option)
    page.click("text=在此村（社区）增加")
    _edited(page, 2)
    assert _sites(page)[-1]["id"] == "P2"
    # 3. by a click on the map
    frame = page.locator("#whatif-map-frame").bounding_box()
    page.mouse.click(frame["x"] + frame["width"] * 0.45, frame["y"] + frame["height"] * 0.55)
    _edited(page, 3)
    before = _site(page, "P3")
    # 4. P3 dragged on the map
    marker = page.locator(".whatif-site[title$='(P3)']").bounding_box()
    x, y = marker["x"] + marker["width"] / 2, marker["y"] + marker["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y - 30, steps=8)
    page.mouse.up()
    _edited(page, 4)
    after = _site(page, "P3")
    assert (after["lon"], after["lat"]) != (before["lon"], before["lat"])
    # 5. P1 moved by the form
    page.select_option("#move-id", "P1")
    page.fill("#move-lon", "106.10")
    page.fill("#move-lat", "29.52")
    page.click("#move-site button[type=submit]")
    _edited(page, 5)
    assert (_site(page, "P1")["lon"], _site(page, "P1")["lat"]) == (106.10, 29.52)
    # 6. P2 removed, 7. an existing centre closed (buttons, reachable by keyboard)
    page.click("#whatif-sites button:has-text('移除 P2')")
    _edited(page, 6)
    page.click(f"#whatif-sites button:has-text('关闭 {existing[0]}')")
    _edited(page, 7)
    sites = _sites(page)
    assert "P2" not in [s["id"] for s in sites]
    assert _site(page, existing[0])["status"] == "已关闭"
    assert axe_violations(page, axe_source) == []
    page.screenshot(path=str(screenshot_dir / "planner_whatif.png"), full_page=True)
    assert page.traffic.blocked == [] and page.traffic.errors == []

    # the same scenario for the CLI: the sites in service as a facility file
    kept = [s for s in sites if s["status"] != "已关闭"]
    features = [{"type": "Feature", "properties": {"id": s["id"]},
                 "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]}} for s in kept]  # fmt: skip
    facilities = tmp_path / "scenario.geojson"
    facilities.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    out = tmp_path / "coverage.json"
    from webmap.cli import main

    args = ["coverage", "--facilities", str(facilities), "--demand", "village", "--profile", "walk",
            "--threshold", "2km", "--weight", "population", "--out", str(out)]  # fmt: skip
    result = demo_app.test_cli_runner().invoke(main, args)
    assert result.exit_code == 0, result.output
    cli = json.loads(out.read_text(encoding="utf-8"))
    with demo_app.app_context():
        towns = get_district().towns
        names = dict(zip(towns["town_code"], towns["name"], strict=True))
    expected = [[names[str(r["town_code"])], str(int(r["points"])), str(int(r["covered_2km_count"])),
                 f"{100 * r['covered_2km_share']:.1f}%", str(int(r["unreachable"]))]
                for r in cli["by_town"]]  # fmt: skip
    assert sum(int(r["covered_2km_count"]) for r in cli["by_town"]) > 0
    assert _rows(page, "#whatif-by-town") == expected
    assert page.inner_text("#total-covered") == str(cli["summary"]["covered_2km"]["covered"])

    # the scenario saved, then a siting run from it keeps its sites in service (each counts toward p)
    page.fill("#scenario-name", "浏览器方案")
    page.click("text=保存方案")
    page.wait_for_url("**/planner/jobs/*")
    scenario_id = page.url.rsplit("/", 1)[-1]
    page.click("#scenario-to-siting")
    page.wait_for_url("**/planner/siting?scenario=*")
    assert page.inner_text("#scenario-note").startswith(f"从推演方案“浏览器方案”开始：保留它在用的 {len(kept)} 个站点")
    assert page.input_value("#threshold") == "2km" and not page.is_checked("#keep_existing")
    assert axe_violations(page, axe_source) == []
    page.fill("#p", str(len(kept) + 1))
    page.fill("#per_town", "")
    page.select_option("#method", "heuristic")
    page.click("text=开始选址")
    page.wait_for_url("**/planner/jobs/*")
    page.wait_for_selector("#chosen-sites", timeout=300_000)
    chosen = [r[0].rsplit("（", 1)[-1].rstrip("）") for r in _rows(page, "#chosen-sites")]  # "名称（编号）" or the id
    assert int(page.inner_text("#n-sites")) == len(kept) + 1
    assert scenario_id != page.url.rsplit("/", 1)[-1] and page.locator("#job-parameters").count() == 1
    assert {s["id"] for s in kept} <= set(chosen), chosen
    assert axe_violations(page, axe_source) == []
