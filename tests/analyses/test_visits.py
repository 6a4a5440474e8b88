"""Tests for analyses.visits on the 4×4 grid (100 m apart; see tests/geo/conftest.make_grid).

On the ``drive`` profile every grid street is residential (19 km/h), row 1 is one-way eastbound,
the steps (2,0)–(3,0) are unusable and the piece 17–18 is cut off from the grid.
"""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point

from analyses.costs import Placer
from analyses.visits import START_ID, _square, _two_opt, order_visits, path_cost
from geo.routing import cost_matrix
from tests.geo.conftest import CRS, X0, Y0, xy

RESIDENTIAL_MPS = 19 / 3.6


def _points(cells: dict[str, tuple[int, int]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"id": list(cells)}, geometry=[Point(xy(r, c)) for r, c in cells.values()], crs=CRS)


def _start(r: int = 0, c: int = 0) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=[Point(xy(r, c))], crs=CRS)


@pytest.fixture
def placer(grid_net):
    return Placer(grid_net)


def test_hand_derived_order_lengths_and_times(placer):
    # From (0,0): (0,1) 100 m, (0,2) 100 m, then up to (2,2) 200 m; any other order is longer.
    households = _points({"far": (2, 2), "mid": (0, 2), "near": (0, 1)})
    route = order_visits(placer, _start(), households, weight="length")
    assert route.order == ("near", "mid", "far")
    assert route.leg_length_m == pytest.approx((100, 100, 200))
    assert route.total_length_m == pytest.approx(400)
    assert route.leg_time_s == pytest.approx((100 / RESIDENTIAL_MPS, 100 / RESIDENTIAL_MPS, 200 / RESIDENTIAL_MPS))
    assert route.total_time_s == pytest.approx(400 / RESIDENTIAL_MPS)
    assert route.unreachable == ()
    assert (route.weight, route.profile) == ("length", "drive")


def test_drive_avoids_steps_and_leaves_out_the_cut_off_piece(placer):
    # (3,0) by car: the steps (2,0)–(3,0) are closed, so 0,0 → 0,1 → 3,1 → 3,0 = 500 m (walk: 300 m).
    households = gpd.GeoDataFrame(
        {"id": ["corner", "island"]}, geometry=[Point(xy(3, 0)), Point(X0 + 1050, Y0)], crs=CRS
    )
    route = order_visits(placer, _start(), households, weight="length")
    assert route.order == ("corner",)
    assert route.total_length_m == pytest.approx(500)
    assert route.unreachable == ("island",)
    walk = order_visits(placer, _start(), households.iloc[:1], profile="walk", weight="length")
    assert walk.total_length_m == pytest.approx(300)


def test_one_way_row_makes_costs_asymmetric_and_the_route_respects_it(placer):
    # Start at (1,3) on the eastbound row: (1,2) is 100 m west on foot, but by car 300 m (round via row 0 or 2).
    households = _points({"west": (1, 2)})
    drive = order_visits(placer, _start(1, 3), households, weight="length")
    walk = order_visits(placer, _start(1, 3), households, profile="walk", weight="length")
    assert drive.total_length_m == pytest.approx(300)
    assert walk.total_length_m == pytest.approx(100)


def _matrix(placer, start, households, weight="length"):
    points = gpd.GeoDataFrame(
        {"_id": [START_ID, *households["id"]]},
        geometry=[*start.geometry, *households.geometry],
        crs=CRS,
    )
    snap = placer.snap(points, "drive", id_column="_id")
    table = cost_matrix(placer.net, "drive", snap, snap, weight=weight, cutoff=1e9)
    return _square(table, [START_ID, *households["id"]])


def _brute_force(C: np.ndarray) -> float:
    n = len(C)
    return min(path_cost(C, [0, *p]) for p in itertools.permutations(range(1, n)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weight", ["length", "travel_time"])
def test_exact_order_equals_brute_force_on_up_to_seven_points(placer, seed, weight):
    rng = np.random.default_rng(seed)
    cells = [(r, c) for r in range(4) for c in range(4) if (r, c) != (0, 0)]
    n = int(rng.integers(4, 8))  # 4 to 7 households
    picked = rng.choice(len(cells), size=n, replace=False)
    households = _points({f"h{i}": cells[k] for i, k in enumerate(picked)})
    route = order_visits(placer, _start(), households, weight=weight)
    C = _matrix(placer, _start(), households, weight)
    position = {f"h{i}": i + 1 for i in range(n)}
    found = path_cost(C, [0, *(position[h] for h in route.order)])
    assert found == pytest.approx(_brute_force(C))
    total = route.total_length_m if weight == "length" else route.total_time_s
    assert total == pytest.approx(found)
    assert sorted(route.order) == sorted(households["id"])

    heuristic = order_visits(placer, _start(), households, weight=weight, exact_max_stops=0)
    assert sorted(heuristic.order) == sorted(households["id"])
    heuristic_total = heuristic.total_length_m if weight == "length" else heuristic.total_time_s
    assert heuristic_total >= found - 1e-9


def test_heuristic_finds_the_hand_derived_order(placer):
    households = _points({"far": (2, 2), "mid": (0, 2), "near": (0, 1)})
    route = order_visits(placer, _start(), households, weight="length", exact_max_stops=0)
    assert route.order == ("near", "mid", "far")


def test_two_opt_uncrosses_a_path_on_a_line():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    C = np.abs(x[:, None] - x[None, :])
    path = _two_opt(C, np.array([0, 3, 1, 2]))  # 3 + 2 + 1 = 6
    assert path.tolist() == [0, 1, 2, 3]
    assert path_cost(C, path) == 3


@pytest.mark.parametrize(
    ("start_rows", "households", "match"),
    [
        (2, {"a": (0, 1)}, "exactly one point"),
        (1, {}, "empty"),
    ],
)
def test_bad_input_is_refused(placer, start_rows, households, match):
    start = gpd.GeoDataFrame(geometry=[Point(xy(0, 0))] * start_rows, crs=CRS)
    frame = _points(households) if households else gpd.GeoDataFrame({"id": []}, geometry=[], crs=CRS)
    with pytest.raises(ValueError, match=match):
        order_visits(placer, start, frame)


def test_duplicate_ids_and_bad_weight_are_refused(placer):
    households = gpd.GeoDataFrame({"id": ["a", "a"]}, geometry=[Point(xy(0, 1)), Point(xy(0, 2))], crs=CRS)
    with pytest.raises(ValueError, match="duplicate ids"):
        order_visits(placer, _start(), households)
    with pytest.raises(ValueError, match="`weight`"):
        order_visits(placer, _start(), households.iloc[:1], weight="minutes")
