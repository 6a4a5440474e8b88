"""The what-if map: the district and its town areas; the page's script draws the sites and demand on it.

The sites and demand points change with every edit, so they are not rendered by folium: the page's
script (``static/js/whatif.js``) draws them from the what-if's JSON, every text set as plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from webmap.maps.base import finish_result_map, result_base_map

if TYPE_CHECKING:
    import folium

    from layers.district import District


def whatif_map(district: District, *, static_url: Callable[[str], str]) -> folium.Map:
    """Build the what-if base map: the district's boundary and town areas, fitted, assets served by us."""
    return finish_result_map(result_base_map(district), district, static_url)
