from __future__ import annotations

import numpy as np

from geo.dem import read_dem
from layers.district import load_district
from synthetic.terrain import RIDGE_AT, VALLEY_M, generate_terrain, write_district_dem


def test_regenerating_gives_the_committed_bishan_dem(tmp_path):
    district = load_district()
    bounds = tuple(district.boundary.to_crs(district.crs).total_bounds)
    write_district_dem(bounds, str(tmp_path / "dem.tif"), crs=district.crs, seed=district.seed)
    assert (tmp_path / "dem.tif").read_bytes() == district.path("dem").read_bytes()


def test_two_ridges_and_a_valley_between():
    # a 20 km × 30 km box at 100 m: ridges at 10 % and 90 % of the width, valley floor near 300 m
    z, transform = generate_terrain((0.0, 0.0, 20_000.0, 30_000.0), seed=1)
    assert z.shape == (304, 204)  # two cells of margin all round
    assert transform.a == 100.0 and transform.e == -100.0
    col = {side: round((2 * 100.0 + share * 20_400.0 - 200.0) / 100.0) for side, share in RIDGE_AT.items()}
    middle = z.shape[1] // 2
    west, east, valley = z[:, col["west"]].mean(), z[:, col["east"]].mean(), z[:, middle].mean()
    assert abs(valley - VALLEY_M) < 30
    assert west > valley + 250 and east > valley + 250
    assert east > west  # 缙云山 is the higher ridge here
    again, _ = generate_terrain((0.0, 0.0, 20_000.0, 30_000.0), seed=1)
    other, _ = generate_terrain((0.0, 0.0, 20_000.0, 30_000.0), seed=2)
    np.testing.assert_array_equal(z, again)
    assert not np.array_equal(z, other)


def test_the_bishan_dem_covers_the_district_and_its_towns_lie_lower_than_the_ridges():
    district = load_district()
    dem = read_dem(district.path("dem"))
    towns = district.towns.to_crs(district.crs)
    z = dem.sample(towns.geometry.x.to_numpy(), towns.geometry.y.to_numpy(), district.crs)
    assert np.isfinite(z).all()
    assert np.nanmax(dem.values) > 800 and np.median(z) < 350
