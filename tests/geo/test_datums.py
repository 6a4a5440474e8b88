"""Tests for geo.datums: WGS-84 / GCJ-02 / BD-09 conversion."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from geo.datums import DATUMS, convert
from geo.errors import DatumError

EARTH_RADIUS_M = 6_371_008.8
BISHAN_WGS84 = (106.227, 29.591)  # district centre, DOMAIN.md §8 (Wikipedia)
PAIRS = list(itertools.permutations(DATUMS, 2))


def haversine_m(lon1, lat1, lon2, lat2):
    """Great-circle distance in metres (numpy, element-wise)."""
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi2 - phi1
    dlam = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


def gcj_offset_by_hand(lon, lat):
    """The public GCJ-02 formula for one point, written out with `math` (DOMAIN.md §4)."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    common = (20 * math.sin(6 * x * math.pi) + 20 * math.sin(2 * x * math.pi)) * 2 / 3
    dlat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x)) + common
    dlat += (20 * math.sin(y * math.pi) + 40 * math.sin(y / 3 * math.pi)) * 2 / 3
    dlat += (160 * math.sin(y / 12 * math.pi) + 320 * math.sin(y * math.pi / 30)) * 2 / 3
    dlon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x)) + common
    dlon += (20 * math.sin(x * math.pi) + 40 * math.sin(x / 3 * math.pi)) * 2 / 3
    dlon += (150 * math.sin(x / 12 * math.pi) + 300 * math.sin(x / 30 * math.pi)) * 2 / 3
    rad = lat / 180 * math.pi
    magic = 1 - ee * math.sin(rad) ** 2
    dlat = dlat * 180 / ((a * (1 - ee)) / (magic * math.sqrt(magic)) * math.pi)
    dlon = dlon * 180 / (a / math.sqrt(magic) * math.cos(rad) * math.pi)
    return dlon, dlat


@pytest.fixture(scope="module")
def china_grid():
    """Every 0.25 degree over mainland China's extent, plus the meridian lon = 105 (x = 0)."""
    lon, lat = np.meshgrid(np.arange(73.0, 135.01, 0.25), np.arange(18.0, 53.51, 0.25))
    lon = np.concatenate([lon.ravel(), np.full(8, 105.0)])
    lat = np.concatenate([lat.ravel(), np.linspace(20.0, 50.0, 8)])
    return lon, lat


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "dst", "max_error_m"),
    [
        ("wgs84", "gcj02", 1e-4),  # measured ~7e-6 m
        ("gcj02", "wgs84", 1e-4),  # measured ~3e-5 m (the inverse stops within 1e-9 deg)
        ("wgs84", "bd09", 0.005),  # measured ~1.6 mm (one correction step on Baidu's closed form)
        ("bd09", "wgs84", 0.005),
        ("gcj02", "bd09", 0.005),
        ("bd09", "gcj02", 0.005),
    ],
)
def test_round_trip_error_over_china(china_grid, src, dst, max_error_m):
    lon, lat = china_grid
    back = convert(*convert(lon, lat, src, dst), dst, src)
    error_m = haversine_m(lon, lat, *back)
    assert error_m.max() < max_error_m  # the requirement is < 0.5 m


def test_inverse_meets_its_tolerance(china_grid):
    # GCJ-02 -> WGS-84 solves gcj(w) = target; the forward of the answer must hit the target.
    lon, lat = china_grid
    w_lon, w_lat = convert(lon, lat, "gcj02", "wgs84")
    g_lon, g_lat = convert(w_lon, w_lat, "wgs84", "gcj02")
    assert np.abs(g_lon - lon).max() < 1e-9
    assert np.abs(g_lat - lat).max() < 1e-9


def test_one_step_approximation_fails_where_iteration_does_not(china_grid):
    # One-step inverse: w = g - offset(g), with offset(g) = gcj(g) - g (g read as WGS-84).
    lon, lat = china_grid
    g_lon, g_lat = convert(lon, lat, "wgs84", "gcj02")
    f_lon, f_lat = convert(g_lon, g_lat, "wgs84", "gcj02")
    one_step_m = haversine_m(lon, lat, 2 * g_lon - f_lon, 2 * g_lat - f_lat)
    iterative_m = haversine_m(lon, lat, *convert(g_lon, g_lat, "gcj02", "wgs84"))
    assert one_step_m.max() > 4.0  # DOMAIN.md: "up to ~4-5 m"; far above the 0.5 m bound
    worst = one_step_m.argmax()
    assert iterative_m[worst] < 1e-4
    assert (iterative_m <= one_step_m + 1e-6).all()


