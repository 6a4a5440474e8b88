"""Fixtures shared by the analysis tests: the 4×4 grid network and the embedded Bishan data.

- ``grid_net``: ``tests.geo.conftest.make_grid`` prepared for every shipped profile (EPSG:32648).
- ``bishan`` and ``bishan_net`` (the embedded district and its prepared roads): ``tests/conftest.py``.
- ``bishan_layer``: ``bishan_layer("household", status=None)`` → the demo layer validated through
  ``layers.validate`` (GCJ-02 rows converted), as a GeoDataFrame in EPSG:4326; cached per session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import geopandas as gpd
import pytest

from geo.prepared import PreparedNetwork, prepare_network
from geo.profiles import load_profiles
from layers import schema
from layers.io import read_table
from layers.validate import validate_layer
from tests.geo.conftest import make_grid


@pytest.fixture(scope="session")
def grid_net() -> PreparedNetwork:
    """The 4×4 grid (100 m apart, row 1 one-way east, steps (2,0)–(3,0), isolated piece 17–18)."""
    return prepare_network(make_grid(), profiles=load_profiles())


@pytest.fixture(scope="session")
def bishan_layer(bishan) -> Callable[..., gpd.GeoDataFrame]:
    cache: dict[str, gpd.GeoDataFrame] = {}

    def load(layer: str, *, status: str | Sequence[str] | None = None) -> gpd.GeoDataFrame:
        if layer not in cache:
            result = validate_layer(layer, read_table(bishan.demo_dir / f"{layer}.csv"), district=bishan)
            result.raise_for_problems()
            frame = result.frame.reset_index(drop=True)
            cache[layer] = gpd.GeoDataFrame(
                frame, geometry=gpd.points_from_xy(frame[schema.LON], frame[schema.LAT]), crs="EPSG:4326"
            )
        gdf = cache[layer]
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            gdf = gdf[gdf[schema.STATUS].isin(wanted)].reset_index(drop=True)
        return gdf.copy()

    return load
