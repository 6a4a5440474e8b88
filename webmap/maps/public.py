"""The public map: district, towns, roads with street names and the public facility layers (no personal data)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import folium
from branca.element import MacroElement
from folium.template import Template

from geo.roadlines import LABEL_MIN_ZOOM
from layers import schema
from webmap.maps.assets import default_static_url, localize_assets_inplace
from webmap.maps.base import (
    DisplayDatum,
    MapText,
    TileSource,
    add_town_areas,
    control_texts,
    display_gdf,
    identity,
)
from webmap.maps.layers import (
    LAYER_LABELS,
    Attribution,
    ResponsiveLayerControl,
    RoadLayer,
    add_facilities,
    add_town_labels,
)
from webmap.maps.text import geojson_dict, map_text

if TYPE_CHECKING:
    import geopandas as gpd

    from layers.district import District

_BOUNDARY_STYLE = MappingProxyType(
    {"color": "#2d3a4a", "weight": 3, "fill": True, "fillColor": "#ffffff", "fillOpacity": 0.85}
)


def public_map(
    district: District,
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    roads: list[dict[str, Any]] | None = None,
    tiles: tuple[TileSource, ...] = (),
    datum: DisplayDatum = "wgs84",
    translate: Callable[[str], str] = identity,
    language: Literal["zh", "en"] = "zh",
    detail_url: Callable[[str, str], str] | None = None,
    static_url: Callable[[str], str] = default_static_url,
) -> folium.Map:
    """Build the public map: district, towns, main roads and the public facility layers.

    Parameters
    ----------
    district
        The district; its boundary, towns (seat points) and town areas are drawn (EPSG:4326).
    layers
        Public layer name (``layers.schema.PUBLIC_LAYERS``) → its rows as from ``Store.features``
        (EPSG:4326). Every row becomes one marker; filter rows before calling.
    roads
        Where the map fetches its roads: ``{"min_zoom", "url"}`` per band of ``geo.roadlines.ROAD_BANDS``
        (the ``public.roads`` endpoint, in the display datum); street names show from
        ``LABEL_MIN_ZOOM``. No roads are drawn when None.
    tiles
        Base tile layers, drawn in order (see ``tile_sources_from_config``); none by default, when
        the district's white sheet, towns and roads are the base map.
    datum
        Datum of the tiles. With ``"gcj02"`` (Amap-like sources) every drawn coordinate is
        converted WGS-84 → GCJ-02 for display; the inputs are not changed.
    translate
        Translates a zh-CN message (``flask_babel.gettext`` in a view); identity by default.
    language
        Which place names to show: ``"zh"`` (``name``) or ``"en"`` (``name_en`` of the towns and
        district). Facility names and addresses are data and stay as recorded.
    detail_url
        ``(layer, facility id) → URL`` of the facility's page, linked from its popup; no link when None.
    static_url
        Turns a path under ``webmap/static/`` into a URL (a view passes ``url_for``).

    Returns
    -------
    folium.Map
        The map, with asset links pointing at our vendored Leaflet and jQuery.

    Raises
    ------
    ValueError
        If ``layers`` holds a layer that is not public (households never go on this map), or
        ``datum`` is not a display datum.
    """
    not_public = sorted(set(layers) - set(schema.PUBLIC_LAYERS))
    if not_public:
        msg = (
            f"`layers` may only hold public layers {list(schema.PUBLIC_LAYERS)!r}; got {not_public!r}. "
            "Households and other sensitive layers never go on the public map."
        )
        raise ValueError(msg)
    if datum not in ("wgs84", "gcj02"):
        msg = f"`datum` must be 'wgs84' or 'gcj02' (TILE_DATUM); got {datum!r}."
        raise ValueError(msg)
    _ = translate
    name_column = "name_en" if language == "en" else "name"
    district_name = district.name_en if language == "en" else district.name

    boundary = display_gdf(district.boundary, datum)
    minx, miny, maxx, maxy = boundary.total_bounds
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=11,
        tiles=None,
        control_scale=True,
        zoom_snap=0.25,  # fit the district tightly (it is long and narrow)
        maxZoom=19,  # marker clusters need a top zoom (folium passes max_zoom only to its tiles)
    )
    for tile in tiles:
        folium.TileLayer(
            tiles=tile.url,
            attr=map_text(tile.attribution),
            name=tile.name,
            overlay=False,
            control=False,
            subdomains=tile.subdomains,
        ).add_to(m)

    # Without tiles the district is a white sheet on grey; with tiles only its outline is drawn.
    boundary_style = {**_BOUNDARY_STYLE, "fill": not tiles}
    folium.GeoJson(
        geojson_dict(boundary),
        name=_("区界"),
        style_function=lambda _f: boundary_style,
        interactive=False,
        attribution=map_text(_("区界：天地图")),
    ).add_to(m)
    add_town_areas(m, district, datum, _)  # over the boundary's white fill
    if roads is not None:
        RoadLayer(roads, label_zoom=LABEL_MIN_ZOOM).add_to(m)
    add_town_labels(m, district.towns, datum, name_column, _)

    town_names = dict(zip(district.towns[schema.TOWN_CODE], district.towns[name_column], strict=True))
    for layer in LAYER_LABELS:
        if layer in layers:
            add_facilities(m, layer, layers[layer], town_names, datum=datum, translate=_, detail_url=detail_url)

    control = folium.LayerControl(position="bottomright", collapsed=False).add_to(m)
    ResponsiveLayerControl(control.get_name(), label=_("图层")).add_to(m)
    Attribution(
        prefix="Leaflet",
        text=_("镇街驻地：GeoNames (CC BY 4.0)；设施、道路、村庄：合成演示数据"),
    ).add_to(m)
    MapText(control_texts(_, _("%(district)s设施地图") % {"district": district_name})).add_to(m)
    KeyboardPopups().add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    localize_assets_inplace(m, static_url=static_url)
    return m


#: URL fragment that opens a facility's popup on the map: ``#facility=<layer>/<id>``.
FACILITY_FRAGMENT = "facility="


def facility_fragment(layer: str, facility_id: str) -> str:
    """Return the URL fragment (without ``#``) that zooms the public map to a facility and opens its popup."""
    return f"{FACILITY_FRAGMENT}{layer}/{facility_id}"


class KeyboardPopups(MacroElement):
    """Make facility popups work from the keyboard and open the facility named in the URL fragment.

    Opening a popup (Enter on a focused marker, a click, or the fragment) moves focus into it, so
    its link to the detail page is the next Tab stop; Esc (anywhere in the map) or the close button
    closes it and returns focus to the marker that opened it. With ``#facility=<layer>/<id>`` in the URL
    (the detail page's "在地图上查看"), the map zooms to that facility and opens its popup.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            (function (map, prefix) {
                var opener = null;
                map.on("popupopen", function (e) {
                    var source = e.popup._source;
                    opener = source && source.getElement ? source.getElement() : null;
                    var box = e.popup.getElement().querySelector(".fac-popup");
                    if (box) {
                        box.setAttribute("tabindex", "-1");
                        box.focus({preventScroll: true});
                    }
                });
                map.on("popupclose", function (e) {
                    var popup = e.popup.getElement();
                    var active = document.activeElement;
                    var focusWasInside = !active || active === document.body || (popup && popup.contains(active));
                    if (opener && focusWasInside && document.body.contains(opener)) {
                        opener.focus({preventScroll: true});
                    }
                    opener = null;
                });
                // Leaflet closes a popup on Esc only while the map box itself has focus, not a marker or the link.
                map.getContainer().addEventListener("keydown", function (e) {
                    if (e.key === "Escape" && map._popup && map.hasLayer(map._popup)) {
                        map.closePopup();
                    }
                });
                function openFromFragment() {
                    var hash = decodeURIComponent(window.location.hash.slice(1));
                    if (hash.indexOf(prefix) !== 0) {
                        return;
                    }
                    var key = hash.slice(prefix.length);
                    var done = false;
                    map.eachLayer(function (group) {  // facility layers are cluster groups of markers
                        (group.getLayers ? group.getLayers() : []).forEach(function (layer) {
                            if (layer.facilityKey === key && !done) {
                                done = true;
                                map.setView(layer.getLatLng(), Math.max(map.getZoom(), 16), {animate: false});
                                map.getContainer().scrollIntoView({block: "center"});
                                if (layer.clusterGroup && !map.hasLayer(layer)) {
                                    layer.clusterGroup.zoomToShowLayer(layer, function () { layer.openPopup(); });
                                } else {
                                    layer.openPopup();
                                }
                            }
                        });
                    });
                }
                window.addEventListener("hashchange", openFromFragment);
                // After the page's fitBounds: its zoom animation would otherwise undo ours when it ends.
                function whenSettled() {
                    if (map._animatingZoom) {
                        map.once("zoomend", function () { setTimeout(openFromFragment, 0); });
                    } else {
                        openFromFragment();
                    }
                }
                map.whenReady(function () { setTimeout(whenSettled, 0); });
            })({{ this._parent.get_name() }}, {{ this.prefix|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "KeyboardPopups"
        self.prefix = FACILITY_FRAGMENT