# --- reference values --------------------------------------------------------------------------


def test_forward_offset_near_bishan_matches_hand_computation():
    lon, lat = BISHAN_WGS84
    dlon, dlat = gcj_offset_by_hand(lon, lat)
    g_lon, g_lat = convert(lon, lat, "wgs84", "gcj02")
    assert g_lon == pytest.approx(lon + dlon, abs=1e-12)
    assert g_lat == pytest.approx(lat + dlat, abs=1e-12)
    # PROVENANCE.md: near Bishan about +0.00377 deg lon, -0.00270 deg lat, roughly 450-480 m.
    assert g_lon - lon == pytest.approx(0.00377, abs=1e-5)
    assert g_lat - lat == pytest.approx(-0.00270, abs=1e-5)
    assert 450 < haversine_m(lon, lat, g_lon, g_lat) < 480


def test_forward_matches_hand_computation_on_random_points():
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(73, 135, 50), rng.uniform(18, 53, 50)
    g_lon, g_lat = convert(lon, lat, "wgs84", "gcj02")
    by_hand = np.array([gcj_offset_by_hand(x, y) for x, y in zip(lon, lat, strict=True)])
    np.testing.assert_allclose(g_lon - lon, by_hand[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(g_lat - lat, by_hand[:, 1], rtol=0, atol=1e-12)


# Test data from googollee/eviltransform (go/transform_test.go, python/test.py): WGS-84 and GCJ-02
# of three city points (lon, lat). Their tests allow 1e-6 deg forward and 0.5 m for the exact inverse.
EVILTRANSFORM = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing
]


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM)
def test_published_eviltransform_vectors(wgs, gcj):
    g_lon, g_lat = convert(*wgs, "wgs84", "gcj02")
    assert g_lon == pytest.approx(gcj[0], abs=1e-6)
    assert g_lat == pytest.approx(gcj[1], abs=1e-6)
    assert haversine_m(*wgs, *convert(*gcj, "gcj02", "wgs84")) < 0.001


# Test data from wandergis/coordtransform README.md ("result" block), all for input (116.404, 39.915).
COORDTRANSFORM_IN = (116.404, 39.915)


def test_published_coordtransform_forward_vectors():
    assert convert(*COORDTRANSFORM_IN, "wgs84", "gcj02") == pytest.approx(
        (116.41024449916938, 39.91640428150164), abs=1e-9
    )
    assert convert(*COORDTRANSFORM_IN, "gcj02", "bd09") == pytest.approx(
        (116.41036949371029, 39.92133699351021), abs=1e-9
    )


def test_published_coordtransform_bd09_closed_form_is_within_its_known_error():
    # coordtransform uses Baidu's closed form only; we add one correction step, which moves the
    # answer by up to ~2e-6 deg (0.2 m) towards the exact inverse of the forward formula.
    published = (116.39762729119315, 39.90865673957631)
    g_lon, g_lat = convert(*COORDTRANSFORM_IN, "bd09", "gcj02")
    assert haversine_m(g_lon, g_lat, *published) < 0.1
    b_lon, b_lat = convert(g_lon, g_lat, "gcj02", "bd09")
    b_pub = convert(*published, "gcj02", "bd09")
    assert haversine_m(*COORDTRANSFORM_IN, b_lon, b_lat) < haversine_m(*COORDTRANSFORM_IN, *b_pub)


def test_published_coordtransform_one_step_inverse_is_reproduced_and_beaten():
    published_one_step = (116.39775550083061, 39.91359571849836)
    lon, lat = COORDTRANSFORM_IN
    dlon, dlat = gcj_offset_by_hand(lon, lat)
    assert (lon - dlon, lat - dlat) == pytest.approx(published_one_step, abs=1e-9)
    # Mapping each answer forward: ours lands on the input, the one-step answer does not.
    exact = convert(lon, lat, "gcj02", "wgs84")
    assert haversine_m(lon, lat, *convert(*exact, "wgs84", "gcj02")) < 1e-4
    assert haversine_m(lon, lat, *convert(*published_one_step, "wgs84", "gcj02")) > 0.05


# --- outside China -----------------------------------------------------------------------------

OUTSIDE = [
    (0.0, 0.0),
    (-122.42, 37.77),  # San Francisco
    (139.69, 35.69),  # Tokyo: east of the box's 137.8347
    (72.0, 30.0),  # just west of 72.004
    (100.0, 0.8),  # just south of 0.8293
    (100.0, 55.9),  # just north of 55.8271
]


