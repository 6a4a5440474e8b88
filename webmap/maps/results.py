"""The maps of the planner's results: coverage, gaps, service areas and siting (two functions per kind).

``<kind>_layers`` turns a result's GeoPackage into its display layers (``webmap.maps.result_layers``:
dense points as counts per hexagon, simplified polygons), written once per result by its job;
``<kind>_map`` draws the map from the result's small layers (facilities, sites) and fetches the display
layers on demand from ``layer_url(name)``. The planner's result pages (``webmap.views.planner``) render
it into their page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import folium
import numpy as np
import shapely
from flask_babel import gettext

from layers import schema
from webmap.i18n import N_
from webmap.maps.base import finish_result_map, result_base_map
from webmap.maps.result_layers import (
    MAX_POINTS,
    Layer,
    PointGroup,
    RemoteLayer,
    features,
    legend_text,
    point_layers,
    simplified,
)
from webmap.maps.text import map_text, map_tooltip

if TYPE_CHECKING:
    import geopandas as gpd

    from layers.district import District

#: One entry of a result's display-layer index (``result_layers.read_index``): name and legend.
Index = Sequence[dict[str, Any]]
LayerUrl = Callable[[str], str]


def counted(label: str, n: int) -> str:
    """Return a map legend entry: ``label`` with its count in brackets."""
    return gettext("%(label)s（%(n)s）", label=label, n=n)


def remote_layers(m: folium.Map, index: Index, layer_url: LayerUrl) -> None:
    """Add to ``m`` one group per display layer of ``index``, filled on demand from ``layer_url(name)``.

    A layer of hexagon counts with finer levels (``zoom`` in its entry) shows them as the map zooms in,
    each tile in view fetched once; its legend says what a cell shows and the cell sizes.
    """
    for entry in index:
        group = folium.FeatureGroup(name=map_text(legend_text(entry["legend"], entry.get("zoom"))))
        group.add_to(m)
        RemoteLayer(layer_url(entry["name"]), group, m, entry.get("zoom")).add_to(m)


def _demand_labels(points: gpd.GeoDataFrame) -> list[str]:
    return points["demand_id"].astype(str).tolist()


def coverage_layers(points: gpd.GeoDataFrame, *, covered_column: str, crs: str) -> list[Layer]:
    """Return the display layers of a coverage result: its demand points, covered or not (hexagons if many).

    Parameters
    ----------
    points
        Demand points (EPSG:4326) with ``demand_id`` and the boolean ``covered_column``.
    covered_column
        The ``covered_*`` column that colours the points.
    crs
        The district's projected CRS (the hexagon grid's).
    """
    covered = points[covered_column].astype(bool).to_numpy()
    groups = (PointGroup(covered, N_("已覆盖的需求点"), "#1a7f37"),
              PointGroup(~covered, N_("未覆盖的需求点"), "#c62828"))  # fmt: skip
    return point_layers("points", points, groups, crs=crs, labels=_demand_labels(points))


#: Colour and legend msgids (real DEM, synthetic DEM) of the steep road pieces by closure (``analyses.slopes``).
STEEP_CLASSES = (
    ("open", "#ef8f00", N_("陡坡路段（≥ 1:20，可通行）"), N_("陡坡路段（≥ 1:20，可通行；坡度来自合成 DEM）")),
    ("uphill", "#b3261e", N_("因坡度上坡不能通行的路段"), N_("因坡度上坡不能通行的路段（坡度来自合成 DEM）")),
    ("downhill", "#b3261e", N_("因坡度下坡不能通行的路段"), N_("因坡度下坡不能通行的路段（坡度来自合成 DEM）")),
    ("both", "#5c0a0a", N_("因坡度双向不能通行的路段"), N_("因坡度双向不能通行的路段（坡度来自合成 DEM）")),
)


#: Display simplification of the steep road pieces, metres (their roads are drawn from the road file).
STEEP_SIMPLIFY_M = 10.0


def steep_layers(steep: gpd.GeoDataFrame, *, synthetic_dem: bool) -> list[Layer]:
    """Return the display layers of the steep and slope-closed road pieces (``analyses.slopes.steep_segments``).

    One layer per closure class (``STEEP_CLASSES``), lines drawn uphill and grouped by whole percent of
    gradient (one feature labelled "8–9%" each); with ``synthetic_dem`` the legend says the gradients come
    from a synthetic DEM.
    """
    crs = str(steep.crs)  # projected (the network's): simplified in metres
    layers = []
    for closed, colour, label, synthetic_label in STEEP_CLASSES:
        rows = steep[steep["closed"] == closed]
        if not len(rows):
            continue
        style = {"color": colour, "weight": 4 if closed == "open" else 5, "opacity": 0.9}
        legend = ((synthetic_label if synthetic_dem else label, len(rows)),)
        # one feature per whole percent of gradient (thousands of pieces in a hilly district): "8–9%"
        band = np.floor(rows["grade_percent"].to_numpy()).astype(int)
        geometry = simplified(rows, crs, STEEP_SIMPLIFY_M)
        bands = np.unique(band)
        merged = [shapely.multilinestrings(list(geometry[band == b])) for b in bands]
        texts = [f"{b}–{b + 1}%" for b in bands]
        layers.append(Layer(f"steep_{closed}", legend, features(merged, texts, [{}] * len(bands)), style))
    return layers


def coverage_map(
    district: District,
    facilities: gpd.GeoDataFrame,
    planned: gpd.GeoDataFrame | None,
    *,
    index: Index,
    layer_url: LayerUrl,
    static_url: Callable[[str], str],
) -> folium.Map:
    """Build the coverage result map: demand points covered (green) or not (red), facilities, planned ones.

    Parameters
    ----------
    district
        Its boundary and town areas are drawn.
    facilities, planned
        Facilities counted (filled blue) and, for a before/after run, the planned ones (hollow).
    index
        The result's display layers (``coverage_layers``, as indexed by ``result_layers.write_layers``).
    layer_url
        A display layer's name → the URL the page fetches it from.
    static_url
        Turns a path under ``webmap/static/`` into a URL.
    """
    m = result_base_map(district)
    remote_layers(m, index, layer_url)
    for gdf, name, fill in ((facilities, gettext("计入的设施"), True), (planned, gettext("规划设施（对比）"), False)):
        if gdf is None or not len(gdf):
            continue
        group = folium.FeatureGroup(name=name)
        for row in gdf.itertuples():
            label = f"{getattr(row, 'name', '') or ''} ({row.id})"
            folium.CircleMarker(
                [row.geometry.y, row.geometry.x], radius=7, color="#0b4f9c", weight=3, fill=fill,
                fill_color="#0b4f9c", fill_opacity=0.9, tooltip=map_tooltip(label),
            ).add_to(group)  # fmt: skip
        group.add_to(m)
    return finish_result_map(m, district, static_url)


def gaps_layers(hexagons: gpd.GeoDataFrame, uncovered: gpd.GeoDataFrame, *, crs: str) -> list[Layer]:
    """Return the display layers of a gaps result: hexagons shaded by the share not covered, uncovered points.

    Parameters
    ----------
    hexagons
        The result's hexagons (EPSG:4326) with ``gap_share`` and ``n_uncovered``.
    uncovered
        The points beyond the threshold (EPSG:4326) with ``demand_id``.
    crs
        The district's projected CRS (the display hexagon grid's).
    """
    shaded = hexagons[hexagons["gap_share"] > 0]
    styles = [{"color": "#7a1f1f", "weight": 1, "fillColor": "#c62828",
               "fillOpacity": round(0.15 + 0.6 * float(s), 3)} for s in shaded["gap_share"]]  # fmt: skip
    texts = [f"未覆盖需求点：{int(n)}" for n in shaded["n_uncovered"]]
    legend = ((N_("服务缺口区（六边形）"), len(shaded)),)
    areas = Layer("gap_hexagons", legend, features(shaded.geometry, texts, styles))
    group = PointGroup(np.ones(len(uncovered), dtype=bool), N_("未覆盖的需求点"), "#c62828")
    return [areas, *point_layers("uncovered", uncovered, (group,), crs=crs, labels=_demand_labels(uncovered))]


def gaps_map(district: District, *, index: Index, layer_url: LayerUrl, static_url: Callable[[str], str]) -> folium.Map:
    """Build the gaps map: hexagons shaded by the share of demand not covered, and the uncovered points."""
    m = result_base_map(district)
    remote_layers(m, index, layer_url)
    return finish_result_map(m, district, static_url)


#: Fill colours of up to four thresholds, smallest first (darker = nearer).
_AREA_COLOURS = ("#0b4f9c", "#2f7ec1", "#6aa9d8", "#a9cdea")


def service_areas_layers(areas: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, *, crs: str) -> list[Layer]:
    """Return the display layers of a service-areas result: each threshold's catchments, largest first.

    Parameters
    ----------
    areas
        One row per facility and threshold (EPSG:4326): ``facility_id``, ``threshold``, ``threshold_value``.
    facilities
        The facilities (EPSG:4326) with ``id`` and ``name`` (for the tooltips).
    crs
        The district's projected CRS (the simplification's).
    """
    labels = list(dict.fromkeys(areas.sort_values("threshold_value")["threshold"]))
    names = dict(zip(facilities[schema.ID].astype(str), facilities[schema.NAME].fillna(""), strict=True))
    layers = []
    for i, label in reversed(list(enumerate(labels))):
        rows = areas[(areas["threshold"] == label) & ~areas.geometry.is_empty]
        colour = _AREA_COLOURS[min(i, len(_AREA_COLOURS) - 1)]
        style = {"color": colour, "weight": 1, "fillColor": colour, "fillOpacity": 0.25}
        texts = [f"{names.get(str(f), '')} ({f}) · {label}" for f in rows["facility_id"]]
        geometry = simplified(rows, crs) if len(rows) else []
        layers.append(Layer(f"areas_{i}", ((f"{N_('服务范围')} {label}", len(rows)),),
                            features(geometry, texts, [style] * len(rows), digits=4)))  # fmt: skip
    return layers


def service_areas_map(district: District, facilities: gpd.GeoDataFrame, *, index: Index, layer_url: LayerUrl,
                      static_url: Callable[[str], str]) -> folium.Map:  # fmt: skip
    """Build the service-areas map: each facility's catchment per threshold (largest drawn first), the facilities.

    Parameters
    ----------
    district
        Its boundary and town areas are drawn.
    facilities
        The facilities (EPSG:4326) with ``id`` and ``name``.
    index, layer_url
        The result's display layers (``service_areas_layers``) and where the page fetches them.
    static_url
        Turns a path under ``webmap/static/`` into a URL.
    """
    m = result_base_map(district)
    remote_layers(m, index, layer_url)
    group = folium.FeatureGroup(name=gettext("设施（%(n)s）", n=len(facilities)))
    for row in facilities.itertuples():
        folium.CircleMarker([row.geometry.y, row.geometry.x], radius=6, color="#7a3e00", weight=2, fill=True,
                            fill_color="#f28c28", fill_opacity=0.95,
                            tooltip=map_tooltip(f"{row.name or ''} ({row.id})")).add_to(group)  # fmt: skip
    group.add_to(m)
    return finish_result_map(m, district, static_url)


def siting_layers(sites: gpd.GeoDataFrame, assignment: gpd.GeoDataFrame, *, crs: str) -> list[Layer]:
    """Return the display layers of a siting result: demand points before/after (hexagons if many), their links.

    Parameters
    ----------
    sites
        Chosen sites (EPSG:4326) with ``id``.
    assignment
        Demand points (EPSG:4326) with ``demand_id``, ``site_id``, ``covered`` (after) and
        ``covered_before``.
    crs
        The district's projected CRS (the hexagon grid's).
    """
    before, after = assignment["covered_before"].astype(bool).to_numpy(), assignment["covered"].astype(bool).to_numpy()
    groups = (PointGroup(before & after, N_("原已覆盖的需求点"), "#1a7f37"),
              PointGroup(~before & after, N_("新增覆盖的需求点"), "#0b6fa4"),
              PointGroup(~after, N_("仍未覆盖的需求点"), "#c62828"))  # fmt: skip
    layers = point_layers("points", assignment, groups, crs=crs, labels=_demand_labels(assignment))
    if len(assignment) > MAX_POINTS:
        return layers  # counted per hexagon: no line per point
    import shapely

    located = sites.set_index(sites[schema.ID].astype(str)).geometry
    linked = assignment[assignment["site_id"].notna() & assignment["site_id"].astype(str).isin(located.index)]
    ends = located.loc[linked["site_id"].astype(str)].to_numpy()
    lines = shapely.linestrings([[(p.x, p.y), (s.x, s.y)] for p, s in zip(linked.geometry, ends, strict=True)])
    style = {"color": "#8a96a3", "weight": 1, "opacity": 0.6}
    link = Layer("links", ((N_("需求点与所分配站点的连线"), len(linked)),),
                 features(lines, _demand_labels(linked), [style] * len(linked)))  # fmt: skip
    return [link, *layers]


def siting_map(district: District, sites: gpd.GeoDataFrame, counts: dict[str, int], *, index: Index,
               layer_url: LayerUrl, static_url: Callable[[str], str]) -> folium.Map:  # fmt: skip
    """Build the siting map: chosen sites (kept and new), each demand point joined to its site, before/after.

    Parameters
    ----------
    district
        Its boundary and town areas are drawn.
    sites
        Chosen sites (EPSG:4326) with ``id``, ``name``, ``current``, ``new`` and, in runs since places were
        added, ``place`` (shown beside the name in the tooltip, through ``map_tooltip``).
    counts
        Site id → the number of demand points assigned to it.
    index, layer_url
        The result's display layers (``siting_layers``) and where the page fetches them.
    static_url
        Turns a path under ``webmap/static/`` into a URL.
    """
    m = result_base_map(district)
    remote_layers(m, index, layer_url)
    for new, name, fill in ((False, gettext("保留的现有站点"), "#0b4f9c"), (True, gettext("新选站点"), "#f28c28")):
        chosen = sites[sites["new"].astype(bool) == new]
        group = folium.FeatureGroup(name=counted(name, len(chosen)))
        for row in chosen.itertuples():
            name = " · ".join(str(v) for v in (row.name, getattr(row, "place", "")) if isinstance(v, str) and v)
            label = gettext("%(name)s（%(id)s）：分配 %(n)s 个需求点", name=name, id=row.id,
                      n=int(counts.get(str(row.id), 0)))  # fmt: skip
            folium.CircleMarker([row.geometry.y, row.geometry.x], radius=8, color="#1f2933", weight=2,
                                fill=True, fill_color=fill, fill_opacity=0.95,
                                tooltip=map_tooltip(label)).add_to(group)  # fmt: skip
        group.add_to(m)
    return finish_result_map(m, district, static_url)
