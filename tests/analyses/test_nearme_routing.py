"""Near me (analyses.nearme): nearest in-service facility per layer, by hand on a grid and by networkx on Bishan."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from analyses.costs import Placer
from analyses.nearme import NearMeIndex, OffNetworkError
from geo.prepared import prepare_network
from geo.profiles import load_profiles
from geo.routing import point_ends
from layers import schema
from tests.geo.conftest import CRS, make_grid, xy


def _points(rows, crs=CRS):
    """rows: (id, status, (x, y))."""
    df = pd.DataFrame(
        {schema.ID: [r[0] for r in rows], schema.NAME: [r[0] for r in rows], schema.STATUS: [r[1] for r in rows]}
    )
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy([r[2][0] for r in rows], [r[2][1] for r in rows]), crs=crs)


@pytest.fixture
def grid_index():
    net = prepare_network(make_grid(), profiles=load_profiles())
    facilities = {
        # r0 is 10 m from the origin but closed: never answered
        schema.REHAB_STATION: _points(
            [("r0", "closed", xy(3, 0.6)), ("r1", "open", xy(2, 0)), ("r2", "open", xy(0, 3))]
        ),
        schema.SERVICE_CENTRE: _points([("c1", "open", xy(0, 0))]),
        schema.ACCESSIBLE_TOILET: _points([("t1", "planned", xy(3, 1))]),  # not in service
    }
    return NearMeIndex(Placer(net), facilities)


def test_nearest_per_layer_by_hand_on_the_grid(grid_index):
    # origin mid-way along (3,0)-(3,1). Walk: 50 m to (3,0), down the steps 100 m to (2,0) = 150 m at 5 km/h.
    found = grid_index.query(*xy(3, 0.5))
    walk = found["walk"][schema.REHAB_STATION]
    assert (walk.facility_id, walk.distance_m) == ("r1", pytest.approx(150.0))
    assert walk.time_s == pytest.approx(150 / (5 / 3.6))
    # service centre (0,0): 50 + 100 (steps) + 100 + 100 = 350 m
    assert found["walk"][schema.SERVICE_CENTRE].distance_m == pytest.approx(350.0)
    # no toilet in service; no sports layer at all
    assert found["walk"][schema.ACCESSIBLE_TOILET] is None
    assert found["walk"][schema.SPORTS_SITE] is None


def test_wheelchair_avoids_the_steps(grid_index):
    # wheelchair may not use the steps (2,0)-(3,0): 50 m east to (3,1), 100 m south, 100 m west = 250 m at 3 km/h
    found = grid_index.query(*xy(3, 0.5))
    chair = found["wheelchair"][schema.REHAB_STATION]
    assert (chair.facility_id, chair.distance_m) == ("r1", pytest.approx(250.0))
    assert chair.time_s == pytest.approx(250 / (3 / 3.6))
    route = [tuple(np.round(p, 6)) for p in chair.route]
    assert route[0] == xy(3, 0.5) and route[-1] == xy(2, 0)
    assert xy(3, 1) in route and xy(2, 1) in route and xy(3, 0) not in route
    assert np.hypot(*np.diff(chair.route, axis=0).T).sum() == pytest.approx(250.0)
    # walking takes the steps: its route passes (3,0)
    assert xy(3, 0) in [tuple(np.round(p, 6)) for p in found["walk"][schema.REHAB_STATION].route]


def test_an_origin_off_the_network_is_refused(grid_index):
    with pytest.raises(OffNetworkError):
        grid_index.query(xy(3, 0)[0] - 5000, xy(3, 0)[1])


def _demo_facilities(district):
    out = {}
    for layer in schema.PUBLIC_LAYERS:
        df = pd.read_csv(district.demo_dir / f"{layer}.csv", dtype={schema.ID: str})
        out[layer] = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs=schema.WGS84)
    return out


@pytest.mark.parametrize("profile", ["walk", "wheelchair"])
def test_distances_equal_networkx_on_bishan(bishan, bishan_net, profile):
    placer = Placer(bishan_net)
    index = NearMeIndex(placer, _demo_facilities(bishan))
    pg = bishan_net.profile(profile)
    G = nx.DiGraph()
    n = bishan_net.n_nodes
    for u in range(n):
        for k in range(pg.indptr[u], pg.indptr[u + 1]):
            G.add_edge(u, int(pg.indices[k]), w=float(pg.length_m[k]))
    villages = bishan.villages.to_crs(bishan_net.crs).iloc[[0, 60, 150]]
    for point in villages.geometry:
        found = index.query(point.x, point.y)[profile]
        origin = gpd.GeoDataFrame({schema.ID: ["o"]}, geometry=[point], crs=bishan_net.crs)
        o = point_ends(bishan_net, pg, placer.snap(origin, profile), "length", None, np.ones(1, bool))
        H = G.copy()
        H.add_edge("o", int(o.a[0]), w=float(o.to_a[0])) if np.isfinite(o.to_a[0]) else None
        H.add_edge("o", int(o.b[0]), w=float(o.to_b[0])) if np.isfinite(o.to_b[0]) else None
        dist = nx.single_source_dijkstra_path_length(H, "o", weight="w")
        for layer, lay in index.layers[profile].items():
            f = lay.length
            costs = [
                min(dist.get(int(f.a[j]), np.inf) + f.from_a[j], dist.get(int(f.b[j]), np.inf) + f.from_b[j])
                for j in range(len(f.a))
            ]
            best = float(np.min(costs))
            assert found[layer] is not None
            assert found[layer].distance_m == pytest.approx(best, abs=1.0)
            assert costs[list(lay.ids).index(found[layer].facility_id)] == pytest.approx(best, abs=1.0)
