from __future__ import annotations

import re
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from geo.datums import convert
from layers.district import load_district
from synthetic.layers import generate_demo_layers, write_demo_layers

LAYER_FILES = {
    "rehab_station.csv",
    "service_centre.csv",
    "accessible_toilet.csv",
    "sports_site.csv",
    "household.csv",
}
ID_PATTERNS = {
    "rehab_station": r"RS-\d{4}",
    "service_centre": r"SC-\d{2}",
    "accessible_toilet": r"AT-\d{3}",
    "sports_site": r"SS-\d{2}",
    "household": r"HH-\d{5}",
}
WORKFLOWS = {
    "rehab_station": {"planned", "open", "closed"},
    "service_centre": {"planned", "open", "closed"},
    "sports_site": {"planned", "open", "closed"},
    "accessible_toilet": {"planned", "under_construction", "completed", "accepted"},
    "household": {"surveyed", "approved", "in_progress", "completed", "verified", "declined"},
}
# DOMAIN.md §9, spelled out again here on purpose.
GB50763_FIELDS = [
    "accessible_cubicle_f", "accessible_cubicle_m", "unisex_accessible_room", "room_area_m2",
    "turning_diameter_m", "door_clear_width_mm", "door_outward_or_emergency_unlock",
    "grab_bar_horizontal", "grab_bar_vertical", "call_button", "accessible_basin", "accessible_urinal",
    "step_free_entrance", "signage", "opening_hours", "survey_date", "source",
]  # fmt: skip
NEEDS = {"坡道", "扶手", "卫生间改造", "厨房改造", "门槛去除", "呼叫装置"}
AS_OF = date(2024, 6, 30)

# Three towns side by side, each 0.05° × 0.1°, with two communities and two villages.
TOWN_X0 = {"500120001": 106.20, "500120100": 106.25, "500120101": 106.30}
TOWN_NAMES = {"500120001": "璧城街道", "500120100": "八塘镇", "500120101": "七塘镇"}


def valid_id_number(id_number: str) -> bool:
    """DOMAIN.md §6: weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, sum mod 11 indexes '10X98765432'."""
    if not re.fullmatch(r"\d{17}[\dX]", id_number):
        return False
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(id_number[i]) * weights[i] for i in range(17))
    return "10X98765432"[total % 11] == id_number[17]


def test_check_digit_helper_on_a_hand_computed_number():
    # 11010519491231002X is the textbook example (sum 167, 167 mod 11 = 2 -> 'X').
    assert valid_id_number("11010519491231002X")
    assert not valid_id_number("110105194912310021")


@pytest.fixture(scope="module")
def small_district():
    towns = pd.DataFrame({"town_code": list(TOWN_X0), "name": list(TOWN_NAMES.values())})
    rows = []
    for town_code, x0 in TOWN_X0.items():
        for j in range(4):
            kind = "community" if j < 2 else "village"
            suffix = f"{j + 1:03d}" if kind == "community" else f"{200 + j:03d}"
            rows.append(
                {
                    "village_code": town_code + suffix,
                    "name": f"第{j + 1}{'社区' if kind == 'community' else '村'}",
                    "town_code": town_code,
                    "kind": kind,
                    "urban_rural_code": "111" if kind == "community" else "220",
                    "lon": x0 + 0.01 + 0.007 * j,
                    "lat": 29.55 + 0.005 * j,
                    "households": 100 * (j + 1),
                }
            )
    villages = pd.DataFrame(rows)
    areas = gpd.GeoDataFrame(
        {"town_code": list(TOWN_X0)},
        geometry=[box(x0, 29.5, x0 + 0.05, 29.6) for x0 in TOWN_X0.values()],
        crs="EPSG:4326",
    )
    boundary = gpd.GeoDataFrame(geometry=[box(106.20, 29.5, 106.35, 29.6)], crs="EPSG:4326")
    return {"towns": towns, "villages": villages, "town_areas": areas, "boundary": boundary}


def generate(small_district, seed):
    d = small_district
    return generate_demo_layers(
        d["towns"], d["villages"], seed=seed, town_areas=d["town_areas"], boundary=d["boundary"]
    )


@pytest.fixture(scope="module")
def layers(small_district):
    return generate(small_district, 7)


