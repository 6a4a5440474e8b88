"""Tests for analyses.gaps: uncovered demand, gap road stretches, hexagons, the multi-service report.

Grid (tests/geo/conftest.py): node (r, c) at (X0 + 100 c, Y0 + 100 r), all two-way residential except
row 1 one-way eastbound (walk ignores one-way, drive does not), steps (2,0)–(3,0) (walk only), and
an isolated piece 17–18 from (X0 + 1000, Y0) to (X0 + 1100, Y0). With one facility at node (0,0)
the walking cost of node (r, c) is 100 (r + c) m.
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from analyses.costs import Placer
from analyses.coverage import measure_coverage
from analyses.gaps import (
    BEYOND,
    TOO_FAR_FROM_ROAD,
    UNREACHABLE,
    WITHIN,
    find_gaps,
    gap_segments,
    multi_service_report,
)
from geo.prepared import prepare_network
from geo.profiles import load_profiles
from geo.routing import nearest_facility
from layers.io import write_layer
from tests.geo.conftest import CRS, X0, Y0, make_grid, node, xy

TOWN = "500120001"


def _points(rows: dict[str, tuple[float, float]]) -> gpd.GeoDataFrame:
    xs, ys = zip(*rows.values(), strict=True)
    return gpd.GeoDataFrame(
        {"id": list(rows), "town_code": TOWN, "name": "不应出现"},
        geometry=gpd.points_from_xy(xs, ys),
        crs=CRS,
    ).to_crs("EPSG:4326")


@pytest.fixture
def corner():
    return _points({"F1": xy(0, 0)})


@pytest.fixture
def demand():
    return _points(
        {
            "H1": xy(0, 1),  # 100 m: covered
            "H2": xy(3, 3),  # 600 m: uncovered
            "H3": (X0 + 1050, Y0),  # on the isolated piece: unreachable
            "H4": (X0 + 150, Y0 - 1000),  # 1 km from any road: too far
            "H5": (X0 + 150, Y0 + 20),  # 20 m access + 150 m: uncovered by 20 m
            "H6": (X0 + 50, Y0 + 10),  # 10 + 50 m: covered
        }
    )


def _pieces(segments: gpd.GeoDataFrame) -> dict[tuple[int, int], tuple[float, float]]:
    """Gap stretches as {(node a, node b): (metres from a, metres from a)} with a < b."""
    out = {}
    for row in segments.itertuples():
        lo, hi = row.start_fraction * 100, row.end_fraction * 100
        key = (row.u, row.v) if row.u < row.v else (row.v, row.u)
        span = (lo, hi) if row.u < row.v else (100 - hi, 100 - lo)
        assert key not in out
        out[key] = tuple(round(x, 6) for x in span)
    return out


def test_gap_segments_walk_corner_facility_150m(grid_net, corner, demand):
    placer = Placer(grid_net)
    coverage = measure_coverage(placer, corner, demand, profile="walk", thresholds=["150m"])
    gaps = find_gaps(coverage, demand, threshold="150m", placer=placer, facilities=corner)
    got = _pieces(gaps.gap_segments)
    half = {  # covered up to 50 m from the end whose cost is 100 m
        (node(0, 1), node(0, 2)): (50.0, 100.0),
        (node(0, 1), node(1, 1)): (50.0, 100.0),
        (node(1, 0), node(1, 1)): (50.0, 100.0),
        (node(1, 0), node(2, 0)): (50.0, 100.0),
    }
    for key, span in half.items():
        assert got.pop(key) == span
    # (0,0)-(0,1) and (0,0)-(1,0) are covered; the other 18 grid pieces and the isolated one are gaps
    assert (node(0, 0), node(0, 1)) not in got
    assert (node(0, 0), node(1, 0)) not in got
    assert len(got) == 19
    assert set(got.values()) == {(0.0, 100.0)}
    assert gaps.gap_segments["length_m"].sum() == pytest.approx(4 * 50 + 19 * 100)
    isolated = gaps.gap_segments[gaps.gap_segments["u"].isin([17, 18])]
    assert len(isolated) == 1
    assert not isolated["reachable"].iloc[0]
    assert isolated["cost_start_m"].isna().all()
    reachable = gaps.gap_segments[gaps.gap_segments["reachable"]]
    assert (reachable[["cost_start_m", "cost_end_m"]] >= 150 - 1e-9).all().all()
    half_row = gaps.gap_segments[(gaps.gap_segments["u"] == node(0, 1)) & (gaps.gap_segments["v"] == node(0, 2))]
    assert half_row[["cost_start_m", "cost_end_m"]].to_numpy().tolist() == [[pytest.approx(150), pytest.approx(200)]]
    assert gaps.gap_segments.crs == "EPSG:4326"
    projected = gaps.gap_segments.to_crs(CRS)
    assert projected.length.to_numpy() == pytest.approx(gaps.gap_segments["length_m"].to_numpy())


def test_gap_stretches_carry_the_street_name_and_class(corner):
    # the grid with piece (0,1)-(0,2) named 璧泉路 (both directions); walking from the corner, it is
    # 100..200 m away, so its stretch from 150 m on is a gap at 150 m
    G = make_grid()
    for u, v in ((node(0, 1), node(0, 2)), (node(0, 2), node(0, 1))):
        G.edges[u, v, 0]["name"] = "璧泉路"
    net = prepare_network(G, profiles=load_profiles())
    placer = Placer(net)
    facility_snap = placer.snap(corner, "walk")
    none = facility_snap.subset(np.zeros(1, dtype=bool))
    node_cost = nearest_facility(net, "walk", facility_snap, none, weight="length").node_cost
    segments = gap_segments(net, "walk", facility_snap, node_cost, threshold="150m")
    named = segments[segments["road_name"] != ""]
    assert named[["u", "v", "highway", "road_name"]].to_numpy().tolist() == [
        [node(0, 1), node(0, 2), "residential", "璧泉路"]
    ]
    assert named[["start_fraction", "end_fraction"]].to_numpy().tolist() == [[pytest.approx(0.5), 1.0]]
    assert set(segments["highway"]) == {"residential", "steps"}  # the steps (2,0)-(3,0): 200..300 m away


def test_one_way_piece_is_a_gap_even_next_to_a_covered_node(grid_net, corner):
    # driving, row 1 is one-way east: from anywhere on (1,0)->(1,1) the way is via (1,1), 200 m away
    placer = Placer(grid_net)
    facility_snap = placer.snap(corner, "drive")
    none = facility_snap.subset(np.zeros(1, dtype=bool))
    node_cost = nearest_facility(grid_net, "drive", facility_snap, none, weight="length").node_cost
    segments = gap_segments(grid_net, "drive", facility_snap, node_cost, threshold="150m")
    row = segments[(segments["u"] == node(1, 0)) & (segments["v"] == node(1, 1))]
    assert row[["start_fraction", "end_fraction", "cost_u_m", "cost_v_m"]].to_numpy().tolist() == [[0, 1, 100, 200]]
    assert row[["cost_start_m", "cost_end_m"]].to_numpy().tolist() == [[pytest.approx(300), pytest.approx(200)]]
    # the steps are not a road for driving
    assert not ((segments["u"] == node(2, 0)) & (segments["v"] == node(3, 0))).any()


def test_facility_on_a_piece_splits_its_gap(grid_net):
    facility = _points({"F": (X0 + 150, Y0)})  # middle of (0,1)-(0,2); both ends 50 m away
    placer = Placer(grid_net)
    snap = placer.snap(facility, "walk")
    node_cost = nearest_facility(
        grid_net, "walk", snap, snap.subset(np.zeros(1, dtype=bool)), weight="length"
    ).node_cost
    segments = gap_segments(grid_net, "walk", snap, node_cost, threshold="30m")
    rows = segments[(segments["u"] == node(0, 1)) & (segments["v"] == node(0, 2))].sort_values("start_fraction")
    assert rows[["start_fraction", "end_fraction"]].to_numpy() == pytest.approx(np.array([[0, 0.2], [0.8, 1]]))
    assert rows["cost_start_m"].to_numpy() == pytest.approx([50, 30])
    assert rows["cost_end_m"].to_numpy() == pytest.approx([30, 50])


def test_demand_split_into_uncovered_unreachable_too_far_and_hexagons(grid_net, corner, demand):
    placer = Placer(grid_net)
    coverage = measure_coverage(placer, corner, demand, profile="walk", thresholds=["150m"])
    gaps = find_gaps(coverage, demand, threshold="150m", hex_size_m=100, crs=CRS)
    assert gaps.gap_segments is None
    assert gaps.uncovered.index.tolist() == ["H2", "H5"]
    assert gaps.uncovered["cost_m"].to_numpy() == pytest.approx([600, 170])
    assert gaps.uncovered["excess_m"].to_numpy() == pytest.approx([450, 20])
    assert gaps.uncovered["facility_id_m"].tolist() == ["F1", "F1"]
    assert gaps.unreachable.index.tolist() == ["H3"]
    assert gaps.too_far_from_road.index.tolist() == ["H4"]
    assert gaps.too_far_from_road["snap_distance_m"].iloc[0] == pytest.approx(1000)
    assert "cost_m" not in gaps.too_far_from_road.columns
    for frame in (gaps.uncovered, gaps.unreachable, gaps.too_far_from_road):
        assert frame.crs == "EPSG:4326"
        assert "name" not in frame.columns
    hexes = gaps.hexagons
    assert hexes[["n_demand", "n_covered", "n_uncovered", "n_unreachable", "n_too_far_from_road"]].sum().tolist() == [
        6,
        2,
        2,
        1,
        1,
    ]
    projected = hexes.to_crs(CRS)
    assert projected.area.to_numpy() == pytest.approx(3 * np.sqrt(3) / 2 * 100**2)
    # each point lies in the hexagon it is counted in; points ≥ 200 m apart never share one
    for frame in (gaps.uncovered, gaps.unreachable, gaps.too_far_from_road):
        for point, hex_id in zip(frame.to_crs(CRS).geometry, frame["hex_id"], strict=True):
            assert projected.loc[hex_id].geometry.buffer(1e-3).contains(point)
    assert gaps.uncovered.loc["H2", "hex_id"] != gaps.uncovered.loc["H5", "hex_id"]
    gap_hex = hexes.loc[gaps.uncovered.loc["H2", "hex_id"]]
    assert gap_hex["gap_share"] == pytest.approx(1.0)


def test_find_gaps_refuses_a_threshold_the_coverage_did_not_measure(grid_net, corner, demand):
    coverage = measure_coverage(Placer(grid_net), corner, demand, profile="walk", thresholds=["150m"])
    with pytest.raises(ValueError, match="has no 'cost_s'"):
        find_gaps(coverage, demand, threshold="5min", crs=CRS)
    with pytest.raises(ValueError, match="`crs`"):
        find_gaps(coverage, demand, threshold="150m")
    with pytest.raises(ValueError, match="lacks 1 id"):
        find_gaps(coverage, demand.iloc[1:], threshold="150m", crs=CRS)
    with pytest.raises(ValueError, match="`hex_size_m` must be a positive"):
        find_gaps(coverage, demand, threshold="150m", crs=CRS, hex_size_m=0)
    with pytest.raises(ValueError, match="has 2 rows but the coverage measured 1"):
        find_gaps(coverage, demand, threshold="150m", placer=Placer(grid_net), facilities=demand.iloc[:2])


def test_gap_layers_write_to_geopackage(grid_net, corner, demand, tmp_path):
    placer = Placer(grid_net)
    coverage = measure_coverage(placer, corner, demand, profile="walk", thresholds=["150m"])
    gaps = find_gaps(coverage, demand, threshold="150m", placer=placer, facilities=corner)
    layers = gaps.layers()
    assert list(layers) == ["gap_uncovered", "gap_unreachable", "gap_too_far", "gap_segments", "gap_hexagons"]
    path = write_layer(layers["gap_uncovered"], tmp_path / "gaps.gpkg", layer_name="gap_uncovered")
    back = gpd.read_file(path, layer="gap_uncovered")
    assert back["demand_id"].tolist() == ["H2", "H5"]
    assert "index" not in layers["gap_segments"].columns
    assert layers["gap_hexagons"]["hex_id"].is_unique
    for name in ("gap_segments", "gap_hexagons"):
        layers[name].to_file(tmp_path / f"{name}.geojson", driver="GeoJSON", engine="pyogrio")
        assert len(gpd.read_file(tmp_path / f"{name}.geojson")) == len(layers[name])


def test_multi_service_report_on_the_grid(grid_net):
    toilets = _points({"T1": xy(0, 0)})
    rehab = _points({"R1": xy(3, 3)})
    households = _points(
        {
            "H1": xy(0, 1),  # toilet 100 m within; rehab 500 m = 360 s beyond
            "H2": xy(1, 1),  # toilet 200 m beyond (ratio 1.33); rehab 400 m = 288 s beyond (1.2)
            "H3": xy(2, 2),  # toilet 400 m beyond (2.67); rehab 200 m = 144 s within
            "H4": (X0 + 1050, Y0),  # isolated piece: both unreachable
            "H5": (X0 + 150, Y0 - 1000),  # too far from any road
        }
    )
    report = multi_service_report(
        Placer(grid_net),
        {"toilet": toilets, "rehab": rehab},
        households,
        profile="walk",
        thresholds={"toilet": "150m", "rehab": "4min"},
    )
    table = report.households
    # most failed services first, then the largest cost ÷ threshold (inf when not routed), then id
    assert table.index.tolist() == ["H4", "H5", "H2", "H3", "H1"]
    assert table.loc[["H1", "H2", "H3"], "toilet_cost_m"].tolist() == pytest.approx([100, 200, 400])
    assert table.loc[["H1", "H2", "H3"], "rehab_cost_s"].tolist() == pytest.approx([360, 288, 144])
    assert table["toilet_status"].to_dict() == {
        "H2": BEYOND,
        "H4": UNREACHABLE,
        "H5": TOO_FAR_FROM_ROAD,
        "H3": BEYOND,
        "H1": WITHIN,
    }
    assert table["n_failed"].tolist() == [2, 2, 2, 1, 1]
    assert table.loc["H1", "failed_services"] == "rehab"
    assert table.loc["H2", "failed_services"] == "toilet;rehab"
    assert table.loc["H1", "toilet_facility_id"] == "T1"
    assert pd.isna(table.loc["H4", "toilet_facility_id"])
    assert np.isnan(table.loc["H5", "toilet_cost_m"])
    assert table["too_far_from_road"].tolist() == [False, True, False, False, False]
    assert table.loc["H2", "max_cost_ratio"] == pytest.approx(200 / 150)
    assert set(table.columns) >= {"town_code", "village_code", "snap_distance_m"}
    assert "name" not in table.columns
    assert report.by_service.loc["toilet", [WITHIN, BEYOND, UNREACHABLE, TOO_FAR_FROM_ROAD]].tolist() == [1, 2, 1, 1]
    assert report.by_service.loc["rehab", "threshold"] == "4min"


def test_multi_service_report_needs_one_threshold_per_layer(grid_net):
    toilets = _points({"T1": xy(0, 0)})
    with pytest.raises(ValueError, match=r"layers without one: \['toilet'\]"):
        multi_service_report(
            Placer(grid_net), {"toilet": toilets}, toilets, profile="walk", thresholds={"rehab": "1km"}
        )


def _networkx_node_costs(net, profile, facility_snap):
    """Node → nearest-facility metres by networkx, on a graph rebuilt from the road pieces."""
    pg = net.profile(profile)
    G = nx.DiGraph()
    for p in np.flatnonzero(pg.piece_usable):
        u, v, c = int(net.piece_u[p]), int(net.piece_v[p]), float(net.piece_length_m[p])
        for a, b, ok in ((v, u, pg.piece_fwd[p]), (u, v, pg.piece_bwd[p])):  # reversed arcs: towards a facility
            if ok and a != b and c < G.get_edge_data(a, b, {"w": np.inf})["w"]:
                G.add_edge(a, b, w=c)
    sources = []
    for i in np.flatnonzero(~facility_snap.too_far):
        p, s, d = facility_snap.piece[i], facility_snap.fraction[i], facility_snap.distance_m[i]
        c = float(net.piece_length_m[p])
        f = ("facility", int(i))
        sources.append(f)
        G.add_node(f)
        if pg.piece_fwd[p]:
            G.add_edge(f, int(net.piece_u[p]), w=d + s * c)
        if pg.piece_bwd[p]:
            G.add_edge(f, int(net.piece_v[p]), w=d + (1 - s) * c)
    return nx.multi_source_dijkstra_path_length(G, sources, weight="w")


def test_bishan_households_vs_accepted_toilets_walk_300m(bishan_net, bishan_layer):
    households = bishan_layer("household")
    toilets = bishan_layer("accessible_toilet", status="accepted")
    placer = Placer(bishan_net)
    coverage = measure_coverage(placer, toilets, households, profile="walk", thresholds=["300m"])
    gaps = find_gaps(coverage, households, threshold="300m", placer=placer, facilities=toilets)

    n, summary = len(households), coverage.summary
    assert len(gaps.uncovered) == n - summary["covered_300m"]["covered"] - summary["unreachable"]
    assert len(gaps.too_far_from_road) == summary["too_far_from_road"]
    assert len(gaps.unreachable) + len(gaps.too_far_from_road) == summary["unreachable"]
    assert (gaps.uncovered["cost_m"] > 300).all()
    assert gaps.hexagons["n_uncovered"].sum() == len(gaps.uncovered)
    assert gaps.hexagons["n_demand"].sum() == n
    assert not set(gaps.uncovered.columns) & {"name", "address", "id_number", "phone", "certificate_number"}

    segments = gaps.gap_segments
    reachable = segments[segments["reachable"]]
    assert len(reachable) > 0
    assert (reachable[["cost_start_m", "cost_end_m"]].to_numpy() >= 300 - 1e-6).all()
    # node costs of a random sample of gap stretches, checked against networkx on the same roads
    facility_snap = placer.snap(toilets, "walk")
    expected = _networkx_node_costs(bishan_net, "walk", facility_snap)
    position = pd.Series(np.arange(bishan_net.n_nodes), index=bishan_net.node_id)
    sample = segments.iloc[np.random.default_rng(0).choice(len(segments), size=50, replace=False)]
    for row in sample.itertuples():
        for node_id, cost in ((row.u, row.cost_u_m), (row.v, row.cost_v_m)):
            want = expected.get(int(position[node_id]), np.nan)
            assert cost == pytest.approx(want, nan_ok=True, abs=1e-6)
        if row.start_fraction == 0 and row.end_fraction == 1:  # walking: every piece is two-way
            ends = np.array([row.cost_u_m, row.cost_v_m])
            assert (np.isnan(ends) | (ends >= 300 - 1e-6)).all()
