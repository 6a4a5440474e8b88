"""What every map shares: tiles, the display datum, the district's outline and towns, rendering into page parts."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import folium
import numpy as np
import shapely
import shapely.geometry
from branca.element import Element, MacroElement
from flask_babel import gettext
from folium.template import Template

from geo.datums import convert
from layers import schema
from webmap.maps.assets import localize_assets_inplace
from webmap.maps.text import geojson_dict

if TYPE_CHECKING:
    import geopandas as gpd

    from layers.district import District

#: Map datums a tile source can use: WGS-84 (Tianditu, OSM-style servers) or GCJ-02 (Amap and the like).
DisplayDatum = Literal["wgs84", "gcj02"]

_TOWN_AREA_STYLE = MappingProxyType({"color": "#6b7785", "weight": 1, "dashArray": "4 4", "fill": False})


def identity(message: str) -> str:
    """Return ``message`` unchanged (the ``translate`` of a map built outside a request)."""
    return message


@dataclass(frozen=True)
class MapParts:
    """The three pieces of a rendered folium map, for our own Jinja template.

    ``header`` goes in ``<head>`` (asset links, styles), ``html`` where the map should appear and
    ``script`` at the end of ``<body>``.
    """

    header: str
    html: str
    script: str


@dataclass(frozen=True)
class TileSource:
    """One base-map tile layer: a Leaflet URL template and what the map must credit.

    Attributes
    ----------
    url
        Leaflet URL template (``{z}``, ``{x}``, ``{y}``, optionally ``{s}``).
    attribution
        Text credited in the map corner (folium refuses custom tiles without one).
    name
        Name of the layer (not shown in the layer control: tiles are the base, not a choice).
    subdomains
        Values of ``{s}`` in ``url``.
    """

    url: str
    attribution: str
    name: str = "底图"
    subdomains: str = "abc"


#: Tianditu WMTS in Web Mercator (DOMAIN.md §5); ``{layer}`` is vec/cva, ``{key}`` the mandatory ``tk``.
TIANDITU_URL = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)


def tianditu_tiles(key: str) -> tuple[TileSource, TileSource]:
    """Return Tianditu's vector map (``vec_w``) and its labels (``cva_w``), in drawing order.

    Parameters
    ----------
    key
        The Tianditu ``tk`` key (from the instance config, never committed).

    Raises
    ------
    ValueError
        If ``key`` is empty.
    """
    if not key or not key.strip():
        msg = f"`TIANDITU_KEY` must be a Tianditu `tk` key; got {key!r}. Unset it to draw no tiles."
        raise ValueError(msg)
    key = key.strip()
    return tuple(
        TileSource(
            url=TIANDITU_URL.format(layer=layer, key=key),
            attribution="© 天地图",
            name=name,
            subdomains="01234567",
        )
        for layer, name in (("vec", "天地图矢量"), ("cva", "天地图注记"))
    )


def tile_sources_from_config(config: Mapping[str, Any]) -> tuple[TileSource, ...]:
    """Return the base tiles an app config asks for: none (default), an intranet server, or Tianditu.

    ``TIANDITU_KEY`` wins over ``TILE_URL``; ``TILE_URL`` needs ``TILE_ATTR``.

    Raises
    ------
    ValueError
        If ``TILE_URL`` is set without ``TILE_ATTR``, or ``TIANDITU_KEY`` is blank.
    """
    if config.get("TIANDITU_KEY") is not None:
        return tianditu_tiles(str(config["TIANDITU_KEY"]))
    url = config.get("TILE_URL")
    if not url:
        return ()
    attribution = config.get("TILE_ATTR")
    if not attribution:
        msg = f"`TILE_ATTR` is required with `TILE_URL` {url!r}; set it to the tiles' attribution."
        raise ValueError(msg)
    return (TileSource(url=str(url), attribution=str(attribution)),)


def render_map_parts(m: folium.Map) -> MapParts:
    """Render ``m`` into the header, body and script pieces for our own page template.

    folium's page-level header sets ``user-scalable=no`` and full-window ``html, body`` styles;
    our page has its own layout and must allow zooming, so that header piece and the duplicate
    charset ``<meta>`` are left out (the map's size comes from our stylesheet).

    Parameters
    ----------
    m
        A map built by this module (its assets already local).

    Returns
    -------
    MapParts
        Strings to insert unescaped into the template.
    """
    root = m.get_root()
    root.render()
    # Same names as folium's own children, so these replace them (branca ``add_child`` semantics).
    root.header.add_child(Element(""), name="meta_http")
    root.header.add_child(Element(""), name=m.get_name())
    return MapParts(header=root.header.render(), html=root.html.render(), script=root.script.render())


class MapText(MacroElement):
    """Name the map and translate Leaflet's built-in English control texts.

    Leaflet labels its zoom buttons "Zoom in"/"Zoom out" and the popup close button "Close popup";
    a Chinese page needs Chinese names, and the map container gets a role and a name of its own.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            (function (map, text) {
                var box = map.getContainer();
                box.setAttribute("role", "region");
                box.setAttribute("aria-label", text.map);
                if (map.zoomControl) {
                    [[map.zoomControl._zoomInButton, text.zoom_in], [map.zoomControl._zoomOutButton, text.zoom_out]]
                        .forEach(function (pair) {
                            pair[0].title = pair[1];
                            pair[0].setAttribute("aria-label", pair[1]);
                        });
                }
                map.on("popupopen", function (e) {
                    var close = e.popup.getElement().querySelector(".leaflet-popup-close-button");
                    if (close) {
                        close.setAttribute("aria-label", text.close_popup);
                        close.title = text.close_popup;
                    }
                });
            })({{ this._parent.get_name() }}, {{ this.text|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, text: Mapping[str, str]) -> None:
        super().__init__()
        self._name = "MapText"
        self.text = dict(text)


def control_texts(translate: Callable[[str], str], title: str) -> dict[str, str]:
    """Return ``MapText``'s texts in the language of ``translate``: zoom buttons, popup close, map name."""
    return {
        "zoom_in": translate("放大"),
        "zoom_out": translate("缩小"),
        "close_popup": translate("关闭弹窗"),
        "map": title,
    }


def add_town_areas(m: folium.Map, district: District, datum: DisplayDatum, translate: Callable[[str], str]) -> None:
    """Draw the district's approximate town areas as dashed outlines (not interactive); nothing when unknown."""
    if not district.has_town_areas:  # unknown (towns without seats): nothing to draw
        return
    folium.GeoJson(
        geojson_dict(display_gdf(district.town_areas[[schema.TOWN_CODE, "geometry"]], datum)),
        name=translate("镇街范围（近似）"),
        style_function=lambda _f: dict(_TOWN_AREA_STYLE),
        interactive=False,
    ).add_to(m)


def result_base_map(district: District) -> folium.Map:
    """Start a planner result map: the district's boundary (white sheet) and its approximate town areas."""
    boundary = district.boundary.to_crs(schema.WGS84)
    minx, miny, maxx, maxy = boundary.total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=11, tiles=None, control_scale=True)
    folium.GeoJson(
        json.loads(boundary.to_json(drop_id=True)),
        name=gettext("区界"),
        style_function=lambda _f: {"color": "#2d3a4a", "weight": 2, "fillColor": "#ffffff", "fillOpacity": 0.85},
        interactive=False,
    ).add_to(m)
    folium.GeoJson(
        json.loads(district.town_areas[[schema.TOWN_CODE, "geometry"]].to_crs(schema.WGS84).to_json(drop_id=True)),
        name=gettext("镇街范围（近似）"),
        style_function=lambda _f: {"color": "#6b7785", "weight": 1, "dashArray": "4 4", "fill": False},
        interactive=False,
    ).add_to(m)
    return m


def finish_result_map(
    m: folium.Map, district: District, static_url: Callable[[str], str], title: str | None = None
) -> folium.Map:
    """End a planner result map: layer control, fitted to the district, assets served by us.

    ``title`` names the map for screen readers (its landmark); "分析结果地图" when None. Maps on one page
    need titles of their own.
    """
    minx, miny, maxx, maxy = district.boundary.to_crs(schema.WGS84).total_bounds
    folium.LayerControl(position="bottomright", collapsed=False).add_to(m)
    MapText(control_texts(gettext, title or gettext("分析结果地图"))).add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    localize_assets_inplace(m, static_url=static_url)
    return m


def display_xy(lon: np.ndarray, lat: np.ndarray, datum: DisplayDatum) -> tuple[np.ndarray, np.ndarray]:
    """Return WGS-84 coordinates in the display datum (new arrays; GCJ-02 for Amap-like tiles)."""
    if datum == "wgs84":
        return lon.copy(), lat.copy()
    return convert(lon, lat, "wgs84", datum)


def display_gdf(gdf: gpd.GeoDataFrame, datum: DisplayDatum) -> gpd.GeoDataFrame:
    """Return a copy of ``gdf`` (any CRS) in EPSG:4326, its coordinates in the display datum."""
    out = gdf.to_crs("EPSG:4326")
    if datum == "wgs84":
        return out
    out = out.copy()
    out.geometry = shapely.transform(
        out.geometry.values, lambda xy: np.column_stack(display_xy(xy[:, 0], xy[:, 1], datum))
    )
    return out


def display_geojson(collection: Mapping[str, Any], datum: DisplayDatum) -> dict[str, Any]:
    """Return a copy of a GeoJSON FeatureCollection with its coordinates in the display datum."""
    if datum == "wgs84":
        return dict(collection)
    features = []
    for feature in collection["features"]:
        geometry = shapely.geometry.shape(feature["geometry"])
        moved = shapely.transform(geometry, lambda xy: np.column_stack(display_xy(xy[:, 0], xy[:, 1], datum)))
        features.append({**feature, "geometry": shapely.geometry.mapping(moved)})
    return {**collection, "features": features}
