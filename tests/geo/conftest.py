"""Tiny road grids built in code for the geo tests (projected CRS, metres)."""

from __future__ import annotations

import networkx as nx
import pytest
from shapely.geometry import LineString

from geo.prepared import prepare_network
from geo.profiles import load_profiles

CRS = "EPSG:32648"
X0, Y0 = 500_000.0, 3_300_000.0
STEP = 100.0


def node(r: int, c: int) -> int:
    """OSM-like id of grid node at row ``r`` (south to north) and column ``c`` (west to east)."""
    return 1 + 4 * r + c


def xy(r: float, c: float) -> tuple[float, float]:
    return X0 + STEP * c, Y0 + STEP * r


def _add(G, u, v, highway, *, oneway=False, geometry=None):
    length = geometry.length if geometry is not None else STEP
    attrs = {"highway": highway, "length": length, "oneway": oneway, "osmid": len(G.edges)}
    if geometry is not None:
        attrs["geometry"] = geometry
    G.add_edge(u, v, reversed=False, **attrs)
    if not oneway:
        if geometry is not None:
            attrs["geometry"] = LineString(list(geometry.coords)[::-1])
        G.add_edge(v, u, reversed=True, **attrs)


def make_grid() -> nx.MultiDiGraph:
    """Build the 4×4 grid, 100 m apart, all ``residential`` and two-way, except:

    - row 1 (y = Y0 + 100) is one-way eastbound;
    - the piece (2, 0)–(3, 0) is ``steps`` (walk only);
    - an isolated residential piece 17–18 from (501000, Y0) to (501100, Y0).
    """
    G = nx.MultiDiGraph(crs=CRS)
    for r in range(4):
        for c in range(4):
            x, y = xy(r, c)
            G.add_node(node(r, c), x=x, y=y)
    for r in range(4):
        for c in range(3):
            _add(G, node(r, c), node(r, c + 1), "residential", oneway=(r == 1))
    for r in range(3):
        for c in range(4):
            _add(G, node(r, c), node(r + 1, c), "steps" if (r, c) == (2, 0) else "residential")
    G.add_node(17, x=X0 + 1000, y=Y0)
    G.add_node(18, x=X0 + 1100, y=Y0)
    _add(G, 17, 18, "residential")
    return G


@pytest.fixture
def profiles():
    return load_profiles()


@pytest.fixture
def grid_graph():
    return make_grid()


@pytest.fixture
def grid_net(grid_graph, profiles):
    return prepare_network(grid_graph, profiles=profiles)
