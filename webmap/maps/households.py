"""The caseworkers' map of their households (ids and statuses only) and of a visit list's stops."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import folium
import geopandas as gpd
from flask_babel import gettext

from layers import schema
from webmap.maps.assets import default_static_url, localize_assets_inplace
from webmap.maps.base import (
    DisplayDatum,
    MapText,
    TileSource,
    add_town_areas,
    control_texts,
    display_gdf,
    display_geojson,
)
from webmap.maps.layers import add_roads
from webmap.maps.text import geojson_dict, map_label_icon, map_popup, map_text, map_tooltip

if TYPE_CHECKING:
    import pandas as pd

    from analyses.visits import VisitRoute
    from layers.district import District

#: Marker colour per household status on the staff map.
STATUS_COLOURS = {
    "surveyed": "#8c6d1f",
    "approved": "#1f5f8c",
    "in_progress": "#b8560f",
    "completed": "#2e7d32",
    "verified": "#1b4d1e",
    "declined": "#6b6b6b",
}


def households_map(
    district: District,
    households: pd.DataFrame,
    *,
    towns: tuple[str, ...],
    route: VisitRoute | None = None,
    start: gpd.GeoDataFrame | None = None,
    tiles: tuple[TileSource, ...] = (),
    datum: DisplayDatum = "wgs84",
    detail_url: Callable[[str], str] | None = None,
    status_label: Callable[[str], str] = str,
    static_url: Callable[[str], str] = default_static_url,
    roads: Mapping[str, Any] | None = None,
) -> folium.Map:
    """Build the staff map of ``households`` (ids and statuses only, no personal fields) in ``towns``.

    With ``route``, ``households`` must be in visiting order: stops are numbered and joined by
    straight lines from ``start`` (the order, not the road path). ``status_label`` names a status for
    people (the caseworker pages pass their translated labels). The map is fitted to the points (and
    ``start``), or to the towns when there are none; ``roads`` (``geo.roadlines.main_roads_geojson``)
    are drawn under them.
    """
    areas = district.town_areas[district.town_areas[schema.TOWN_CODE].isin(towns)]
    shown = display_gdf(areas if not areas.empty else district.boundary, datum)
    minx, miny, maxx, maxy = shown.total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=13, tiles=None, control_scale=True)
    for tile in tiles:
        folium.TileLayer(tiles=tile.url, attr=map_text(tile.attribution), name=tile.name, overlay=False,
                         control=False, subdomains=tile.subdomains).add_to(m)  # fmt: skip
    folium.GeoJson(
        geojson_dict(display_gdf(district.boundary, datum)),
        name=gettext("区界"),
        style_function=lambda _f: {
            "color": "#2d3a4a",
            "weight": 2,
            "fill": not tiles,
            "fillColor": "#ffffff",
            "fillOpacity": 0.85,
        },  # fmt: skip
        interactive=False,
    ).add_to(m)
    add_town_areas(m, district, datum, gettext)
    if roads is not None:
        add_roads(m, display_geojson(roads, datum), gettext)
    if not households.empty:
        points = display_gdf(gpd.GeoDataFrame(households, geometry=households.geometry, crs=schema.WGS84), datum)
        for number, (_, row) in enumerate(points.iterrows(), start=1):
            hid = str(row[schema.ID])
            label = gettext("%(id)s（%(status)s）", id=hid, status=status_label(row[schema.STATUS]))
            location = [row.geometry.y, row.geometry.x]
            if route is not None:
                icon = map_label_icon(number, css="stop-number", icon_size=(24, 24), icon_anchor=(12, 12),
                                           class_name="stop-icon")  # fmt: skip
                stop = gettext("第 %(number)d 站：%(label)s", number=number, label=label)
                folium.Marker(location, icon=icon, tooltip=map_tooltip(stop)).add_to(m)
                continue
            link = (detail_url(hid), gettext("查看详情")) if detail_url is not None else None
            folium.CircleMarker(
                location, radius=6, color=STATUS_COLOURS.get(row[schema.STATUS], "#333"), fill=True, fill_opacity=0.8,
                tooltip=map_tooltip(label), popup=map_popup(label, link=link),
            ).add_to(m)  # fmt: skip
        if route is not None and start is not None:
            origin = display_gdf(start.to_crs(schema.WGS84), datum).geometry.iloc[0]
            start_icon = map_label_icon(gettext("起"), css="stop-number stop-start", icon_size=(24, 24),
                                             icon_anchor=(12, 12), class_name="stop-icon")  # fmt: skip
            folium.Marker([origin.y, origin.x], tooltip=map_tooltip(gettext("出发点")),
                          icon=start_icon).add_to(m)  # fmt: skip
            line = [[origin.y, origin.x], *([p.y, p.x] for p in points.geometry)]
            folium.PolyLine(line, color="#1f5f8c", weight=3, dash_array="6 4").add_to(m)
        minx, miny, maxx, maxy = points.total_bounds
        if route is not None and start is not None:
            minx, miny, maxx, maxy = min(minx, origin.x), min(miny, origin.y), max(maxx, origin.x), max(maxy, origin.y)
    m.fit_bounds([[miny, minx], [maxy, maxx]], padding=(24, 24), max_zoom=17)
    MapText(control_texts(gettext, gettext("改造户地图"))).add_to(m)
    localize_assets_inplace(m, static_url=static_url)
    return m