@pytest.mark.parametrize(("src", "dst"), [("wgs84", "gcj02"), ("gcj02", "wgs84")])
@pytest.mark.parametrize("point", OUTSIDE)
def test_outside_china_gcj02_equals_wgs84(point, src, dst):
    assert convert(*point, src, dst) == point


def test_outside_china_bd09_is_gcj02_step_only():
    lon = np.array([p[0] for p in OUTSIDE])
    lat = np.array([p[1] for p in OUTSIDE])
    via_wgs = convert(lon, lat, "wgs84", "bd09")
    via_gcj = convert(lon, lat, "gcj02", "bd09")
    np.testing.assert_array_equal(via_wgs[0], via_gcj[0])
    np.testing.assert_array_equal(via_wgs[1], via_gcj[1])


def test_box_edges_are_inside():
    # The box is closed: a point exactly on its corner is shifted.
    g_lon, g_lat = convert(72.004, 0.8293, "wgs84", "gcj02")
    assert (g_lon, g_lat) != (72.004, 0.8293)


# --- shapes, inputs, NaN -----------------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_scalar_in_scalar_out(src, dst):
    lon, lat = convert(*BISHAN_WGS84, src, dst)
    assert type(lon) is float and type(lat) is float
    arr_lon, arr_lat = convert(np.array([BISHAN_WGS84[0]]), np.array([BISHAN_WGS84[1]]), src, dst)
    assert (arr_lon[0], arr_lat[0]) == (lon, lat)


@pytest.mark.parametrize(("src", "dst"), [*PAIRS, ("gcj02", "gcj02")])
def test_arrays_keep_shape_and_inputs_are_untouched(src, dst):
    lon = np.array([[106.2, 106.3, 106.4], [121.5, 116.4, 113.9]])
    lat = np.array([[29.5, 29.6, 29.7], [31.2, 39.9, 22.5]])
    lon_before, lat_before = lon.copy(), lat.copy()
    out_lon, out_lat = convert(lon, lat, src, dst)
    assert out_lon.shape == lon.shape and out_lat.shape == lat.shape
    assert out_lon.dtype == np.float64
    np.testing.assert_array_equal(lon, lon_before)
    np.testing.assert_array_equal(lat, lat_before)
    assert not np.shares_memory(out_lon, lon) and not np.shares_memory(out_lat, lat)


def test_lists_and_ints_are_accepted_and_broadcast():
    out_lon, out_lat = convert([106, 107], 29.5, "wgs84", "gcj02")
    assert out_lon.shape == (2,) and out_lat.shape == (2,)
    assert out_lat[0] == convert(106.0, 29.5, "wgs84", "gcj02")[1]


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_empty_arrays_give_empty_arrays(src, dst):
    out_lon, out_lat = convert(np.array([]), np.array([]), src, dst)
    assert out_lon.shape == (0,) and out_lat.shape == (0,)


def test_shapes_that_do_not_broadcast_are_refused():
    with pytest.raises(ValueError, match=r"`lon` and `lat` must have the same shape; got \(3,\) and \(2,\)"):
        convert(np.zeros(3), np.zeros(2), "wgs84", "gcj02")


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_nan_in_nan_out(src, dst):
    lon = np.array([106.2, np.nan, 106.4, np.nan])
    lat = np.array([29.5, 29.6, np.nan, np.nan])
    out_lon, out_lat = convert(lon, lat, src, dst)
    assert np.isnan(out_lon[1:]).all() and np.isnan(out_lat[1:]).all()
    assert (out_lon[0], out_lat[0]) == convert(106.2, 29.5, src, dst)
    nan_lon, nan_lat = convert(np.nan, np.nan, src, dst)
    assert math.isnan(nan_lon) and math.isnan(nan_lat)


# --- bad datum names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("WGS84", r"got 'WGS84'\. Did you mean 'wgs84'\?"),
        ("gcj-02", r"got 'gcj-02'\. Did you mean 'gcj02'\?"),
        ("EPSG:4326", r"got 'EPSG:4326'\.$"),
        (None, r"got None\."),
        (4326, r"got 4326\."),
    ],
)
@pytest.mark.parametrize("argument", ["src", "dst"])
def test_unknown_datum_names_are_refused(argument, value, pattern):
    kwargs = {"src": "wgs84", "dst": "gcj02", argument: value}
    expected = rf"`{argument}` must be one of \['wgs84', 'gcj02', 'bd09'\]; {pattern}"
    with pytest.raises(DatumError, match=expected):
        convert(106.2, 29.5, **kwargs)
    assert issubclass(DatumError, ValueError)
