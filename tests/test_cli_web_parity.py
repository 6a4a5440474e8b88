"""The CLI and a planner job run the same analysis (``analyses.runs``) and give the same numbers.

Each kind runs on one copy of the demo store and the Bishan network: once through ``accessplan``
(click runner, JSON out) and once through the planner form → job → stored result and download. The
summaries, per-town tables and per-point costs must be equal (the old code gave different keys and
values: ``after`` vs ``after_summary``, no demand counts in the CLI's service areas). Without ``--status``
the CLI counts what the web counts: a layer's facilities in service (and a scenario's planned ones);
it counted every status before (accepted toilets: 33.8 % vs 27.3 % on the web). Both write town and
village names beside their codes.
"""

from __future__ import annotations

import io
import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from layers import schema, users
from layers.crypto import KEY_ENV_VAR
from layers.district import load_district
from tests.webmap import staff_fixtures
from tests.webmap.staff_fixtures import cheap_hash, run_job
from tests.webmap.test_planner import _download, _make_app, _planner
from webmap import jobs
from webmap.cli import main

demo_key, demo_db = staff_fixtures.demo_key, staff_fixtures.demo_db

OPEN = [a for s in schema.IN_SERVICE_STATUSES[schema.SERVICE_CENTRE] for a in ("--status", s)]
# The demo has planned toilets (no planned service centre): the scenario adds those.
ACCEPTED = [a for s in schema.IN_SERVICE_STATUSES[schema.ACCESSIBLE_TOILET] for a in ("--status", s)]
PLANNED = [a for s in schema.PLANNED_STATUSES[schema.ACCESSIBLE_TOILET] for a in ("--scenario-status", s)]


@pytest.fixture(scope="module")
def both(tmp_path_factory, demo_db, demo_key, app_cache_dir):
    """A planner client and a CLI on one copy of the demo store; ``job(path, form)`` returns a done job."""
    folder = tmp_path_factory.mktemp("parity")
    shutil.copyfile(demo_db, folder / "accessplan.sqlite")
    runner = CliRunner(env={"ACCESSPLAN_DATABASE_URL": f"sqlite:///{folder / 'accessplan.sqlite'}",
                            KEY_ENV_VAR: demo_key.decode(), "ACCESSPLAN_CACHE_DIR": str(app_cache_dir)})  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(users, "generate_password_hash", cheap_hash)
        app = _make_app(folder / "accessplan.sqlite", demo_key, app_cache_dir, folder / "jobs")
        client = _planner(app)

        def cli(*args) -> dict:
            out = folder / f"{args[0]}.json"
            result = runner.invoke(main, [str(a) for a in (*args, "--out", out)])
            assert result.exit_code == 0, result.output
            return json.loads(out.read_text(encoding="utf-8"))

        cli.invoke = lambda *args: runner.invoke(main, [str(a) for a in args])

        def job(path: str, form: dict):
            return run_job(app, client, path, form, timeout_s=600)

        yield cli, job, client
        jobs.shutdown_worker(app)
        app.extensions["accessplan_store"].close()


def _town_names() -> dict[str, str]:
    towns = load_district().towns
    return dict(zip(towns[schema.TOWN_CODE], towns[schema.NAME], strict=True))


@pytest.mark.parametrize("statuses", ["given", "default"])
def test_coverage_with_a_scenario(both, statuses):
    cli, job, client = both
    web = job("/planner/coverage", {"facilities": "accessible_toilet", "demand": "village", "profile": "walk",
                                    "thresholds": "800m, 15min", "urban_threshold": "", "rural_threshold": "",
                                    "grid_spacing": "400", "scenario": "on"})  # fmt: skip
    given = statuses == "given"
    out = cli("coverage", "--facilities", "accessible_toilet", *(ACCEPTED if given else ()), "--demand", "village",
              "--weight", "population", "--profile", "walk", "--threshold", "800m", "--threshold", "15min",
              "--scenario", "accessible_toilet", *(PLANNED if given else ()))  # fmt: skip
    for key in ("summary", "by_town", "by_village", "coverage_columns", "scenario"):
        assert web.result[key] == out[key], key
    assert out["parameters"]["facility_statuses"] == ["accepted"]
    assert out["scenario"]["statuses"] == ["planned", "under_construction", "completed"]
    # names beside codes: per town, per village and in the points file
    assert {r["town_code"]: r["town_name"] for r in out["by_town"]} == {
        code: name for code, name in _town_names().items() if code in {r["town_code"] for r in out["by_town"]}
    }
    villages = load_district().villages
    village_names = dict(zip(villages[schema.VILLAGE_CODE], villages[schema.NAME], strict=True))
    assert all(r["village_name"] == village_names[r["village_code"]] for r in out["by_village"])
    columns = list(pd.read_csv(io.BytesIO(_download(client, web.id, "csv").data), nrows=0).columns)
    assert columns[columns.index("town_code") + 1] == "town_name"
    assert columns[columns.index("village_code") + 1] == "village_name"
    assert web.result["scenario"]["n_added"] >= 1
    assert web.data_versions == out["parameters"]["data_versions"]
    csv = pd.read_csv(io.BytesIO(_download(client, web.id, "csv").data), dtype={"demand_id": str})
    web_costs = csv.set_index("demand_id")["cost_m"]
    cli_costs = pd.Series({p["id"]: p["cost"] for p in out["points"]}, dtype=float)
    pd.testing.assert_series_equal(web_costs.sort_index(), cli_costs.sort_index(), check_names=False)