def true_positions(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    lon = df["lon"].to_numpy(dtype=float).copy()
    lat = df["lat"].to_numpy(dtype=float).copy()
    gcj = (df["datum"] == "gcj02").to_numpy()
    lon[gcj], lat[gcj] = convert(lon[gcj], lat[gcj], "gcj02", "wgs84")
    return lon, lat


# --- small district built in code -------------------------------------------------------------------


def test_same_seed_gives_equal_frames_and_identical_bytes(small_district, layers, tmp_path):
    again = generate(small_district, 7)
    assert set(again) == set(layers)
    for name in layers:
        pd.testing.assert_frame_equal(again[name], layers[name])
    first = write_demo_layers(layers, tmp_path / "a")
    second = write_demo_layers(again, tmp_path / "b")
    assert {p.name for p in first.values()} == LAYER_FILES
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes()


def test_another_seed_gives_other_data(small_district, layers):
    other = generate(small_district, 8)
    assert not other["household"].equals(layers["household"])
    assert not other["accessible_toilet"].equals(layers["accessible_toilet"])


def test_csv_floats_have_fixed_decimals(layers, tmp_path):
    paths = write_demo_layers(layers, tmp_path)
    text = paths["household"].read_text(encoding="utf-8")
    assert "\r" not in text
    df = pd.read_csv(paths["household"], dtype=str, keep_default_na=False)
    assert df["lon"].str.fullmatch(r"\d{3}\.\d{6}").all()
    assert df["lat"].str.fullmatch(r"\d{2}\.\d{6}").all()


def test_toilet_counts_by_build_type(layers):
    counts = layers["accessible_toilet"]["build_type"].value_counts().to_dict()
    assert counts["rebuild"] == 19
    assert counts["new"] == 19
    assert set(counts) == {"existing", "rebuild", "new"}


@pytest.mark.parametrize("layer", list(ID_PATTERNS))
def test_ids_codes_and_statuses(layers, layer):
    df = layers[layer]
    assert df["id"].str.fullmatch(ID_PATTERNS[layer]).all()
    assert df["id"].is_unique
    assert set(df["status"]) <= WORKFLOWS[layer]
    assert df["town_code"].str.fullmatch(r"\d{9}").all()
    assert (df["village_code"].str[:9] == df["town_code"]).all()
    assert df["synthetic"].all()
    assert set(df["datum"]) <= {"wgs84", "gcj02"}
    assert df["name"].str.contains(r"[\u4e00-\u9fff]").all()
    # Address: district + town + village, then road/number or group/number.
    for _, row in df.iterrows():
        town = TOWN_NAMES[row["town_code"]]
        assert re.fullmatch(rf"璧山区{town}第\d(社区|村).+号", row["address"]), row["address"]


@pytest.mark.parametrize("layer", list(ID_PATTERNS))
def test_points_lie_in_their_town_area_near_their_village(small_district, layers, layer):
    df = layers[layer]
    lon, lat = true_positions(df)
    villages = small_district["villages"].set_index("village_code")
    for code, x0 in TOWN_X0.items():
        sel = (df["town_code"] == code).to_numpy()
        assert ((lon[sel] > x0) & (lon[sel] < x0 + 0.05)).all()
    assert ((lat > 29.5) & (lat < 29.6)).all()
    dx_m = (lon - villages.loc[df["village_code"], "lon"].to_numpy()) * 96_800  # m per degree at 29.55°N
    dy_m = (lat - villages.loc[df["village_code"], "lat"].to_numpy()) * 111_320
    limit_m = 3_000 if layer == "household" else 1_000
    assert (np.hypot(dx_m, dy_m) < limit_m).all()


def test_a_quarter_of_households_are_recorded_in_gcj02(layers):
    share = (layers["household"]["datum"] == "gcj02").mean()
    assert 0.2 < share < 0.3


def test_id_and_certificate_numbers_are_valid(layers):
    hh = layers["household"]
    assert all(valid_id_number(x) for x in hh["id_number"])
    assert hh["id_number"].is_unique
    assert hh["id_number"].str[:6].isin(["500120", "500227"]).all()
    assert hh["certificate_number"].str.fullmatch(r"\d{17}[\dX][1-7][1-4]").all()
    assert (hh["certificate_number"].str[:18] == hh["id_number"]).all()
    assert (hh["certificate_number"].str[18].astype(int) == hh["disability_category"]).all()
    assert (hh["certificate_number"].str[19].astype(int) == hh["disability_grade"]).all()
    assert hh["disability_grade"].isin([1, 2]).mean() > 0.8  # severe disabilities


def test_birth_dates_are_real_dates_with_plausible_ages(layers):
    births = pd.to_datetime(layers["household"]["id_number"].str[6:14], format="%Y%m%d")
    ages = (pd.Timestamp(AS_OF) - births).dt.days / 365.25
    assert ages.min() >= 0
    assert ages.max() < 105
    # The pre-2014 county prefix 500227 can only belong to people born before 2014.
    old = layers["household"]["id_number"].str[:6] == "500227"
    assert (births[old].dt.year < 2014).all()


def test_household_fields(layers):
    hh = layers["household"]
    for needs in hh["needs"]:
        items = needs.split("；")
        assert items and set(items) <= NEEDS and len(items) == len(set(items))
    assert set(hh["legal_basis"]) == {"statutory_duty", "consent"}
    assert hh["phone"].str.fullmatch(r"1\d{10}").all()
    assert 1_100 <= len(hh) <= 1_300
    assert set(hh["status"]) == WORKFLOWS["household"]


def test_households_follow_village_households(layers):
    # In each town the fourth village has 400 households and the first 100: about four times as many.
    counts = layers["household"]["village_code"].value_counts()
    for code in TOWN_X0:
        assert counts[code + "203"] > 2 * counts[code + "001"]


def test_toilet_gb50763_fields_exact_names_and_filled_by_status(layers):
    at = layers["accessible_toilet"]
    gb_columns = [c for c in at.columns if c in GB50763_FIELDS]
    assert gb_columns == GB50763_FIELDS
    surveyed = at["status"].isin(["completed", "accepted"])
    assert at.loc[surveyed, "door_clear_width_mm"].notna().all()
    assert at.loc[surveyed, "survey_date"].notna().all()
    assert at.loc[~surveyed, GB50763_FIELDS].isna().all().all()
    assert (at.loc[at["build_type"] == "existing", "status"] == "accepted").all()
    new = at[at["build_type"] == "new"]
    assert new["status"].isin(["planned", "under_construction"]).mean() > 0.5
    assert at.loc[at["build_type"] != "existing", "contractor"].notna().all()
    assert at.loc[at["build_type"] != "existing", "planned_completion"].notna().all()


def test_facility_fields(layers):
    rs = layers["rehab_station"]
    assert (rs["training_area_m2"] >= 20).all()
    assert (rs["status"] == "open").mean() > 0.5
    sc = layers["service_centre"]
    assert (sc["status"] == "open").all()
    assert sc["town_code"].is_unique
    assert sc[["lon", "lat"]].notna().all().all()
    assert set(layers["sports_site"]["status"]) <= {"planned", "open"}


def test_missing_column_is_named(small_district):
    villages = small_district["villages"].drop(columns=["households"])
    with pytest.raises(ValueError, match="`villages` lacks the column.*households"):
        generate_demo_layers(small_district["towns"], villages, seed=1)


# --- committed demo data of the embedded district -----------------------------------------------------


@pytest.fixture(scope="module")
def district():
    return load_district()


@pytest.fixture(scope="module")
def committed(district):
    return {
        name: pd.read_csv(
            district.demo_dir / f"{name}.csv",
            dtype={"id": str, "town_code": str, "village_code": str},
            encoding="utf-8",
        )
        for name in ID_PATTERNS
    }


@pytest.mark.parametrize("layer", list(ID_PATTERNS))
def test_committed_points_inside_town_area_and_boundary(district, committed, layer):
    df = committed[layer]
    lon, lat = true_positions(df)
    outline = shapely.union_all(district.boundary.geometry.values)
    assert shapely.contains_xy(outline, lon, lat).all()
    areas = dict(zip(district.town_areas["town_code"], district.town_areas.geometry, strict=True))
    town_codes = df["town_code"].to_numpy()
    inside = [shapely.contains_xy(areas[c], x, y) for c, x, y in zip(town_codes, lon, lat, strict=True)]
    assert all(inside)


@pytest.mark.parametrize("layer", list(ID_PATTERNS))
def test_committed_codes_exist(district, committed, layer):
    df = committed[layer]
    assert set(df["town_code"]) <= set(district.towns["town_code"])
    villages = district.villages.set_index("village_code")["town_code"]
    assert df["village_code"].isin(villages.index).all()
    assert (villages.loc[df["village_code"]].to_numpy() == df["town_code"].to_numpy()).all()
    assert set(df["status"]) <= WORKFLOWS[layer]


def test_committed_counts(committed):
    assert 1_100 <= len(committed["household"]) <= 1_300
    at = committed["accessible_toilet"]
    assert (at["build_type"] == "rebuild").sum() == 19
    assert (at["build_type"] == "new").sum() == 19
    assert all(valid_id_number(x) for x in committed["household"]["id_number"])
    # Mostly compliant surveys, with a few realistic failures.
    surveyed = at[at["survey_date"].notna()]
    failing = (
        (surveyed["room_area_m2"] < 4.0)
        | (surveyed["door_clear_width_mm"] < 800)
        | (surveyed["turning_diameter_m"] < 1.5)
        | ~surveyed["call_button"].astype(bool)
        | ~surveyed["grab_bar_vertical"].astype(bool)
        | ~surveyed["step_free_entrance"].astype(bool)
    )
    assert 0 < failing.sum() < 0.3 * len(surveyed)


def test_regenerating_the_committed_data_is_byte_identical(district, tmp_path):
    layers = generate_demo_layers(
        district.towns,
        district.villages,
        seed=district.seed,
        town_areas=district.town_areas,
        boundary=district.boundary,
        district_name=district.name,
    )
    paths = write_demo_layers(layers, tmp_path)
    assert {p.name for p in district.demo_dir.glob("*.csv")} == LAYER_FILES
    for path in paths.values():
        assert path.read_bytes() == (district.demo_dir / path.name).read_bytes(), path.name


@pytest.mark.parametrize("layer", list(ID_PATTERNS))
def test_committed_points_are_near_their_village(district, committed, layer):
    limit_m = 3_000 if layer == "household" else 1_000
    df = committed[layer]
    lon, lat = true_positions(df)
    points = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(district.crs)
    villages = district.villages.set_index("village_code").to_crs(district.crs)
    anchors = villages.geometry.loc[df["village_code"]].reset_index(drop=True)
    assert (points.distance(anchors) < limit_m).all()
