"""Name a point the way people in the district would: town · village or community · the road beside it.

A planner reads "青杠街道 · 白云村 · 璧青路旁", not ``C-500120100-17947``. The town comes from the
point's own ``town_code`` (or the town area it falls in), the village from the nearest village or
community point of that town, and the road from the nearest road piece with an OSM ``name`` within
`ROAD_NEAR_M`; a part that is unknown is left out, never guessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import schema

if TYPE_CHECKING:
    from geo.prepared import PreparedNetwork
    from layers.district import District

#: A road farther than this from the point is not named as the road it stands beside (metres).
ROAD_NEAR_M = 200.0
#: Between the parts of a place name.
SEPARATOR = " · "
#: How the road part reads, by language.
BESIDE = {"zh": "{road}旁", "en": "by {road}"}


class PlaceNamer:
    """Name points by town, nearest village of that town and nearest named road.

    Parameters
    ----------
    net
        The prepared road network (its ``piece_name`` and polylines give the roads).
    towns
        ``town_code``, ``name`` and optionally ``name_en`` per town (``District.towns``).
    villages
        Village/community points (any CRS) with ``town_code`` and ``name``; None or empty when the
        district has no village table.
    town_areas
        Town polygons with ``town_code``, to place points that carry no town code; None when unknown.
    road_within_m
        Largest distance to a named road.
    """

    def __init__(
        self,
        net: PreparedNetwork,
        *,
        towns: pd.DataFrame,
        villages: gpd.GeoDataFrame | None = None,
        town_areas: gpd.GeoDataFrame | None = None,
        road_within_m: float = ROAD_NEAR_M,
    ) -> None:
        self.crs = net.crs
        codes = towns[schema.TOWN_CODE].astype(str)
        self._town_name = {"zh": dict(zip(codes, towns[schema.NAME].astype(str), strict=True))}
        if "name_en" in towns:
            self._town_name["en"] = dict(zip(codes, towns["name_en"].fillna(towns[schema.NAME]).astype(str),
                                             strict=True))  # fmt: skip
        self._villages = None if villages is None or not len(villages) else villages.to_crs(net.crs)
        self._town_areas = None if town_areas is None or not len(town_areas) else town_areas.to_crs(net.crs)
        self.road_within_m = float(road_within_m)
        named = np.flatnonzero(net.piece_name.astype(str) != "")
        self._road_names = np.array([n.split("; ")[0] for n in net.piece_name[named].astype(str)], dtype=object)
        ptr = net.piece_coord_ptr
        lines = [shapely.LineString(net.piece_coords[ptr[p] : ptr[p + 1]]) for p in named]
        self._roads = shapely.STRtree(lines)

    @classmethod
    def for_district(cls, district: District, net: PreparedNetwork) -> PlaceNamer:
        """Return the namer of ``district``'s towns, villages (if any) and town areas on ``net``'s roads."""
        return cls(net, towns=district.towns, villages=district.villages, town_areas=district.town_areas)

    def names(self, points: gpd.GeoDataFrame, *, lang: str = "zh") -> list[str]:
        """Return one place name per point (any CRS), parts joined by `SEPARATOR`; ``""`` when nothing is known.

        Raises
        ------
        ValueError
            If ``lang`` is not ``zh`` or ``en`` or ``points`` has no CRS.
        """
        if lang not in BESIDE:
            msg = f"`lang` must be one of {sorted(BESIDE)}; got {lang!r}."
            raise ValueError(msg)
        if points.crs is None:
            msg = "`points` has no CRS; set it (WGS-84 is EPSG:4326) before naming places."
            raise ValueError(msg)
        projected = points.geometry.to_crs(self.crs)
        towns = self._towns_of(points, projected)
        villages = self._villages_of(projected, towns)
        roads = self._roads_of(projected)
        town_names = self._town_name.get(lang, self._town_name["zh"])
        out = []
        for town, village, road in zip(towns, villages, roads, strict=True):
            parts = [town_names.get(town, ""), village, BESIDE[lang].format(road=road) if road else ""]
            out.append(SEPARATOR.join(p for p in parts if p))
        return out

    def _towns_of(self, points: gpd.GeoDataFrame, projected: gpd.GeoSeries) -> np.ndarray:
        if schema.TOWN_CODE in points:
            codes = points[schema.TOWN_CODE].astype("string").fillna("").to_numpy(dtype=object)
        else:
            codes = np.full(len(points), "", dtype=object)
        missing = np.flatnonzero(codes == "")
        if len(missing) and self._town_areas is not None:
            where = gpd.GeoDataFrame(geometry=projected.iloc[missing].reset_index(drop=True), crs=self.crs)
            joined = where.sjoin(self._town_areas[[schema.TOWN_CODE, "geometry"]], how="left", predicate="within")
            joined = joined[~joined.index.duplicated()]
            codes[missing] = joined[schema.TOWN_CODE].astype("string").fillna("").to_numpy(dtype=object)
        return codes

    def _villages_of(self, projected: gpd.GeoSeries, towns: np.ndarray) -> list[str]:
        if self._villages is None:
            return [""] * len(projected)
        v_town = self._villages[schema.TOWN_CODE].astype(str).to_numpy()
        v_name = self._villages[schema.NAME].astype(str).to_numpy()
        vx, vy = self._villages.geometry.x.to_numpy(), self._villages.geometry.y.to_numpy()
        px, py = projected.x.to_numpy(), projected.y.to_numpy()
        out = []
        for x, y, town in zip(px, py, towns, strict=True):
            pool = np.flatnonzero(v_town == town) if town else np.arange(len(v_town))
            if not len(pool):
                out.append("")
                continue
            out.append(v_name[pool[np.argmin(np.hypot(vx[pool] - x, vy[pool] - y))]])
        return out

    def _roads_of(self, projected: gpd.GeoSeries) -> list[str]:
        out = [""] * len(projected)
        if not len(self._road_names) or not len(projected):
            return out
        source, target = self._roads.query_nearest(projected.to_numpy(), max_distance=self.road_within_m)
        for i, j in zip(source, target, strict=True):
            if not out[i]:  # among equally near roads the first found names the place
                out[i] = self._road_names[j]
        return out
