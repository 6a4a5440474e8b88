from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from cryptography.fernet import Fernet

from layers import schema
from layers.district import load_district
from webmap import create_app
from webmap.store import get_store

# A 2 km × 2 km district split into two towns, one with a surveyed seat and one approximate.
_DISTRICT_TOML = """
code = "999901"
name = "测试区"
name_en = "Test District"
projected_crs = "EPSG:32648"

[files]
boundary = "boundary.geojson"
towns = "towns.csv"
town_areas = "town_areas.geojson"
villages = "villages.csv"
roads = "roads.osm"
demo = "demo"
plan = "plan"
"""

_TOWNS_CSV = """code,name,name_en,kind,seat_lon,seat_lat,seat_approximate,seat_source
999901001,甲街道,Jia Subdistrict,subdistrict,106.005,29.51,False,test
999901100,乙镇,Yi Town,town,106.015,29.51,True,test
"""

# Two connected primary ways (drawn: the named one and the unnamed one as two features) and one
# residential way joining them at node 5 (not drawn), so the network is one component.
TINY_OSM = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
  <node id="1" lat="29.505" lon="106.001"/>
  <node id="2" lat="29.505" lon="106.019"/>
  <node id="3" lat="29.515" lon="106.001"/>
  <node id="4" lat="29.515" lon="106.019"/>
  <node id="5" lat="29.512" lon="106.019"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="primary"/><tag k="name" v="璧山大道"/></way>
  <way id="11"><nd ref="3"/><nd ref="4"/><nd ref="5"/><tag k="highway" v="residential"/></way>
  <way id="12"><nd ref="2"/><nd ref="5"/><tag k="highway" v="primary"/></way>
</osm>
"""


def _square(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _collection(features: list[tuple[dict, dict]]) -> str:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
            "features": [{"type": "Feature", "properties": p, "geometry": g} for p, g in features],
        }
    )


def _facility_rows(prefix: str, names: list[str], statuses: list[str]) -> pd.DataFrame:
    """Rows for `Store.upsert_features`: facilities on a line inside the first town."""
    return pd.DataFrame(
        {
            schema.ID: [f"{prefix}{i}" for i in range(len(names))],
            schema.TOWN_CODE: "999901001",
            schema.VILLAGE_CODE: None,
            schema.NAME: names,
            schema.ADDRESS: "测试路 1 号",
            schema.LON: [106.002 + 0.001 * i for i in range(len(names))],
            schema.LAT: 29.51,
            schema.DATUM: "wgs84",
            schema.STATUS: statuses,
        }
    )


@pytest.fixture
def make_rows():
    """Factory: `make_rows(prefix, names, statuses)` → rows for `Store.upsert_features`."""
    return _facility_rows


_FACILITY_DATA = re.compile(r"\}\)\(facility_layer_\w+, (\"[a-z_]+\"), (\[.*\]), \"[^\"]*\"\);")


@pytest.fixture
def read_facilities():
    """Parse the facility markers' data out of a rendered script: layer → list of dicts."""

    def read(script: str) -> dict[str, list[dict]]:
        return {json.loads(layer): json.loads(data) for layer, data in _FACILITY_DATA.findall(script)}

    return read


@pytest.fixture
def osm_path(tmp_path):
    """The tiny OSM file: two connected primary ways (drawn) and one residential way (left out)."""
    path = tmp_path / "tiny.osm"
    path.write_text(TINY_OSM, encoding="utf-8")
    return path


@pytest.fixture
def names():
    """Names and ids in the `app` fixture's store."""
    return {
        "shown": SHOWN_NAMES,
        "closed": CLOSED_NAME,
        "households": HOUSEHOLD_NAMES,
        "household_ids": HOUSEHOLD_IDS,
    }


@pytest.fixture
def district_dir(tmp_path):
    folder = tmp_path / "district"
    folder.mkdir()
    (folder / "district.toml").write_text(_DISTRICT_TOML, encoding="utf-8")
    (folder / "towns.csv").write_text(_TOWNS_CSV, encoding="utf-8")
    (folder / "boundary.geojson").write_text(_collection([({}, _square(106.0, 29.5, 106.02, 29.52))]), encoding="utf-8")
    (folder / "town_areas.geojson").write_text(
        _collection(
            [
                ({"town_code": "999901001"}, _square(106.0, 29.5, 106.01, 29.52)),
                ({"town_code": "999901100"}, _square(106.01, 29.5, 106.02, 29.52)),
            ]
        ),
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def district(district_dir):
    return load_district(district_dir)


# Public facilities in the fixture store: 2 + 1 + 2 + 1 shown, plus 1 closed (not shown).
SHOWN_NAMES = ["康复站甲", "康复站乙", "渝馨家园甲", "无障碍厕所甲", "无障碍厕所乙", "体育点甲"]
CLOSED_NAME = "已关闭康复站"
HOUSEHOLD_NAMES = ["张三丰", "李四光"]
HOUSEHOLD_IDS = ["hh-secret-001", "hh-secret-002"]


@pytest.fixture
def app(tmp_path, district_dir):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite",
            "DISTRICT_DIR": str(district_dir),
            "CACHE_DIR": str(tmp_path / "cache"),
            "ENCRYPTION_KEY": Fernet.generate_key(),
        }
    )
    with app.app_context():
        store = get_store()
        store.upsert_features(
            schema.REHAB_STATION,
            _facility_rows("r", ["康复站甲", "康复站乙", CLOSED_NAME], ["open", "planned", "closed"]),
            user="test",
        )
        store.upsert_features(schema.SERVICE_CENTRE, _facility_rows("c", ["渝馨家园甲"], ["open"]), user="test")
        store.upsert_features(
            schema.ACCESSIBLE_TOILET,
            _facility_rows("t", ["无障碍厕所甲", "无障碍厕所乙"], ["under_construction", "accepted"]),
            user="test",
        )
        store.upsert_features(schema.SPORTS_SITE, _facility_rows("s", ["体育点甲"], ["open"]), user="test")
        households = _facility_rows("h", HOUSEHOLD_NAMES, ["surveyed", "approved"])
        households[schema.ID] = HOUSEHOLD_IDS
        households["phone"] = "13800000000"
        store.upsert_features(schema.HOUSEHOLD, households, user="test")
    yield app
    with app.app_context():
        get_store().close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def demo_cli(tmp_path_factory, app_cache_dir, bishan_net):  # bishan_net: the network is prepared once, in app_cache_dir
    """Run `accessplan` commands against a fresh store loaded with the demo data (one per test module)."""
    from click.testing import CliRunner
    from cryptography.fernet import Fernet

    from layers.crypto import KEY_ENV_VAR
    from webmap.cli import main

    db = tmp_path_factory.mktemp("cli") / "cli.sqlite"
    env = {
        "ACCESSPLAN_DATABASE_URL": f"sqlite:///{db}",
        KEY_ENV_VAR: Fernet.generate_key().decode(),
        "ACCESSPLAN_CACHE_DIR": str(app_cache_dir),
        "ACCESSPLAN_SECRET_KEY": "cli-tests-" + "k" * 32,  # no generated key file in the source tree
    }
    runner = CliRunner(env=env)

    def run(*args: str):
        return runner.invoke(main, [str(a) for a in args])

    loaded = run("load-demo")
    assert loaded.exit_code == 0, loaded.output
    return run