def test_gaps(both):
    cli, job, client = both
    web = job("/planner/gaps", {"facilities": "service_centre", "demand": "village", "profile": "walk",
                                "threshold": "800m", "hex_size": "1000"})  # fmt: skip
    out = cli("gaps", "--facilities", "service_centre", *OPEN, "--demand", "village", "--profile", "walk",
              "--threshold", "800m", "--hex-size", "1000", "--no-roads")  # fmt: skip
    assert web.result["summary"] == out["summary"] and web.result["by_town"] == out["by_town"]
    assert all(r["town_name"] == _town_names()[r["town_code"]] for r in out["by_town"])
    csv = pd.read_csv(io.BytesIO(_download(client, web.id, "csv").data), dtype={"demand_id": str})
    assert dict(zip(csv["demand_id"], csv["cost_m"], strict=True)) == {
        row["demand_id"]: row["cost_m"] for row in out["uncovered"]
    }


def test_gaps_and_service_areas_count_toilets_in_service_by_default(both):
    # the demo's toilets are accepted, planned, under construction or completed: the web counts the
    # accepted ones only, and so does the CLI without --status now (it counted all of them before)
    cli, job, _ = both
    web = job("/planner/gaps", {"facilities": "accessible_toilet", "demand": "village", "profile": "walk",
                                "threshold": "800m", "hex_size": "1000"})  # fmt: skip
    out = cli("gaps", "--facilities", "accessible_toilet", "--demand", "village", "--profile", "walk",
              "--threshold", "800m", "--hex-size", "1000", "--no-roads")  # fmt: skip
    assert out["parameters"]["facility_statuses"] == ["accepted"]
    assert web.result["summary"] == out["summary"] and web.result["by_town"] == out["by_town"]
    web = job("/planner/service-areas", {"facilities": "accessible_toilet", "status_filter": "in_service",
                                         "profile": "walk", "thresholds": "300m", "shape": "hull",
                                         "buffer_m": "50", "demand": "village"})  # fmt: skip
    out = cli("service-areas", "--facilities", "accessible_toilet", "--profile", "walk", "--threshold", "300m",
              "--shape", "hull", "--demand", "village")  # fmt: skip
    for key in ("summary", "by_town", "per_facility"):
        assert web.result[key] == out[key], key
    accepted = pd.read_csv(load_district().demo_dir / "accessible_toilet.csv", dtype=str).query("status == 'accepted'")
    assert {r["facility_id"] for r in out["per_facility"]} == set(accepted["id"])
    assert all(r["town_name"] == _town_names()[r["town_code"]] for r in out["per_facility"])


def test_service_areas(both):
    cli, job, _ = both
    web = job("/planner/service-areas", {"facilities": "service_centre", "status_filter": "in_service",
                                         "profile": "walk", "thresholds": "300m, 800m", "shape": "hull",
                                         "buffer_m": "50", "demand": "village"})  # fmt: skip
    out = cli("service-areas", "--facilities", "service_centre", *OPEN, "--profile", "walk", "--threshold", "300m",
              "--threshold", "800m", "--shape", "hull", "--demand", "village")  # fmt: skip
    for key in ("summary", "by_town", "per_facility", "coverage_columns"):
        assert web.result[key] == out[key], key
    assert [row["covered"] for row in out["summary"]] == [
        sum(p["covered_300m"] for p in out["points"]),
        sum(p["covered_800m"] for p in out["points"]),
    ]


