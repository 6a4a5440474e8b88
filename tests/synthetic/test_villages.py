from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from layers.district import load_district
from synthetic.villages import (
    CENSUS_POPULATION,
    generate_town_areas,
    generate_villages,
)

CRS = "EPSG:32648"
# DOMAIN.md §3: 城乡分类代码 allowed per (town kind, village kind).
ALLOWED_CODES = {
    ("subdistrict", "community"): {"111", "112"},
    ("town", "community"): {"121", "122"},
    ("subdistrict", "village"): {"210", "220"},
    ("town", "village"): {"210", "220"},
}


@pytest.fixture(scope="module")
def district():
    return load_district()


@pytest.fixture(scope="module")
def villages(district):
    return district.villages


@pytest.fixture(scope="module")
def town_areas(district):
    return district.town_areas


def test_village_count_is_in_the_planned_range(villages):
    assert 200 <= len(villages) <= 300
    assert villages["village_code"].is_unique


def test_every_village_lies_in_its_town_area(villages, town_areas):
    areas = dict(zip(town_areas["town_code"], town_areas.geometry, strict=True))
    inside = [areas[t].contains(p) for t, p in zip(villages["town_code"], villages.geometry, strict=True)]
    assert all(inside)


def test_every_village_keeps_clear_of_its_town_border(villages, town_areas, district):
    areas = town_areas.to_crs(district.crs).set_index("town_code").geometry
    points = villages.to_crs(district.crs)
    gaps = [areas[t].exterior.distance(p) if areas[t].geom_type == "Polygon" else areas[t].boundary.distance(p)
            for t, p in zip(points["town_code"], points.geometry, strict=True)]  # fmt: skip
    assert min(gaps) > 100.0  # generated 150 m inside, minus 5-decimal rounding (~1 m)


def test_every_village_lies_inside_the_district(villages, district):
    assert villages.geometry.within(district.boundary.geometry.iloc[0]).all()


def test_codes_follow_the_nbs_structure(villages, district):
    kinds = dict(zip(district.towns["town_code"], district.towns["kind"], strict=True))
    for row in villages.itertuples():
        assert len(row.village_code) == 12 and row.village_code.isdigit()
        assert row.village_code[:9] == row.town_code
        suffix = int(row.village_code[9:])
        assert (1 <= suffix <= 99) if row.kind == "community" else (200 <= suffix <= 399)
        assert row.urban_rural_code in ALLOWED_CODES[(kinds[row.town_code], row.kind)]


def test_names_are_unique_within_a_town_and_end_with_their_kind(villages):
    assert not villages.duplicated(["town_code", "name"]).any()
    suffix = villages["kind"].map({"community": "社区", "village": "村"})
    assert all(n.endswith(s) for n, s in zip(villages["name"], suffix, strict=True))


def test_population_matches_the_census_and_is_mostly_urban(villages, district):
    assert villages["population"].sum() == CENSUS_POPULATION
    ratio = villages["population"] / villages["households"]
    assert ratio.between(2.4, 3.0).all()
    kinds = villages["town_code"].map(dict(zip(district.towns["town_code"], district.towns["kind"], strict=True)))
    subdistrict_communities = villages[(kinds == "subdistrict") & (villages["kind"] == "community")]
    assert subdistrict_communities["population"].sum() > CENSUS_POPULATION / 2
    assert villages["synthetic"].all()


def test_regenerating_with_the_district_seed_gives_the_committed_tables(district, villages, town_areas):
    areas = generate_town_areas(district.boundary, district.towns, crs=district.crs)
    for a, b in zip(areas.geometry, town_areas.geometry, strict=True):
        assert a.symmetric_difference(b).area < 1e-4 * b.area  # committed with 6 decimals (~0.1 m)
    again = generate_villages(areas, district.towns, seed=district.seed, crs=district.crs)
    committed = pd.DataFrame(villages.drop(columns="geometry"))
    pd.testing.assert_frame_equal(committed, again)


def test_another_seed_gives_other_villages(district, town_areas):
    a = generate_villages(town_areas, district.towns, seed=1, crs=district.crs)
    b = generate_villages(town_areas, district.towns, seed=2, crs=district.crs)
    assert not a[["lon", "lat"]].equals(b[["lon", "lat"]])


# -- tiny hand-built inputs ------------------------------------------------------------------------------
@pytest.fixture
def square():
    # 10 km square in UTM 48N near Bishan, with three seats
    boundary = gpd.GeoDataFrame(geometry=[shapely.box(610_000, 3_260_000, 620_000, 3_270_000)], crs=CRS)
    towns = gpd.GeoDataFrame(
        {"town_code": ["500120001", "500120100", "500120101"], "name": ["甲街道", "乙镇", "丙镇"],
         "kind": ["subdistrict", "town", "town"]},
        geometry=gpd.points_from_xy([612_000, 618_000, 615_000], [3_262_000, 3_263_000, 3_268_000]),
        crs=CRS,
    )  # fmt: skip
    return boundary, towns


def test_town_areas_cover_the_boundary_without_overlap(square):
    boundary, towns = square
    areas = generate_town_areas(boundary, towns, crs=CRS).to_crs(CRS)
    assert areas.area.sum() == pytest.approx(1e8, rel=1e-9)
    assert shapely.union_all(areas.geometry).area == pytest.approx(1e8, rel=1e-9)
    assert list(areas.columns) == ["town_code", "name", "approximate", "geometry"]
    assert areas["approximate"].all() and areas.crs is not None


def test_each_seat_lies_in_its_own_cell(square):
    boundary, towns = square
    areas = generate_town_areas(boundary, towns, crs=CRS).to_crs(CRS)
    hits = np.array([[cell.contains(seat) for cell in areas.geometry] for seat in towns.geometry])
    assert (hits == np.eye(3, dtype=bool)).all()


def test_the_seat_cells_split_the_square_at_the_bisector():
    boundary = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1000, 1000)], crs=CRS)
    towns = gpd.GeoDataFrame({"town_code": ["1", "2"], "name": ["a", "b"]},
                             geometry=gpd.points_from_xy([250, 750], [500, 500]), crs=CRS)  # fmt: skip
    areas = generate_town_areas(boundary, towns, crs=CRS).to_crs(CRS)
    assert areas.area.tolist() == pytest.approx([500_000.0, 500_000.0], rel=1e-6)


def test_a_seat_outside_the_boundary_is_refused(square):
    boundary, towns = square
    towns = towns.set_geometry(gpd.points_from_xy([612_000, 618_000, 625_000], [3_262_000] * 3, crs=CRS))
    with pytest.raises(ValueError, match=r"500120101.*lie outside"):
        generate_town_areas(boundary, towns, crs=CRS)


def test_villages_on_tiny_input_are_reproducible_and_inside(square):
    boundary, towns = square
    areas = generate_town_areas(boundary, towns, crs=CRS)
    a = generate_villages(areas, towns, seed=7, crs=CRS)
    pd.testing.assert_frame_equal(a, generate_villages(areas, towns, seed=7, crs=CRS))
    # 6-10 communities + 6-10 villages in the subdistrict, 1-3 + 14-17 in each town
    assert 2 * 15 + 12 <= len(a) <= 2 * 20 + 20
    points = gpd.GeoSeries(gpd.points_from_xy(a["lon"], a["lat"]), crs="EPSG:4326").to_crs(CRS)
    cells = areas.to_crs(CRS).set_index("town_code").geometry
    assert all(cells[t].contains(p) for t, p in zip(a["town_code"], points, strict=True))
