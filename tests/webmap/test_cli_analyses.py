from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest

from layers.district import load_district


@pytest.fixture(scope="module")
def cli(demo_cli):
    return demo_cli


def test_coverage_json_has_the_stable_keys(cli, tmp_path):
    out = tmp_path / "c.json"
    result = cli("coverage", "--facilities", "accessible_toilet", "--status", "accepted", "--demand", "household",
                 "--profile", "walk", "--threshold", "800m", "--threshold", "15min", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert {"parameters", "summary", "by_town", "points"} <= set(payload)
    point = payload["points"][0]
    assert {"id", "facility_id", "cost", "covered"} <= set(point) and set(point["covered"]) == {"800m", "15min"}
    households = pd.read_csv(load_district().demo_dir / "household.csv")
    assert len(payload["points"]) == len(households)
    covered = sum(p["covered"]["800m"] for p in payload["points"])
    assert covered == sum(p["cost"] <= 800 for p in payload["points"] if p["cost"] is not None)
    assert payload["summary"]["covered_800m"]["covered"] == covered
    assert payload["parameters"]["data_versions"]["roads_sha256"]
    assert "[1/4]" in result.output and "covered_800m:" in result.output


def test_coverage_scenario_from_a_file_with_a_datum(cli, tmp_path):
    toilets = pd.read_csv(load_district().demo_dir / "accessible_toilet.csv", dtype=str)
    planned = toilets[toilets["status"] != "accepted"][["id", "lon", "lat"]]
    scenario = tmp_path / "planned.csv"
    planned.to_csv(scenario, index=False)
    out = tmp_path / "s.json"
    args = ["coverage", "--facilities", "accessible_toilet", "--status", "accepted", "--demand", "household",
            "--threshold", "500m", "--scenario", scenario, "--out", out]  # fmt: skip
    refused = cli(*args)
    assert refused.exit_code != 0 and "--datum" in refused.output
    result = cli(*args, "--datum", "wgs84")
    assert result.exit_code == 0, result.output
    change = json.loads(out.read_text(encoding="utf-8"))["scenario"]["summary_change"]["covered_500m"]
    assert change["after"] >= change["before"] and change["no_longer_covered"] == 0
    assert change["change"] == pytest.approx(change["after"] - change["before"])


def test_gaps_geopackage_holds_every_map_layer(cli, tmp_path):
    out = tmp_path / "g.gpkg"
    result = cli("gaps", "--facilities", "service_centre", "--status", "open", "--demand", "household",
                 "--profile", "drive", "--threshold", "10min", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    layers = dict(pyogrio.list_layers(out).tolist())
    assert {"gap_uncovered", "gap_segments", "gap_hexagons"} <= set(layers)
    assert layers["gap_hexagons"] == "Polygon"
    summary = tmp_path / "g.json"
    fast = cli("gaps", "--facilities", "service_centre", "--status", "open", "--demand", "household",
               "--profile", "drive", "--threshold", "10min", "--no-roads", "--out", summary)  # fmt: skip
    assert fast.exit_code == 0, fast.output
    payload = json.loads(summary.read_text(encoding="utf-8"))
    assert "gap_segments" not in payload["summary"]
    assert sum(h["n_uncovered"] for h in payload["hexagons"]) == len(payload["uncovered"])


def test_household_report_lists_every_household_worst_first(cli, tmp_path):
    out = tmp_path / "r.csv"
    result = cli("household-report", "--threshold", "accessible_toilet=500m", "--threshold", "rehab_station=15min",
                 "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, encoding="utf-8-sig")
    assert table["n_failed"].is_monotonic_decreasing
    households = pd.read_csv(load_district().demo_dir / "household.csv", dtype=str)
    assert set(table["household_id"]) == set(households["id"])
    text = out.read_text(encoding="utf-8-sig")
    assert not any(name in text for name in households["name"])  # ids, towns and villages only
    bad = cli("household-report", "--threshold", "household=5m", "--out", out)
    assert bad.exit_code != 0 and "LAYER=THRESHOLD" in bad.output


def test_targets_json_on_a_date(cli, tmp_path):
    out = tmp_path / "t.json"
    result = cli("targets", "--date", "2024-06-30", "--out", out)
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text(encoding="utf-8"))
    toilets = pd.read_csv(load_district().demo_dir / "accessible_toilet.csv")
    built = toilets[toilets["build_type"].isin(["rebuild", "new"])]
    assert payload["on"] == "2024-06-30"
    assert payload["toilets"]["accepted"] == int((built["status"] == "accepted").sum())


def test_service_areas_one_per_facility_and_dissolved(cli, tmp_path):
    out = tmp_path / "sa.gpkg"
    result = cli("service-areas", "--facilities", "service_centre", "--status", "open", "--profile", "walk",
                 "--threshold", "1km", "--shape", "hull", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    areas = gpd.read_file(out, layer="service_areas")
    centres = pd.read_csv(load_district().demo_dir / "service_centre.csv")
    assert sorted(areas["facility_id"]) == sorted(centres.loc[centres["status"] == "open", "id"])
    dissolved = gpd.read_file(out, layer="service_areas_dissolved")
    assert len(dissolved) == 1 and dissolved.geometry.iloc[0].covers(areas.union_all().buffer(-1e-6))
