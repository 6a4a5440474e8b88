"""Prepare a district's road network and place layers on it: the inputs of every network analysis."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np

from geo.dem import file_digest
from geo.osm import osm_format, read_roads
from geo.prepared import PreparedNetwork, load_or_prepare
from geo.profiles import DEFAULT_PROFILES_PATH, Profile, check_policy, load_profiles
from geo.snapping import DEFAULT_MAX_SNAP_M, SnapResult, build_edge_index, snap_points
from layers import schema

if TYPE_CHECKING:
    from layers.district import District

logger = logging.getLogger(__name__)

Weight = Literal["length", "travel_time"]
_THRESHOLD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|km|s|min|h)\s*$", re.IGNORECASE)
_TO_BASE = {"m": ("length", 1.0), "km": ("length", 1000.0), "s": ("travel_time", 1.0),
            "min": ("travel_time", 60.0), "h": ("travel_time", 3600.0)}  # fmt: skip


@dataclass(frozen=True)
class Threshold:
    """A coverage threshold: metres along the network, or seconds of travel.

    Parameters
    ----------
    value
        Metres when ``weight`` is ``"length"``, seconds when ``"travel_time"``.
    weight
        What is measured.
    label
        As the user wrote it, e.g. ``"800m"`` or ``"15min"``.
    """

    value: float
    weight: Weight
    label: str

    @property
    def unit(self) -> str:
        """``"m"`` or ``"s"``."""
        return "m" if self.weight == "length" else "s"


def parse_threshold(text: str | Threshold) -> Threshold:
    """Parse ``"800m"``, ``"1.5km"``, ``"90s"``, ``"15min"`` or ``"1h"`` into a ``Threshold``.

    Raises
    ------
    ValueError
        If ``text`` is not a positive number with one of the units m, km, s, min, h.
    """
    if isinstance(text, Threshold):
        return text
    match = _THRESHOLD.match(str(text))
    if not match or float(match.group(1)) <= 0:
        msg = f"`threshold` must be a positive number with a unit (m, km, s, min, h), e.g. '15min'; got {text!r}."
        raise ValueError(msg)
    weight, factor = _TO_BASE[match.group(2).lower()]
    return Threshold(float(match.group(1)) * factor, weight, str(text).strip())


def load_network(
    roads_path: str | Path,
    *,
    crs: str,
    cache_dir: str | Path,
    boundary: gpd.GeoDataFrame | None = None,
    profiles: dict[str, Profile] | None = None,
    dem: str | Path | None = None,
) -> PreparedNetwork:
    """Return the prepared network of a road file, built once and cached on disk.

    Parameters
    ----------
    roads_path
        OSM PBF (.osm.pbf), OSM XML (.osm, .osm.bz2) or osmnx GraphML file. OSM files are read
        with ``geo.osm.read_roads`` (pyosmium into arrays; extracts cut to a bounding box load, their
        ways split at the missing nodes); GraphML goes through osmnx (``geo.network.graph_from_file``).
    crs
        The district's projected CRS (metres).
    cache_dir
        Folder of prepared-network caches (keyed by the file's bytes, the profiles and ``crs``).
    boundary
        Clip the roads to this outline (EPSG:4326) when building.
    profiles
        Travel profiles; the shipped walk/wheelchair/drive table when None.
    dem
        GeoTIFF elevations for the profiles' slope models (``geo.dem``); None for flat costs.
    """
    profiles = load_profiles() if profiles is None else profiles
    outline = None if boundary is None else boundary.to_crs(schema.WGS84).union_all()

    def build(path: Path):  # noqa: ANN202 - RoadNetwork or networkx graph
        if osm_format(path) is not None:
            return read_roads(path, boundary=outline)
        from geo.network import graph_from_file  # osmnx: only GraphML needs it

        return graph_from_file(path, boundary=outline)

    return load_or_prepare(roads_path, crs, profiles, cache_dir, build_graph=build, dem_path=dem)


@dataclass(frozen=True)
class CostSettings:
    """How a run's travel costs are made: which profile table, unknown-value policy and slopes.

    Parameters
    ----------
    profiles_path
        A TOML file laid over ``geo/profiles.toml`` key by key (``--profiles FILE``,
        ``PROFILES_FILE``); None for the shipped table.
    unknown
        ``"strict"`` or ``"lenient"`` for every attribute of every profile with access rules
        (``--unknown``, ``UNKNOWN_POLICY``); None keeps the table's policy per attribute.
    slopes
        Use the district's DEM (``dem`` in district.toml) for directed, slope-aware speeds; False
        (``--flat``, ``SLOPES = False``) for flat costs.
    """

    profiles_path: str | None = None
    unknown: str | None = None
    slopes: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CostSettings:
        """Read ``PROFILES_FILE``, ``UNKNOWN_POLICY`` and ``SLOPES`` of an app config (absent: defaults)."""
        slopes = config.get("SLOPES", True)
        if isinstance(slopes, str):
            slopes = slopes.strip().lower() not in ("0", "false", "no", "off", "")
        return cls(config.get("PROFILES_FILE") or None, config.get("UNKNOWN_POLICY") or None, bool(slopes))

    def profiles(self) -> dict[str, Profile]:
        """Return the profile table these settings give.

        Raises
        ------
        geo.errors.ProfileError
            If the file or the policy is invalid (the message, Chinese first, names the fix).
        """
        profiles = load_profiles(self.profiles_path, merge=True)
        if self.unknown is not None:
            check_policy(self.unknown)
            profiles = {
                name: p if p.access is None else p.with_unknown_policy(self.unknown) for name, p in profiles.items()
            }
        return profiles

    def version(self, district: District) -> dict[str, Any]:
        """Return what a result records of its costs: profile file, unknown policy per profile, DEM."""
        dem = district_dem_path(district) if self.slopes else None
        policy = {name: dict(p.access.unknown) for name, p in self.profiles().items() if p.access is not None}
        return {
            "profiles": self.profiles_path or "geo/profiles.toml",
            "profiles_sha256": file_digest(self.profiles_path or DEFAULT_PROFILES_PATH),
            "unknown_policy": policy,
            "slopes": dem is not None,
            "dem": None if dem is None else str(dem),
            "dem_sha256": None if dem is None else file_digest(dem),
        }


def load_district_network(
    district: District,
    *,
    cache_dir: str | Path,
    roads_path: str | Path | None = None,
    settings: CostSettings | None = None,
) -> PreparedNetwork:
    """Return the prepared network of ``district`` (its own roads unless ``roads_path`` is given).

    ``settings`` (default: the shipped profiles, slopes on) choose the profile table, the policy for
    unknown accessibility values and whether the district's DEM (``dem`` under ``[files]`` of
    district.toml, when listed) sets walking and wheelchair speeds per direction.
    """
    settings = CostSettings() if settings is None else settings
    return load_network(
        roads_path if roads_path is not None else district.roads_path,
        crs=district.crs,
        cache_dir=cache_dir,
        boundary=district.boundary,
        profiles=settings.profiles(),
        dem=district_dem_path(district) if settings.slopes else None,
    )


def district_dem_path(district: District) -> Path | None:
    """Return the district's DEM file (``dem`` under ``[files]``), or None where it lists none."""
    return district.path("dem") if "dem" in district.files else None


