"""Convert longitude/latitude between the WGS-84, GCJ-02 and BD-09 datums used in China.

WGS-84 is what GPS, OpenStreetMap and Tianditu use (and what we store). GCJ-02 is the legally
mandated offset datum of Amap/Gaode, Tencent and Google .cn; BD-09 is Baidu's second offset on top
of GCJ-02. Near Bishan GCJ-02 lies about 450-480 m from WGS-84 (DOMAIN.md §4).

The GCJ-02 forward transform is the public formula (Krasovsky ellipsoid, a = 6378245.0 m,
ee = 0.00669342162296594323, sine/polynomial series in (lon - 105, lat - 35)); BD-09 <-> GCJ-02 is
Baidu's published polar-coordinate formula. GCJ-02 -> WGS-84 has no closed form: it is solved here
by vectorised fixed-point iteration to 1e-9 degrees (about 0.1 mm), not by the common one-step
approximation, which is off by metres. All functions are pure and work on numpy arrays.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Literal, get_args, overload

import numpy as np

from geo.errors import DatumError

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy.typing as npt

    _Array = npt.NDArray[np.float64]
    _Step = Callable[[_Array, _Array], tuple[_Array, _Array]]

logger = logging.getLogger(__name__)

Datum = Literal["wgs84", "gcj02", "bd09"]
DATUMS: tuple[str, ...] = get_args(Datum)

# GCJ-02 public formula: Krasovsky 1940 ellipsoid.
_KRASOVSKY_A_M = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323

# "Out of China" bounding box used by the public ports (lon_min, lat_min, lon_max, lat_max), degrees.
_CHINA_BBOX_DEG = (72.004, 0.8293, 137.8347, 55.8271)

# BD-09 <-> GCJ-02 constants.
_X_PI = math.pi * 3000.0 / 180.0
_BD_DLON_DEG = 0.0065
_BD_DLAT_DEG = 0.006

# GCJ-02 -> WGS-84 fixed-point iteration w <- target - offset(w): a few float32 steps, then float64
# steps until the error bound L / (1 - L) * |step| of the new point is below the tolerance in both
# axes, or the cap is reached. L bounds how much the offset changes per degree moved (the map's
# contraction factor, max row sum of its Jacobian): measured <= 0.0074 over the box; 0.01 is safe.
_INVERSE_COARSE_ITER = 3
# Points converted per block: large arrays go through in blocks whose temporaries fit in cache.
_CHUNK = 1 << 15
_INVERSE_TOL_DEG = 1e-9
_INVERSE_MAX_ITER = 10
_INVERSE_CONTRACTION = 0.01
_INVERSE_MAX_STEP_DEG = _INVERSE_TOL_DEG * (1.0 - _INVERSE_CONTRACTION) / _INVERSE_CONTRACTION


@overload
def convert(lon: float, lat: float, src: Datum, dst: Datum) -> tuple[float, float]: ...


@overload
def convert(lon: npt.ArrayLike, lat: npt.ArrayLike, src: Datum, dst: Datum) -> tuple[_Array, _Array]: ...


def convert(
    lon: npt.ArrayLike, lat: npt.ArrayLike, src: Datum, dst: Datum
) -> tuple[float, float] | tuple[_Array, _Array]:
    """Convert longitude/latitude from datum `src` to datum `dst`.

    Parameters
    ----------
    lon, lat
        Longitude and latitude in degrees, as scalars or array-likes of the same (or broadcastable)
        shape. NaN marks a missing coordinate: a point with NaN in either coordinate comes out as
        (NaN, NaN), without an exception or warning, so the caller can report the row. Inputs are
        never modified.
    src, dst
        Datum names: ``"wgs84"``, ``"gcj02"`` or ``"bd09"``. Equal names return a copy unchanged.

    Returns
    -------
    tuple
        ``(lon, lat)`` in `dst`, in degrees: two floats if both inputs are scalars, otherwise two new
        float64 arrays of the broadcast shape.

    Raises
    ------
    DatumError
        If `src` or `dst` is not a supported datum name (a subclass of ``ValueError``).
    ValueError
        If `lon` and `lat` have shapes that do not broadcast.

    Notes
    -----
    Outside the usual "China" bounding box (lon 72.004-137.8347, lat 0.8293-55.8271) GCJ-02 equals
    WGS-84 and points pass through unchanged; the box is tested on the input point (WGS-84 going
    forward, GCJ-02 going back). The box is coarse: a rectangle that takes in parts of neighbouring
    countries and follows no border, so results near a border are unreliable. The BD-09 step is
    applied everywhere, as Baidu's formula is.

    GCJ-02 -> WGS-84 (also inside BD-09 -> WGS-84) iterates ``w <- target - offset(w)`` until the
    result is within 1e-9 degrees of the exact inverse (3 cheap float32 steps, then float64 steps:
    usually one, at most 10). BD-09 -> GCJ-02 adds one such correction to Baidu's closed form. Round trips
    in every direction return within about 2 mm (0.1 mm for WGS-84 <-> GCJ-02).

    Examples
    --------
    >>> lon, lat = convert(106.227, 29.591, "wgs84", "gcj02")
    >>> round(lon - 106.227, 5), round(lat - 29.591, 5)
    (0.00377, -0.0027)
    """
    src_name = _check_datum(src, "src")
    dst_name = _check_datum(dst, "dst")
    lon_arr, lat_arr = _as_float_arrays(lon, lat)
    shape = lon_arr.shape
    # Flat views of the inputs: every step returns new arrays and never writes to its inputs.
    out_lon, out_lat = lon_arr.reshape(-1), lat_arr.reshape(-1)
    steps = _STEPS.get((src_name, dst_name), ())
    if src_name == dst_name:
        out_lon, out_lat = out_lon.copy(), out_lat.copy()
    elif out_lon.size <= _CHUNK:
        for step in steps:
            out_lon, out_lat = step(out_lon, out_lat)
    else:
        out_lon, out_lat = _run_chunked(steps, out_lon, out_lat)
    missing = np.isnan(lon_arr.reshape(-1)) | np.isnan(lat_arr.reshape(-1))
    if missing.any():
        out_lon[missing] = np.nan
        out_lat[missing] = np.nan
    if np.ndim(lon) == 0 and np.ndim(lat) == 0:
        return float(out_lon[0]), float(out_lat[0])
    return out_lon.reshape(shape), out_lat.reshape(shape)


def _run_chunked(steps: tuple[_Step, ...], lon: _Array, lat: _Array) -> tuple[_Array, _Array]:
    """Run `steps` on blocks of `_CHUNK` points: the temporaries stay in cache and are reused."""
    out_lon, out_lat = np.empty_like(lon), np.empty_like(lat)
    for start in range(0, lon.size, _CHUNK):
        block = slice(start, start + _CHUNK)
        b_lon, b_lat = lon[block], lat[block]
        for step in steps:
            b_lon, b_lat = step(b_lon, b_lat)
        out_lon[block], out_lat[block] = b_lon, b_lat
    return out_lon, out_lat


def _check_datum(value: object, name: str) -> str:
    """Return `value` if it is a supported datum name, else raise `DatumError` naming `name`."""
    if isinstance(value, str) and value in DATUMS:
        return value
    hint = ""
    if isinstance(value, str):
        normalised = value.strip().lower().replace("-", "").replace("_", "")
        if normalised in DATUMS:
            hint = f" Did you mean {normalised!r}?"
    msg = f"`{name}` must be one of {list(DATUMS)!r}; got {value!r}.{hint}"
    raise DatumError(msg)


def _as_float_arrays(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[_Array, _Array]:
    """Return `lon` and `lat` as float64 arrays broadcast to one shape (may share memory)."""
    lon_arr = np.asarray(lon, dtype=np.float64)
    lat_arr = np.asarray(lat, dtype=np.float64)
    if lon_arr.shape != lat_arr.shape:
        try:
            lon_arr, lat_arr = np.broadcast_arrays(lon_arr, lat_arr)
        except ValueError:
            msg = f"`lon` and `lat` must have the same shape; got {lon_arr.shape!r} and {lat_arr.shape!r}."
            raise ValueError(msg) from None
    return lon_arr, lat_arr


def _in_china(lon: _Array, lat: _Array) -> npt.NDArray[np.bool_]:
    """Return True where the point lies inside the coarse China box (False for NaN)."""
    lon_min, lat_min, lon_max, lat_max = _CHINA_BBOX_DEG
    return (lon >= lon_min) & (lon <= lon_max) & (lat >= lat_min) & (lat <= lat_max)


def _gcj_offset(lon: _Array, lat: _Array) -> tuple[_Array, _Array]:
    """Return the GCJ-02 offset (dlon, dlat) in degrees at WGS-84 points (no box test).

    Computed in the dtype of the inputs: float64 for results, float32 for the coarse steps of the
    inverse (numpy's float32 sine is about 10x faster; the offset is then good to ~5e-8 degrees).
    """
    x = lon - 105.0
    y = lat - 35.0
    x_pi = x * math.pi
    y_pi = y * math.pi
    xy = x * y
    sqrt_abs_x = np.sqrt(np.abs(x))
    # sin(3u) = sin(u) * (3 - 4 sin(u)^2) saves three of the ten sines: 6x = 3 * 2x, x = 3 * x/3, y = 3 * y/3.
    s2x = np.sin(2.0 * x_pi)
    sx3 = np.sin(x_pi / 3.0)
    sy3 = np.sin(y_pi / 3.0)
    shared = 20.0 * s2x * (3.0 - 4.0 * s2x * s2x) + 20.0 * s2x

    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * xy + 0.2 * sqrt_abs_x) + (2.0 / 3.0) * (
        shared
        + 20.0 * sy3 * (3.0 - 4.0 * sy3 * sy3)
        + 40.0 * sy3
        + 160.0 * np.sin(y_pi / 12.0)
        + 320.0 * np.sin(y_pi / 30.0)
    )
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * xy + 0.1 * sqrt_abs_x) + (2.0 / 3.0) * (
        shared
        + 20.0 * sx3 * (3.0 - 4.0 * sx3 * sx3)
        + 40.0 * sx3
        + 150.0 * np.sin(x_pi / 12.0)
        + 300.0 * np.sin(x_pi / 30.0)
    )

    # Metres on the Krasovsky ellipsoid to degrees.
    sin2_lat = np.sin(np.radians(lat)) ** 2
    magic = 1.0 - _KRASOVSKY_EE * sin2_lat
    sqrt_magic = np.sqrt(magic)
    cos_lat = np.sqrt(1.0 - sin2_lat)  # |lat| < 90 inside the box, so cos(lat) > 0
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A_M * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A_M / sqrt_magic * cos_lat * math.pi)
    return dlon, dlat


def _apply_in_china(
    lon: _Array, lat: _Array, worker: Callable[[_Array, _Array], tuple[_Array, _Array]]
) -> tuple[_Array, _Array]:
    """Return new arrays with `worker` applied to in-box points; others (and NaN) are copied."""
    inside = _in_china(lon, lat)
    if inside.all():
        return worker(lon, lat)
    out_lon, out_lat = lon.copy(), lat.copy()
    if inside.any():
        out_lon[inside], out_lat[inside] = worker(lon[inside], lat[inside])
    return out_lon, out_lat


def _wgs_to_gcj_inside(lon: _Array, lat: _Array) -> tuple[_Array, _Array]:
    """Apply the GCJ-02 forward offset (points assumed inside the box)."""
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _gcj_to_wgs_inside(lon: _Array, lat: _Array) -> tuple[_Array, _Array]:
    """Invert the GCJ-02 offset by fixed-point iteration (points assumed inside the box).

    The WGS-84 point w solves w + offset(w) = target, so iterate w <- target - offset(w), a strong
    contraction (the offset changes by < 1 % of any move). Three float32 steps get within ~5e-8
    degrees cheaply; float64 steps then run, per point, until the new point is provably within
    1e-9 degrees of the solution (|error| <= L / (1 - L) * |step|); one step usually suffices.
    """
    target_lon, target_lat = lon, lat
    # Start from the target: the first step is the usual one-step approximation.
    w_lon, w_lat = target_lon, target_lat
    for _ in range(_INVERSE_COARSE_ITER):
        dlon, dlat = _gcj_offset(w_lon.astype(np.float32), w_lat.astype(np.float32))
        w_lon = target_lon - dlon
        w_lat = target_lat - dlat
    w_lon = np.array(w_lon, dtype=np.float64)  # new arrays, owned here
    w_lat = np.array(w_lat, dtype=np.float64)

    # Points still iterating: all of them (a slice, no copies) until the first one converges.
    active: slice | npt.NDArray[np.intp] = slice(None)
    for _ in range(_INVERSE_MAX_ITER):
        dlon, dlat = _gcj_offset(w_lon[active], w_lat[active])
        new_lon = target_lon[active] - dlon
        new_lat = target_lat[active] - dlat
        not_done = (np.abs(new_lon - w_lon[active]) >= _INVERSE_MAX_STEP_DEG) | (
            np.abs(new_lat - w_lat[active]) >= _INVERSE_MAX_STEP_DEG
        )
        w_lon[active] = new_lon
        w_lat[active] = new_lat
        if not not_done.any():
            break
        if not not_done.all():
            active = np.flatnonzero(not_done) if isinstance(active, slice) else active[not_done]
    else:
        logger.debug(
            "GCJ-02 inverse: %d of %d points moved more than %g deg in the last of %d iterations",
            np.count_nonzero(not_done),
            w_lon.size,
            _INVERSE_MAX_STEP_DEG,
            _INVERSE_MAX_ITER,
        )
    return w_lon, w_lat


def _wgs_to_gcj(lon: _Array, lat: _Array) -> tuple[_Array, _Array]:
    """WGS-84 -> GCJ-02; points outside the China box are unchanged."""
    return _apply_in_china(lon, lat, _wgs_to_gcj_inside)


def _gcj_to_wgs(lon: _Array, lat: _Array) -> tuple[_Array, _Array]:
    """GCJ-02 -> WGS-84 (iterative inverse); points outside the China box are unchanged."""
    return _apply_in_china(lon, lat, _gcj_to_wgs_inside)


def _gcj_to_bd(lon: _Array, lat: _Array) -> tuple[_Array, _Array]:
    """GCJ-02 -> BD-09 (Baidu's formula, applied everywhere)."""
    z = np.hypot(lon, lat) + 2e-5 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 3e-6 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + _BD_DLON_DEG, z * np.sin(theta) + _BD_DLAT_DEG


def _bd_to_gcj(lon: _Array, lat: _Array) -> tuple[_Array, _Array]:
    """BD-09 -> GCJ-02: Baidu's closed form plus one fixed-point correction (applied everywhere).

    The published closed form is not an exact inverse of `_gcj_to_bd` (up to 2e-6 degrees, about
    0.2 m, apart); one step g <- g - (bd(g) - target) brings that below 2e-8 degrees (2 mm).
    """
    x = lon - _BD_DLON_DEG
    y = lat - _BD_DLAT_DEG
    z = np.hypot(x, y) - 2e-5 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 3e-6 * np.cos(x * _X_PI)
    g_lon = z * np.cos(theta)
    g_lat = z * np.sin(theta)
    b_lon, b_lat = _gcj_to_bd(g_lon, g_lat)
    return g_lon - (b_lon - lon), g_lat - (b_lat - lat)


# Conversion path for each ordered pair of distinct datums.
_STEPS: dict[tuple[str, str], tuple[_Step, ...]] = {
    ("wgs84", "gcj02"): (_wgs_to_gcj,),
    ("gcj02", "wgs84"): (_gcj_to_wgs,),
    ("gcj02", "bd09"): (_gcj_to_bd,),
    ("bd09", "gcj02"): (_bd_to_gcj,),
    ("wgs84", "bd09"): (_wgs_to_gcj, _gcj_to_bd),
    ("bd09", "wgs84"): (_bd_to_gcj, _gcj_to_wgs),
}


def convert_geometries(geometries: npt.ArrayLike, src: Datum, dst: Datum) -> npt.NDArray[np.object_]:
    """Return shapely geometries (any type) with every vertex converted from `src` to `dst`.

    Vectorised over all vertices at once (``shapely.transform``); inputs are not modified.
    """
    import shapely

    def _convert_xy(coords: _Array) -> _Array:
        lon, lat = convert(coords[:, 0], coords[:, 1], src, dst)
        return np.column_stack([lon, lat])

    return shapely.transform(np.asarray(geometries, dtype=object), _convert_xy)
