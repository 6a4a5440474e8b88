from __future__ import annotations

import json

import pandas as pd
import pyogrio
import pytest

from layers.district import load_district


@pytest.fixture(scope="module")
def cli(demo_cli):
    return demo_cli


def test_one_service_centre_per_town(cli, tmp_path):
    out = tmp_path / "s.json"
    result = cli("site", "--layer", "service_centre", "--demand", "household", "--model", "mclp", "--p", "15",
                 "--per-town", "1", "--threshold", "15min", "--profile", "drive", "--keep-existing",
                 "--candidates-per-town", "8", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert {"parameters", "selected", "assignment", "objective", "covered_share", "optimal", "gap", "by_town"} <= set(
        payload
    )
    towns = load_district().towns["town_code"].tolist()
    assert len(payload["selected"]) == 15
    assert sorted(s["town_code"] for s in payload["sites"]) == sorted(towns)  # one per town
    assert [row["sites"] for row in payload["by_town"]] == [1] * 15
    # every site is named by its place: its own town first, then the nearest village of that town
    names = dict(zip(load_district().towns["town_code"], load_district().towns["name"], strict=True))
    assert all(s["place"].startswith(f"{names[s['town_code']]} · ") for s in payload["sites"])
    centres = pd.read_csv(load_district().demo_dir / "service_centre.csv", dtype=str)
    assert set(centres["id"]) <= set(payload["selected"])  # kept open
    households = pd.read_csv(load_district().demo_dir / "household.csv", dtype=str)
    assert set(payload["assignment"]) == set(households["id"])
    assert set(payload["assignment"].values()) - {None} <= set(payload["selected"])
    assert payload["optimal"] is True and payload["gap"] == pytest.approx(0.0, abs=1e-6)
    assert (
        payload["comparison"]["summary"]["covered_share_after"]
        >= payload["comparison"]["summary"]["covered_share_before"]
    )
    assert "[5/5]" in result.output and "solving" in result.output


def test_a_town_without_candidates_is_named(cli, tmp_path):
    sites = tmp_path / "sites.csv"
    sites.write_text("id,lon,lat,town_code\nx1,106.2248,29.5949,500120001\nx2,106.2,29.59,500120002\n",
                     encoding="utf-8")  # fmt: skip
    result = cli("site", "--layer", "rehab_station", "--demand", "household", "--model", "pmedian",
                 "--per-town", "1", "--threshold", "20min", "--candidates", sites, "--datum", "wgs84",
                 "--out", tmp_path / "x.json")  # fmt: skip
    assert result.exit_code != 0
    assert "Infeasible quota" in result.output and "(健龙镇) has 0 candidate" in result.output
    assert "镇街配额无法满足：" in result.output and "(健龙镇) 只有 0 个候选站点，但需要 1 个" in result.output
    assert result.output.index("镇街配额无法满足") < result.output.index("Infeasible quota")  # Chinese first


def test_new_toilets_keep_the_current_ones_and_write_a_geopackage(cli, tmp_path):
    out = tmp_path / "t.gpkg"
    result = cli("site", "--layer", "accessible_toilet", "--demand", "household", "--model", "mclp", "--new", "19",
                 "--threshold", "500m", "--profile", "wheelchair", "--keep-existing", "--heuristic",
                 "--candidates-per-town", "10", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    toilets = pd.read_csv(load_district().demo_dir / "accessible_toilet.csv", dtype=str)
    kept = toilets[(toilets["status"] == "accepted") | toilets["build_type"].isin(["existing", "rebuild"])]
    sites = pyogrio.read_dataframe(out, layer="sites")
    assert len(sites) == len(kept) + 19
    assert set(kept["id"]) <= set(sites["id"])
    assert int(sites["new"].sum()) == 19
    assert {"sites", "assignment", "candidates"} <= {name for name, _ in pyogrio.list_layers(out)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "lscp", "--p", "3"], "drop --p"),
        (["--model", "mclp"], "needs --p"),
        (["--model", "mclp", "--p", "3", "--capacity", "10"], "--capacity works with"),
        (["--model", "pmedian", "--p", "3", "--exclude", "nope"], "not candidate sites"),
    ],
)
def test_bad_options_are_refused(cli, tmp_path, args, message):
    result = cli("site", "--layer", "service_centre", "--demand", "household", "--threshold", "15min",
                 "--candidates-per-town", "2", *args, "--out", tmp_path / "x.json")  # fmt: skip
    assert result.exit_code != 0 and message in result.output


def test_pmedian_needs_no_threshold_and_layer_is_optional_with_a_candidate_file(cli, tmp_path):
    # two candidates of a file, no --layer (so no sites today) and no --threshold (p-median: no cap)
    sites = tmp_path / "sites.csv"
    sites.write_text("id,lon,lat,town_code\nx1,106.2248,29.5949,500120001\nx2,106.2,29.59,500120002\n",
                     encoding="utf-8")  # fmt: skip
    out = tmp_path / "p.json"
    result = cli("site", "--demand", "village", "--weight", "population", "--model", "pmedian", "--p", "1",
                 "--candidates", sites, "--datum", "wgs84", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["parameters"]["layer"] is None and payload["parameters"]["current_sites"] == []
    assert len(payload["selected"]) == 1 and set(payload["selected"]) <= {"x1", "x2"}
    assert payload["parameters"]["cutoff"].endswith("s")  # drive: the whole network's travel time
    assert payload["comparison"] is None
    # uncapped: every village reaches the chosen site, none is left unserved by a cap
    assert None not in payload["assignment"].values()
    # the same choice as p-median capped at that very cost, given explicitly
    capped = tmp_path / "c.json"
    again = cli("site", "--demand", "village", "--weight", "population", "--model", "pmedian", "--p", "1",
                "--candidates", sites, "--datum", "wgs84", "--threshold", payload["parameters"]["cutoff"],
                "--out", capped)  # fmt: skip
    assert again.exit_code == 0, again.output
    assert json.loads(capped.read_text(encoding="utf-8"))["selected"] == payload["selected"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layer", "service_centre", "--model", "mclp", "--p", "3"], "--model mclp needs --threshold"),
        (["--layer", "service_centre", "--model", "lscp"], "--model lscp needs --threshold"),
        (["--model", "pmedian", "--p", "3"], "give --layer"),
        (["--model", "pmedian", "--p", "3", "--candidates", "service_centre"], "give --layer"),
    ],
)
def test_threshold_and_layer_are_asked_for_where_needed(cli, tmp_path, args, message):
    result = cli("site", "--demand", "household", *args, "--out", tmp_path / "x.json")
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output