class Placer:
    """Snap layers onto one prepared network, reusing one spatial index per profile.

    Parameters
    ----------
    net
        The prepared network.
    max_snap_m
        Points farther than this from a usable road are flagged ``too_far`` (not routed).
    """

    def __init__(self, net: PreparedNetwork, *, max_snap_m: float = DEFAULT_MAX_SNAP_M) -> None:
        self.net = net
        self.max_snap_m = max_snap_m
        self._indexes: dict[str, object] = {}

    def snap(self, points: gpd.GeoDataFrame, profile: str, *, id_column: str = schema.ID) -> SnapResult:
        """Snap ``points`` (any CRS; reprojected to the network's) for ``profile``, labelled by ``id_column``."""
        if points.crs is None:
            msg = "`points` has no CRS; set it (WGS-84 is EPSG:4326) before snapping."
            raise ValueError(msg)
        projected = points.to_crs(self.net.crs)
        if profile not in self._indexes:
            self._indexes[profile] = build_edge_index(self.net, profile)
        return snap_points(
            self.net,
            projected.geometry.x.to_numpy(),
            projected.geometry.y.to_numpy(),
            profile=profile,
            ids=np.asarray(points[id_column].astype(str)),
            crs=self.net.crs,
            max_snap_m=self.max_snap_m,
            index=self._indexes[profile],
        )
