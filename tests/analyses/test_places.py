"""Place names: town · nearest village of that town · nearest named road within 200 m, derived by hand on a grid."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest

from analyses.places import PlaceNamer
from geo.prepared import prepare_network
from geo.profiles import load_profiles
from tests.geo.conftest import CRS, X0, Y0, make_grid, node, xy


@pytest.fixture
def profiles():
    return load_profiles()


@pytest.fixture
def namer(profiles):
    G = make_grid()
    for u, v, data in G.edges(data=True):
        if {u, v} <= {node(0, c) for c in range(4)}:
            data["name"] = "璧青路"  # row 0, y = Y0
        elif {u, v} <= {node(r, 3) for r in range(4)}:
            data["name"] = "东林大道; 东林路"  # column 3, x = X0 + 300 (a merged edge: the first name is used)
    net = prepare_network(G, profiles=profiles)
    towns = pd.DataFrame({"town_code": ["A", "B"], "name": ["青杠街道", "璧城街道"], "name_en": ["Qinggang", None]})
    villages = gpd.GeoDataFrame(
        {"town_code": ["A", "A", "B"], "name": ["白云村", "黄桷村", "青杠社区"]},
        geometry=gpd.points_from_xy(*zip(xy(0, 0), xy(3, 3), xy(0, 1), strict=True)), crs=CRS,
    )  # fmt: skip
    return PlaceNamer(net, towns=towns, villages=villages)


def _points(rows, town_codes):
    xs, ys = zip(*rows, strict=True)
    return gpd.GeoDataFrame({"town_code": town_codes}, geometry=gpd.points_from_xy(xs, ys), crs=CRS)


def test_town_village_of_the_same_town_and_the_road_beside(namer):
    points = _points([(X0 + 150, Y0 + 30), (X0 + 250, Y0 + 250), (X0 + 2000, Y0 + 2000)], ["A", "A", "B"])
    assert namer.names(points) == [
        # 30 m from 璧青路; 青杠社区 is nearer but in town B
        "青杠街道 · 白云村 · 璧青路旁",
        # 50 m from an unnamed row, 50 m from 东林大道 (x = 300): named; 黄桷村 at (3, 3) is nearest
        "青杠街道 · 黄桷村 · 东林大道旁",
        # no named road within 200 m; the only village of town B
        "璧城街道 · 青杠社区",
    ]
    assert namer.names(points, lang="en")[:2] == ["Qinggang · 白云村 · by 璧青路", "Qinggang · 黄桷村 · by 东林大道"]
    assert namer.names(points, lang="en")[2] == "璧城街道 · 青杠社区"  # no English name: the Chinese one


def test_unknown_parts_are_left_out_never_guessed(namer, profiles):
    points = _points([(X0 + 150, Y0 + 30)], ["Z"])  # a town the district does not have, no village of it
    assert namer.names(points) == ["璧青路旁"]
    bare = PlaceNamer(prepare_network(make_grid(), profiles=profiles), towns=pd.DataFrame(
        {"town_code": ["A"], "name": ["青杠街道"]}))  # fmt: skip
    assert bare.names(_points([(X0 + 150, Y0 + 30)], ["A"])) == ["青杠街道"]  # no villages, no road names
    with pytest.raises(ValueError, match="`lang`"):
        namer.names(points, lang="fr")