def test_siting(both):
    cli, job, client = both
    web = job("/planner/siting", {"layer": "service_centre", "model": "max_coverage", "p": "15", "per_town": "1",
                                  "keep_existing": "on", "demand": "village", "profile": "drive",
                                  "threshold": "15min", "candidate_radius": "2km", "candidates_per_town": "8",
                                  "method": "exact", "time_limit": "60"})  # fmt: skip
    out = cli("site", "--layer", "service_centre", "--demand", "village", "--weight", "population", "--model",
              "mclp", "--p", "15", "--per-town", "1", "--threshold", "15min", "--profile", "drive",
              "--keep-existing", "--candidates-per-town", "8")  # fmt: skip
    for key in ("selected", "objective", "covered_share", "by_town", "by_village", "sites", "comparison",
                "threshold_value"):  # fmt: skip
        assert web.result[key] == out[key], key
    sheets = pd.read_excel(io.BytesIO(_download(client, web.id, "xlsx").data), sheet_name="assignment",
                           engine="calamine", dtype={"demand_id": str, "site_id": str})  # fmt: skip
    web_sites = {d: None if pd.isna(s) else s for d, s in zip(sheets["demand_id"], sheets["site_id"], strict=True)}
    assert web_sites == out["assignment"]


def test_coverage_compared_on_flat_and_slope_aware_costs(both, tmp_path):
    cli, job, client = both
    form = {"facilities": "service_centre", "demand": "village", "profile": "wheelchair", "thresholds": "15min",
            "urban_threshold": "", "rural_threshold": "", "grid_spacing": "400", "compare_flat": "on"}  # fmt: skip
    web = job("/planner/coverage", form)
    args = ("--facilities", "service_centre", "--demand", "village", "--weight", "population", "--profile",
            "wheelchair", "--threshold", "15min")  # fmt: skip
    out = cli("coverage", *args, "--compare-flat")
    assert web.result["slopes"] == out["slopes"]
    # the independent check: two ordinary runs, one on the flat network (--flat), one with the DEM
    slopes = cli("coverage", *args)
    flat = cli("--flat", "coverage", *args)
    assert out["summary"] == slopes["summary"]
    covered = {run: {p["id"] for p in r["points"] if p["cost"] is not None and p["cost"] <= 900}
               for run, r in (("flat", flat), ("slopes", slopes))}  # fmt: skip
    change = out["slopes"]["summary"]["covered_15min"]
    assert change["flat"] == len(covered["flat"]) == flat["summary"]["covered_15min"]["covered"]
    assert change["slopes"] == len(covered["slopes"])
    assert change["lost"] == len(covered["flat"] - covered["slopes"])
    assert change["gained"] == len(covered["slopes"] - covered["flat"])
    assert change["lost"] > 0  # the synthetic ridges slow the chair: some villages fall out of 15 minutes
    by_town = out["slopes"]["by_town"]
    assert sum(r["covered_15min_lost"] for r in by_town) == change["lost"]
    assert all(r["town_name"] == _town_names()[r["town_code"]] for r in by_town)
    assert sum(v["pieces"] for v in out["slopes"]["steep_pieces"].values()) > 0
    page = client.get(f"/planner/jobs/{web.id}").get_data(as_text=True)
    assert 'id="slopes-by-town"' in page and "坡度的影响" in page
    # the map fetches the steep pieces, one layer per closure, labelled as from Bishan's synthetic DEM
    drawn = 0
    for closed, n in ((k, v["pieces"]) for k, v in out["slopes"]["steep_pieces"].items()):
        layer = client.get(f"/planner/jobs/{web.id}/layers/steep_{closed}.geojson")
        assert layer.status_code == 200
        features = layer.get_json()["features"]  # one per whole percent of gradient, each piece a line of it
        assert sum(len(f["geometry"]["coordinates"]) for f in features) == n
        drawn += n
    assert drawn > 0 and f"/planner/jobs/{web.id}/layers/steep_open.geojson" in page
    assert json.dumps("（坡度来自合成 DEM）")[1:-1] in page  # the layer control's names (JSON in the page)
    # flat costs leave nothing to compare: one clear line, no traceback
    refused = cli.invoke("--flat", "coverage", *args, "--compare-flat", "--out", tmp_path / "x.json")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "没有坡度可比" in refused.output and "Nothing to compare" in refused.output
