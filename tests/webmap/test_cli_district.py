"""The district on the command line: `district init`, which folder is chosen, and a store that keeps to its district."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from layers.crypto import KEY_ENV_VAR, BlindIndex, FieldCipher
from layers.district import DEFAULT_DISTRICT_DIR, load_district
from layers.idcard import check_id_numbers
from layers.store import Store
from webmap.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHAPINGBA = ROOT / "data" / "shapingba"
OAKLAND = ROOT / "tests" / "data" / "West-Oakland.osm.bz2"  # real OSM XML (osmnx test data, ODbL)


@pytest.fixture
def env(tmp_path, app_cache_dir):
    """Environment of one `accessplan` run: its own instance folder (moved there) and SQLite store."""
    return {
        "ACCESSPLAN_INSTANCE_PATH": str(tmp_path / "instance"),
        "ACCESSPLAN_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite'}",
        KEY_ENV_VAR: Fernet.generate_key().decode(),
        "ACCESSPLAN_CACHE_DIR": str(app_cache_dir),
        "ACCESSPLAN_SECRET_KEY": None,  # generated into the instance folder: shows where that folder is
        "ACCESSPLAN_DISTRICT_DIR": None,
    }


def _run(env, *args, **more):
    return CliRunner(env={**env, **more}).invoke(main, [str(a) for a in args])


def test_the_district_comes_from_option_then_config_then_environment(tmp_path, env):
    default = _run(env, "district", "show")
    assert default.exit_code == 0, default.output
    assert default.output.startswith(f"璧山区 (500120) in {DEFAULT_DISTRICT_DIR}")
    # ACCESSPLAN_INSTANCE_PATH moved the instance folder: the secret key was generated there
    assert (tmp_path / "instance" / "secret.key").is_file()

    from_env = _run(env, "district", "show", ACCESSPLAN_DISTRICT_DIR=str(SHAPINGBA))
    assert from_env.output.startswith(f"沙坪坝区 (500106) in {SHAPINGBA}: CRS EPSG:32648, 26 towns")
    assert "town areas unknown" in from_env.output

    config = tmp_path / "instance" / "config.py"
    config.write_text(f"DISTRICT_DIR = {str(DEFAULT_DISTRICT_DIR)!r}\n", encoding="utf-8")
    from_config = _run(env, "district", "show", ACCESSPLAN_DISTRICT_DIR=str(SHAPINGBA))
    assert from_config.output.startswith("璧山区 (500120)")  # config.py wins over the environment

    from_option = _run(env, "--district", SHAPINGBA, "district", "show",
                       ACCESSPLAN_DISTRICT_DIR=str(DEFAULT_DISTRICT_DIR))  # fmt: skip
    assert from_option.exit_code == 0, from_option.output
    assert from_option.output.startswith("沙坪坝区 (500106)")  # --district wins over both


def test_a_folder_that_is_not_a_district_is_one_line(tmp_path, env):
    result = _run(env, "--district", tmp_path, "district", "show")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: '{tmp_path}' 中没有 district.toml：请用 `accessplan district init` 建立区县文件夹。 "
        f"No district.toml in '{tmp_path}': build a district folder with `accessplan district init`.\n"
    )


def test_a_missing_towns_file_names_the_file_not_a_circular_command(tmp_path, env):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "district.toml").write_text(
        'code = "500106"\nname = "沙坪坝区"\nprojected_crs = "EPSG:32648"\n[files]\ntowns = "towns.csv"\n',
        encoding="utf-8",
    )
    result = _run(env, "--district", folder, "district", "show")
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1
    assert f"区县数据文件 '{folder / 'towns.csv'}' 不存在" in result.output and "generate" not in result.output


def test_init_builds_a_folder_from_a_real_extract_and_prepares_its_roads(tmp_path, env):
    boundary = tmp_path / "b.geojson"
    boundary.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [[[-122.3025, 37.804], [-122.296, 37.804], [-122.296, 37.809],
                                                         [-122.3025, 37.809], [-122.3025, 37.804]]]}}]}),
        encoding="utf-8")  # fmt: skip
    towns = tmp_path / "towns.csv"
    towns.write_text("code,name,seat_lon,seat_lat\n999003001,西街道,-122.301,37.806\n999003002,东街道,-122.297,37.807\n",
                     encoding="utf-8")  # fmt: skip
    folder = tmp_path / "oakland"
    # a few streets cut to a box leave much of the network one-way-isolated: the loader says so, and loads it
    with pytest.warns(UserWarning, match="one-way rules apply"):
        result = _run(env, "district", "init", folder, "--name", "奥克兰区", "--code", "999003", "--boundary", boundary,
                      "--roads", OAKLAND, "--towns", towns, "--source", "roads=osmnx test data",
                      "--licence", "roads=ODbL 1.0")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"Wrote the district folder of 奥克兰区 (999003, EPSG:32610) to {folder}" in result.output
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "Road network: " in readme and " nodes, " in readme and "prepared in EPSG:32610" in readme
    assert "| `roads.osm.bz2` | **real** | osmnx test data; given as `West-Oakland.osm.bz2`" in readme
    shown = _run(env, "--district", folder, "district", "show")
    assert shown.output.startswith(f"奥克兰区 (999003) in {folder}: CRS EPSG:32610, 2 towns, town areas approximate")
    assert shown.output.rstrip().endswith("no villages")

    again = _run(env, "district", "init", folder, "--name", "奥克兰区", "--code", "999003", "--boundary", boundary,
                 "--roads", OAKLAND, "--towns", tmp_path / "missing.csv")  # fmt: skip
    assert again.exit_code == 1
    assert again.output.splitlines() == [
        f"Error: 目标文件夹 '{folder}' 已存在且不为空：请换一个新文件夹（不会覆盖任何文件）。 "
        f"The folder '{folder}' exists and is not empty: choose a new folder (nothing is overwritten).",
        f"--towns 文件 '{tmp_path / 'missing.csv'}' 不存在。 --towns file '{tmp_path / 'missing.csv'}' does not exist.",
    ]


def test_a_store_made_for_bishan_refuses_shapingba(tmp_path, env):
    store = Store(env["ACCESSPLAN_DATABASE_URL"], cipher=FieldCipher(Fernet.generate_key()),
                  blind_index=BlindIndex(Fernet.generate_key()))  # fmt: skip
    store.bind_district("500120", "璧山区")
    store.close()
    out = tmp_path / "c.json"
    result = _run(env, "--district", SHAPINGBA, "coverage", "--facilities", "rehab_station", "--demand", "household",
                  "--threshold", "800m", "--out", out)  # fmt: skip
    assert result.exit_code == 1
    assert result.output.startswith("Error: 此数据库属于璧山区（500120），不能存放或分析沙坪坝区（500106）的数据")
    assert not out.exists()  # no "0 %, N unreachable" result
    loaded = _run(env, "--district", SHAPINGBA, "load-demo")
    assert loaded.exit_code == 1 and "This store belongs to 璧山区 (500120)" in loaded.output
    assert len(loaded.output.splitlines()) == 1  # one line, no traceback


def test_shapingba_loads_and_a_coverage_run_groups_by_the_points_own_towns(tmp_path, env):
    shapingba = load_district(SHAPINGBA)
    loaded = _run(env, "--district", SHAPINGBA, "load-demo")
    assert loaded.exit_code == 0, loaded.output
    out = tmp_path / "c.json"
    result = _run(env, "--district", SHAPINGBA, "coverage", "--facilities", "rehab_station", "--status", "open",
                  "--demand", "household", "--profile", "walk", "--threshold", "15min", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text(encoding="utf-8"))
    households = pd.read_csv(shapingba.demo_dir / "household.csv", dtype=str)
    assert len(payload["points"]) == len(households) == 1171
    covered = sum(p["covered"]["15min"] for p in payload["points"])
    assert payload["summary"]["covered_15min"]["covered"] == covered
    assert 0 < covered < len(households)  # synthetic roads route: not the silent "0 %" of a wrong network
    # no town areas: each household keeps its own town, and the per-town rows count them per town_code
    expected = households["town_code"].value_counts().sort_index()
    by_town = {row["town_code"]: row for row in payload["by_town"]}
    assert {code: row["points"] for code, row in by_town.items()} == expected.to_dict()
    assert sum(row["covered_15min_count"] for row in by_town.values()) == covered
    assert set(by_town) <= set(shapingba.towns["town_code"])


def test_synthetic_households_carry_their_districts_id_prefixes():
    shapingba = pd.read_csv(SHAPINGBA / "demo" / "household.csv", dtype=str)
    assert load_district(SHAPINGBA).id_prefixes == ("500106",)
    assert shapingba["id_number"].str[:6].unique().tolist() == ["500106"]
    bishan = pd.read_csv(DEFAULT_DISTRICT_DIR / "demo" / "household.csv", dtype=str)
    assert load_district().id_prefixes == ("500120", "500227")
    assert sorted(bishan["id_number"].str[:6].unique()) == ["500120", "500227"]
    for numbers in (shapingba["id_number"], bishan["id_number"]):
        _, reason = check_id_numbers(numbers)
        assert reason.isna().all()  # check characters valid (GB 11643)
    assert (shapingba["certificate_number"].str[:18] == shapingba["id_number"]).all()


def _app(tmp_path, district_dir):
    from webmap import create_app

    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite'}",
                       "DISTRICT_DIR": str(district_dir), "CACHE_DIR": str(tmp_path / "cache"),
                       "ENCRYPTION_KEY": Fernet.generate_key()})  # fmt: skip


def test_the_public_map_of_a_district_without_seats_or_town_areas(tmp_path):
    response = _app(tmp_path, SHAPINGBA).test_client().get("/")
    assert response.status_code == 200  # was a 500: folium refused the unknown seats (NaN)
    page = response.get_data(as_text=True)
    # no seat labels (the seats are unknown): no marker icon of that class (the street labels' script names the
    # class, to keep street names clear of town names)
    assert "沙坪坝区" in page and '"className": "town-label"' not in page


def test_a_web_request_on_another_districts_store_is_a_503_with_the_message(tmp_path):
    first = _app(tmp_path, SHAPINGBA).test_client().get("/list")
    assert first.status_code == 200  # the store now belongs to Shapingba
    refused = _app(tmp_path, DEFAULT_DISTRICT_DIR).test_client().get("/list")
    assert refused.status_code == 503
    message = refused.get_data(as_text=True)
    assert message.startswith("此数据库属于沙坪坝区（500106），不能存放或分析璧山区（500120）的数据")
