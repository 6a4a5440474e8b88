"""The maps of the planner's results: coverage, gaps, service areas and siting (one function per kind).

Each takes the district and the result's layers as read from the job's GeoPackage (EPSG:4326) and
returns a folium map; the planner's result pages (``webmap.views.planner``) render it into their page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import folium
from flask_babel import gettext

from layers import schema
from webmap.maps.base import finish_result_map, result_base_map
from webmap.maps.text import labelled_geojson, map_tooltip

if TYPE_CHECKING:
    import geopandas as gpd

    from layers.district import District


def counted(label: str, n: int) -> str:
    """Return a map legend entry: ``label`` with its count in brackets."""
    return gettext("%(label)s（%(n)s）", label=label, n=n)


def coverage_map(
    district: District,
    points: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    planned: gpd.GeoDataFrame | None,
    *,
    covered_column: str,
    static_url: Callable[[str], str],
) -> folium.Map:
    """Build the coverage result map: demand points covered (green) or not (red), facilities, planned ones.

    Parameters
    ----------
    district
        Its boundary and town areas are drawn.
    points
        Demand points (EPSG:4326) with ``demand_id``, ``town_code`` and the boolean ``covered_column``.
    facilities, planned
        Facilities counted (filled blue) and, for a before/after run, the planned ones (hollow).
    covered_column
        The ``covered_*`` column that colours the points.
    static_url
        Turns a path under ``webmap/static/`` into a URL.
    """
    m = result_base_map(district)
    for covered, name, colour in ((True, gettext("已覆盖的需求点"), "#1a7f37"),
                                  (False, gettext("未覆盖的需求点"), "#c62828")):  # fmt: skip
        group = folium.FeatureGroup(name=counted(name, int((points[covered_column] == covered).sum())))
        for row in points[points[covered_column] == covered].itertuples():
            folium.CircleMarker(
                [row.geometry.y, row.geometry.x], radius=3, color=colour, weight=1, fill=True, fill_opacity=0.8,
                tooltip=map_tooltip(row.demand_id),
            ).add_to(group)  # fmt: skip
        group.add_to(m)
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


def gaps_map(district: District, hexagons: gpd.GeoDataFrame, uncovered: gpd.GeoDataFrame, *,
             static_url: Callable[[str], str]) -> folium.Map:  # fmt: skip
    """Build the gaps map: hexagons shaded by the share of demand not covered, and the uncovered points."""
    m = result_base_map(district)
    shaded = hexagons[hexagons["gap_share"] > 0]
    labelled_geojson(
        shaded[["hex_id", "gap_share", "n_uncovered", "geometry"]],
        [f"{gettext('未覆盖需求点')}：{int(n)}" for n in shaded["n_uncovered"]],
        name=gettext("服务缺口区（%(n)s 个六边形）", n=len(shaded)),
        style_function=lambda f: {
            "color": "#7a1f1f",
            "weight": 1,
            "fillColor": "#c62828",
            "fillOpacity": 0.15 + 0.6 * float(f["properties"]["gap_share"]),
        },  # fmt: skip
    ).add_to(m)
    group = folium.FeatureGroup(name=counted(gettext("未覆盖的需求点"), len(uncovered)))
    for row in uncovered.itertuples():
        folium.CircleMarker([row.geometry.y, row.geometry.x], radius=3, color="#c62828", weight=1, fill=True,
                            fill_opacity=0.8, tooltip=map_tooltip(row.demand_id)).add_to(group)  # fmt: skip
    group.add_to(m)
    return finish_result_map(m, district, static_url)


#: Fill colours of up to four thresholds, smallest first (darker = nearer).
_AREA_COLOURS = ("#0b4f9c", "#2f7ec1", "#6aa9d8", "#a9cdea")


def service_areas_map(district: District, areas: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, *,
                      static_url: Callable[[str], str]) -> folium.Map:  # fmt: skip
    """Build the service-areas map: each facility's catchment per threshold (largest drawn first), the facilities.

    Parameters
    ----------
    district
        Its boundary and town areas are drawn.
    areas
        One row per facility and threshold (EPSG:4326): ``facility_id``, ``threshold``, ``threshold_value``,
        ``area_m2``.
    facilities
        The facilities (EPSG:4326) with ``id`` and ``name``.
    static_url
        Turns a path under ``webmap/static/`` into a URL.
    """
    m = result_base_map(district)
    labels = list(dict.fromkeys(areas.sort_values("threshold_value")["threshold"]))
    names = dict(zip(facilities[schema.ID].astype(str), facilities[schema.NAME].fillna(""), strict=True))
    for i, label in reversed(list(enumerate(labels))):
        rows = areas[(areas["threshold"] == label) & ~areas.geometry.is_empty].copy()
        rows["geometry"] = rows.geometry.simplify(0.00005)
        colour = _AREA_COLOURS[min(i, len(_AREA_COLOURS) - 1)]
        labelled_geojson(
            rows[["geometry"]],
            [f"{names.get(str(f), '')} ({f}) · {label}" for f in rows["facility_id"]],
            name=gettext("服务范围 %(threshold)s（%(n)s 处设施）", threshold=label, n=len(rows)),
            style_function=lambda _f, c=colour: {"color": c, "weight": 1, "fillColor": c, "fillOpacity": 0.25},
        ).add_to(m)
    group = folium.FeatureGroup(name=gettext("设施（%(n)s）", n=len(facilities)))
    for row in facilities.itertuples():
        folium.CircleMarker([row.geometry.y, row.geometry.x], radius=6, color="#7a3e00", weight=2, fill=True,
                            fill_color="#f28c28", fill_opacity=0.95,
                            tooltip=map_tooltip(f"{row.name or ''} ({row.id})")).add_to(group)  # fmt: skip
    group.add_to(m)
    return finish_result_map(m, district, static_url)


def siting_map(district: District, sites: gpd.GeoDataFrame, assignment: gpd.GeoDataFrame, *,
               static_url: Callable[[str], str]) -> folium.Map:  # fmt: skip
    """Build the siting map: chosen sites (kept and new), each demand point joined to its site, before/after.

    Parameters
    ----------
    district
        Its boundary and town areas are drawn.
    sites
        Chosen sites (EPSG:4326) with ``id``, ``name``, ``current``, ``new`` and, in runs since places were
        added, ``place`` (shown beside the name in the tooltip, through ``map_tooltip``).
    assignment
        Demand points (EPSG:4326) with ``demand_id``, ``site_id``, ``covered`` (after) and
        ``covered_before``.
    static_url
        Turns a path under ``webmap/static/`` into a URL.
    """
    m = result_base_map(district)
    located = sites.set_index(sites[schema.ID].astype(str)).geometry
    lines = folium.FeatureGroup(name=gettext("需求点与所分配站点的连线"))
    for row in assignment[assignment["site_id"].notna()].itertuples():
        site = located.get(str(row.site_id))
        if site is not None and row.geometry is not None:
            folium.PolyLine([[row.geometry.y, row.geometry.x], [site.y, site.x]], color="#8a96a3", weight=1,
                            opacity=0.6).add_to(lines)  # fmt: skip
    lines.add_to(m)
    groups = (
        (assignment["covered_before"] & assignment["covered"], gettext("原已覆盖的需求点"), "#1a7f37"),
        (~assignment["covered_before"] & assignment["covered"], gettext("新增覆盖的需求点"), "#0b6fa4"),
        (~assignment["covered"], gettext("仍未覆盖的需求点"), "#c62828"),
    )
    for mask, name, colour in groups:
        group = folium.FeatureGroup(name=counted(name, int(mask.sum())))
        for row in assignment[mask].itertuples():
            folium.CircleMarker([row.geometry.y, row.geometry.x], radius=3, color=colour, weight=1, fill=True,
                                fill_opacity=0.8, tooltip=map_tooltip(row.demand_id)).add_to(group)  # fmt: skip
        group.add_to(m)
    counts = assignment["site_id"].value_counts()
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
