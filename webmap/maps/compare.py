"""The compare page's maps: one per result, drawn alike, moved together by ``static/js/map_sync.js``.

Each shows its result's demand points (covered or not), its sites, and the sites it has that the other
result lacks (ringed in orange), so the two maps side by side show where the results differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import folium
from flask_babel import gettext

from webmap.maps.base import finish_result_map, result_base_map
from webmap.maps.results import counted
from webmap.maps.text import map_tooltip

if TYPE_CHECKING:
    import geopandas as gpd

    from layers.district import District


def merged_header(headers: Sequence[str]) -> str:
    """Return the ``<head>`` parts of several maps on one page, each asset (script or style link) once."""
    seen: set[str] = set()
    lines = []
    for header in headers:
        for line in header.splitlines():
            asset = line.strip()
            if asset.startswith(("<script src=", "<link ")):
                if asset in seen:
                    continue
                seen.add(asset)
            lines.append(line)
    return "\n".join(lines)


def compare_map(
    district: District,
    points: gpd.GeoDataFrame | None,
    sites: Sequence[dict[str, Any]],
    only_here: Sequence[dict[str, Any]],
    *,
    title: str,
    static_url: Callable[[str], str],
) -> folium.Map:
    """Build one side of the compare page's pair of maps.

    Parameters
    ----------
    district
        Its boundary and town areas are drawn.
    points
        The result's demand points (EPSG:4326) with ``demand_id`` and a boolean ``covered``; None when
        the result has no located points.
    sites
        The result's sites: ``id``, ``lon``, ``lat`` and ``label`` (name or place).
    only_here
        The sites of this result that the other one lacks (same keys), ringed in orange.
    title
        The map's name for screen readers (each map of the page its own).
    static_url
        Turns a path under ``webmap/static/`` into a URL.
    """
    m = result_base_map(district)
    if points is not None and len(points):
        for covered, name, colour in ((True, gettext("已覆盖的需求点"), "#1a7f37"),
                                      (False, gettext("未覆盖的需求点"), "#c62828")):  # fmt: skip
            chosen = points[points["covered"].astype(bool) == covered]
            group = folium.FeatureGroup(name=counted(name, len(chosen)))
            for row in chosen.itertuples():
                folium.CircleMarker([row.geometry.y, row.geometry.x], radius=3, color=colour, weight=1,
                                    fill=True, fill_opacity=0.8,
                                    tooltip=map_tooltip(str(row.demand_id))).add_to(group)  # fmt: skip
            group.add_to(m)
    for chosen, name, colour, radius in ((sites, gettext("站点"), "#0b4f9c", 7),
                                         (only_here, gettext("另一结果没有的站点"), "#f28c28", 11)):  # fmt: skip
        group = folium.FeatureGroup(name=counted(name, len(chosen)))
        for site in chosen:
            folium.CircleMarker([site["lat"], site["lon"]], radius=radius, color=colour, weight=3,
                                fill=chosen is sites, fill_color=colour, fill_opacity=0.9,
                                tooltip=map_tooltip(f"{site['label']} ({site['id']})")).add_to(group)  # fmt: skip
        group.add_to(m)
    return finish_result_map(m, district, static_url, title)
