"""Tests for analyses.service_areas on the 4×4 grid (100 m apart; see tests/geo/conftest.make_grid).

Grid node ids are ``1 + 4 r + c`` at (X0 + 100 c, Y0 + 100 r); row 1 is one-way eastbound, the
piece (2, 0)–(3, 0) is steps (walk only), and the piece 17–18 at x = X0 + 1000..1100 is isolated.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from analyses.costs import Placer
from analyses.service_areas import LAYER_NAMES, service_areas
from tests.geo.conftest import CRS, X0, Y0

BUFFER_M = 5.0


def _facilities(*points: tuple[float, float], ids: list[str] | None = None) -> gpd.GeoDataFrame:
    ids = ids or [f"F{i}" for i in range(len(points))]
    return gpd.GeoDataFrame({"id": ids}, geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in points], crs=CRS)


def _area(result, facility_id: str, threshold: str) -> shapely.Geometry:
    rows = result.areas
    row = rows[(rows["facility_id"] == facility_id) & (rows["threshold"] == threshold)]
    assert len(row) == 1
    return row.to_crs(CRS).geometry.iloc[0]


def _inside(area: shapely.Geometry, x: float, y: float) -> bool:
    return bool(shapely.contains_xy(area, X0 + x, Y0 + y))


@pytest.fixture
def placer(grid_net):
    return Placer(grid_net)


def test_roads_from_a_node_follow_the_roads(placer):
    # from node 1 (0, 0) within 150 m on foot: pieces 1-2 and 1-5 whole, then 50 m further on
    # 2-3, 2-6, 5-9 and 5-6 (walk ignores one-way rules)
    result = service_areas(placer, _facilities((0, 0)), profile="walk", thresholds=["150m"], buffer_m=BUFFER_M)
    area = _area(result, "F0", "150m")
    assert result.areas["road_length_m"].iloc[0] == pytest.approx(400.0)
    assert _inside(area, 140, 0) and not _inside(area, 160, 0)  # along 1-2-3
    assert _inside(area, 0, 140) and not _inside(area, 0, 160)  # along 1-5-9
    assert _inside(area, 100, 45) and not _inside(area, 100, 60)  # up 2-6, 50 m left after node 2
    assert _inside(area, 45, 100) and not _inside(area, 60, 100)  # along 5-6
    # the block between the roads is not reached: only the buffer around the roads is
    assert not _inside(area, 50, 50)
    assert shapely.distance(area, shapely.Point(X0 + 1050, Y0)) > 800  # isolated piece 17-18


def test_facility_between_nodes_starts_from_its_snapped_position(placer):
    # 10 m south of the middle of piece 1-2: access 10 m, so 140 m along the roads from (50, 0);
    # piece 1-2 whole, then 90 m up 1-5, along 2-3 and up 2-6
    result = service_areas(placer, _facilities((50, -10)), profile="walk", thresholds=["150m"], buffer_m=BUFFER_M)
    area = _area(result, "F0", "150m")
    assert result.areas["road_length_m"].iloc[0] == pytest.approx(100.0 + 3 * 90.0)
    assert _inside(area, 0, 85) and not _inside(area, 0, 100)
    assert _inside(area, 185, 0) and not _inside(area, 200, 0)
    assert _inside(area, 100, 85) and not _inside(area, 100, 100)


def test_travel_time_threshold_uses_the_profile_speed(placer):
    # wheelchair 3 km/h: 2 min = 100 m, so exactly pieces 1-2 and 1-5
    result = service_areas(placer, _facilities((0, 0)), profile="wheelchair", thresholds=["2min"], buffer_m=BUFFER_M)
    area = _area(result, "F0", "2min")
    assert result.areas["road_length_m"].iloc[0] == pytest.approx(200.0)
    assert result.areas["unit"].iloc[0] == "s"
    assert _inside(area, 99, 0) and not _inside(area, 100, 15) and not _inside(area, 115, 0)


def test_unusable_piece_is_not_followed(placer):
    # from node 13 (3, 0): the steps down to node 9 are walkable but not for a wheelchair
    walk = service_areas(placer, _facilities((0, 300)), profile="walk", thresholds=["150m"], buffer_m=BUFFER_M)
    chair = service_areas(placer, _facilities((0, 300)), profile="wheelchair", thresholds=["150m"], buffer_m=BUFFER_M)
    assert _inside(_area(walk, "F0", "150m"), 0, 250)
    assert not _inside(_area(chair, "F0", "150m"), 0, 250)
    # 13-14 whole, then 50 m on 14-15 and down 14-10; no steps
    assert chair.areas["road_length_m"].iloc[0] == pytest.approx(200.0)
    assert walk.areas["road_length_m"].iloc[0] == pytest.approx(400.0)  # plus 13-9, 9-5 and 9-10


def test_hull_covers_the_shortcut_the_roads_do_not(placer):
    fac = _facilities((0, 0))
    roads = service_areas(placer, fac, profile="walk", thresholds=["150m"], buffer_m=BUFFER_M)
    hull = service_areas(placer, fac, profile="walk", thresholds=["150m"], shape="hull", buffer_m=0)
    # convex hull of the stretch ends: the triangle (0, 0), (150, 0), (0, 150)
    assert _area(hull, "F0", "150m").area == pytest.approx(150.0 * 150.0 / 2)
    assert _inside(_area(hull, "F0", "150m"), 50, 50)
    assert not _inside(_area(roads, "F0", "150m"), 50, 50)


def test_isolated_piece_never_inside(placer):
    fac = _facilities((0, 0), (300, 300))
    for shape in ("roads", "hull"):
        result = service_areas(placer, fac, profile="walk", thresholds=["5km"], shape=shape, buffer_m=BUFFER_M)
        isolated = shapely.LineString([(X0 + 1000, Y0), (X0 + 1100, Y0)])
        assert not result.dissolved.to_crs(CRS).geometry.iloc[0].intersects(isolated)
        assert result.areas["road_length_m"].tolist() == pytest.approx([2400.0, 2400.0])  # 24 grid pieces


def test_one_way_row_under_drive(placer):
    # node 1 to node 5 is two-way; row 1 (5 -> 6 -> 7) is one-way eastbound
    fac = _facilities((0, 0))
    outward = service_areas(
        placer, fac, profile="drive", thresholds=["150m"], buffer_m=BUFFER_M, direction="from_facility"
    )
    inward = service_areas(placer, fac, profile="drive", thresholds=["150m"], buffer_m=BUFFER_M)
    assert _inside(_area(outward, "F0", "150m"), 40, 100)  # driving out: 1 -> 5 -> east
    assert not _inside(_area(inward, "F0", "150m"), 40, 100)  # driving in: 5-6 cannot be driven west
    assert outward.areas["road_length_m"].iloc[0] == pytest.approx(400.0)
    assert inward.areas["road_length_m"].iloc[0] == pytest.approx(350.0)


def test_dissolved_is_the_union_of_the_areas(placer):
    fac = _facilities((0, 0), (300, 300), (100, 200))
    result = service_areas(placer, fac, profile="walk", thresholds=["150m", "250m"], buffer_m=BUFFER_M)
    assert len(result.areas) == 6
    assert result.areas["threshold"].tolist() == ["150m"] * 3 + ["250m"] * 3
    assert result.dissolved["threshold"].tolist() == ["150m", "250m"]
    assert result.dissolved["facilities"].tolist() == [3, 3]
    areas = result.areas.to_crs(CRS)
    for label, dissolved in zip(result.dissolved["threshold"], result.dissolved.to_crs(CRS).geometry, strict=True):
        union = shapely.union_all(areas.loc[areas["threshold"] == label].geometry.to_numpy())
        assert shapely.symmetric_difference(union, dissolved).area < 1e-3
    assert result.dissolved.crs == "EPSG:4326" and result.areas.crs == "EPSG:4326"


def test_facility_too_far_from_roads_gets_an_empty_area(placer):
    fac = _facilities((0, 0), (-2000, -2000), ids=["near", "far"])
    result = service_areas(placer, fac, profile="walk", thresholds=["150m"], buffer_m=BUFFER_M)
    far = result.areas.set_index("facility_id").loc["far"]
    assert bool(far["too_far"]) and far.geometry.is_empty and far["road_length_m"] == 0
    assert result.dissolved["facilities"].tolist() == [1]
    assert result.parameters["n_too_far"] == 1


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson"])
def test_round_trip_to_file(placer, tmp_path, suffix):
    fac = _facilities((0, 0), (300, 300))
    result = service_areas(placer, fac, profile="walk", thresholds=["150m"], buffer_m=BUFFER_M)
    path = result.to_file(tmp_path / f"areas{suffix}")
    kwargs = {"layer": LAYER_NAMES["areas"]} if suffix == ".gpkg" else {}
    back = gpd.read_file(path, engine="pyogrio", **kwargs)
    assert_geodataframe_equal(back, result.areas, check_less_precise=True, check_dtype=False)
    if suffix == ".gpkg":
        dissolved = gpd.read_file(path, layer=LAYER_NAMES["dissolved"], engine="pyogrio")
        assert_geodataframe_equal(dissolved, result.dissolved, check_less_precise=True, check_dtype=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"thresholds": []}, "at least one"),
        ({"thresholds": ["150 parsecs"]}, "positive number with a unit"),
        ({"shape": "circle"}, "`shape`"),
        ({"direction": "sideways"}, "`direction`"),
        ({"buffer_m": 0.0}, "`buffer_m` must be > 0"),
        ({"buffer_m": -1.0}, "`buffer_m`"),
        ({"hull_ratio": 2.0}, "`hull_ratio`"),
        ({"workers": 0}, "`workers`"),
    ],
)
def test_bad_options_raise(placer, kwargs, match):
    options = {"profile": "walk", "thresholds": ["150m"], **kwargs}
    with pytest.raises(ValueError, match=match):
        service_areas(placer, _facilities((0, 0)), **options)


def test_bad_facilities_raise(placer):
    with pytest.raises(ValueError, match="ids must be unique"):
        service_areas(placer, _facilities((0, 0), (100, 0), ids=["A", "A"]), profile="walk", thresholds=["1km"])
    with pytest.raises(ValueError, match="lacks the column 'id'"):
        service_areas(placer, _facilities((0, 0)).rename(columns={"id": "x"}), profile="walk", thresholds=["1km"])


def test_to_file_rejects_unknown_extension(placer, tmp_path):
    result = service_areas(placer, _facilities((0, 0)), profile="walk", thresholds=["150m"])
    with pytest.raises(ValueError, match=r"\.gpkg"):
        result.to_file(tmp_path / "areas.csv")
    assert np.isclose(result.areas["road_length_m"].iloc[0], 400.0)


def test_facilities_sharing_road_get_the_same_exact_shape(placer):
    # the second facility reaches the same whole pieces (shared, united once) plus 50 m more;
    # each area is still the union of its own buffered stretches
    fac = _facilities((0, 0), (0, 0), (100, 0), ids=["A", "B", "C"])
    result = service_areas(placer, fac, profile="walk", thresholds=["150m"], buffer_m=BUFFER_M)
    a, b, c = (_area(result, f, "150m") for f in "ABC")
    assert shapely.equals(a, b)
    single = service_areas(placer, fac.iloc[[2]], profile="walk", thresholds=["150m"], buffer_m=BUFFER_M)
    assert shapely.symmetric_difference(c, _area(single, "C", "150m")).area < 1e-6
    assert _inside(c, 100, 140) and not _inside(c, 100, 160)


def test_to_file_writes_one_layer_and_replaces_the_file(placer, tmp_path):
    result = service_areas(placer, _facilities((0, 0)), profile="walk", thresholds=["150m"], buffer_m=BUFFER_M)
    path = tmp_path / "areas.gpkg"
    result.to_file(path)
    result.to_file(path, layer="dissolved")
    back = gpd.read_file(path, layer=LAYER_NAMES["dissolved"], engine="pyogrio")
    assert back["facilities"].tolist() == [1]
    assert pyogrio.list_layers(path)[:, 0].tolist() == [LAYER_NAMES["dissolved"]]
    with pytest.raises(ValueError, match=r"\.geojson"):
        result.to_file(tmp_path / "areas.json")


def test_threads_give_the_same_shapes_as_one_thread(placer):
    fac = _facilities((0, 0), (300, 300), (100, 200), (0, 0))
    options = {"profile": "walk", "thresholds": ["150m", "250m"], "buffer_m": BUFFER_M}
    one = service_areas(placer, fac, workers=1, **options)
    two = service_areas(placer, fac, workers=2, **options)
    assert shapely.equals(one.areas.geometry.to_numpy(), two.areas.geometry.to_numpy()).all()
    assert shapely.equals(one.dissolved.geometry.to_numpy(), two.dissolved.geometry.to_numpy()).all()
    assert one.areas["road_length_m"].tolist() == two.areas["road_length_m"].tolist()


def test_progress_moves_through_the_polygons_and_ends_at_one(tmp_path):
    """The long polygon step reports its share as it goes: rising, past 0.3 more than once, ending at 1."""
    import geopandas as gpd
    from shapely.geometry import Point

    from analyses.costs import Placer
    from analyses.service_areas import service_areas
    from geo.osm import read_roads
    from geo.prepared import prepare_roads
    from geo.profiles import load_profiles
    from tests.geo.test_slopes import CRS, write_osm

    nodes = {n: (n % 5, n // 5, {}) for n in range(25)}
    ways = [(100 + n, [n, n + 1], {"highway": "residential"}) for n in range(25) if n % 5 != 4]
    ways += [(200 + n, [n, n + 5], {"highway": "residential"}) for n in range(20)]
    roads = read_roads(write_osm(tmp_path / "grid.osm", nodes, ways), min_component_share=0)
    net = prepare_roads(roads, crs=CRS, profiles=load_profiles())
    xy = list(zip(net.node_x, net.node_y, strict=True))
    facilities = gpd.GeoDataFrame({"id": [f"F{i}" for i in range(6)]}, geometry=[Point(xy[i * 4]) for i in range(6)],
                                  crs=CRS)  # fmt: skip
    shares: list[float] = []
    service_areas(Placer(net), facilities, profile="walk", thresholds=["150m", "300m"], progress=shares.append,
                  workers=1)  # fmt: skip
    assert shares[:2] == [0.2, 0.3] and shares[-1] == 1.0
    assert shares == sorted(shares) and len([s for s in shares if 0.3 < s < 1.0]) >= 3
