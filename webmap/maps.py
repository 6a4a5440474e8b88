"""Build folium maps as plain functions (no Flask); the main roads come from ``geo.roadlines``."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import folium
import numpy as np
import shapely
import shapely.geometry
from branca.element import Element, MacroElement
from folium.map import Layer
from folium.template import Template

from geo.datums import convert
from layers import schema
from webmap.assets import default_static_url, localize_assets_inplace

if TYPE_CHECKING:
    import geopandas as gpd

    from layers.district import District

logger = logging.getLogger(__name__)


#: Map datums a tile source can use: WGS-84 (Tianditu, OSM-style servers) or GCJ-02 (Amap and the like).
DisplayDatum = Literal["wgs84", "gcj02"]


def N_(message: str) -> str:  # noqa: N802 (gettext convention)
    """Mark ``message`` for translation without translating it (``pybabel extract`` keyword)."""
    return message


def _identity(message: str) -> str:
    return message


#: User-facing names of the public layers, in legend order: zh-CN msgids, translated where shown.
LAYER_LABELS = MappingProxyType(
    {
        schema.SERVICE_CENTRE: N_("渝馨家园（残疾人服务中心）"),
        schema.REHAB_STATION: N_("康复站"),
        schema.ACCESSIBLE_TOILET: N_("无障碍厕所"),
        schema.SPORTS_SITE: N_("文化体育示范点"),
    }
)

#: User-facing names (zh-CN msgids) of every status of the public layers.
STATUS_LABELS = MappingProxyType(
    {
        "planned": N_("规划中"),
        "open": N_("开放"),
        "closed": N_("已关闭"),
        "under_construction": N_("在建"),
        "completed": N_("已建成"),
        "accepted": N_("已验收"),
    }
)

#: Statuses drawn as hollow symbols: the facility is not usable yet.
PENDING_STATUSES = frozenset({"planned", "under_construction"})

ROAD_LABELS = MappingProxyType(
    {"trunk": N_("干线公路"), "primary": N_("主干道"), "secondary": N_("次干道"), "tertiary": N_("支路（三级）")}
)
_ROAD_STYLES = MappingProxyType(
    {
        "trunk": {"color": "#b5542b", "weight": 4},
        "primary": {"color": "#c9803a", "weight": 3.5},
        "secondary": {"color": "#a89a5b", "weight": 2.5},
        "tertiary": {"color": "#9c9c9c", "weight": 1.5},
    }
)
_BOUNDARY_STYLE = MappingProxyType(
    {"color": "#2d3a4a", "weight": 3, "fill": True, "fillColor": "#ffffff", "fillOpacity": 0.85}
)
_TOWN_AREA_STYLE = MappingProxyType({"color": "#6b7785", "weight": 1, "dashArray": "4 4", "fill": False})

#: Characters written as HTML character references by ``map_text``: those that mean something in HTML
#: (``&<>"'``), in a JavaScript string or template literal (backtick, ``$``, backslash) or to Jinja (braces:
#: branca compiles every rendered map piece as a Jinja template and renders it a second time).
_MAP_TEXT_REFERENCES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&#39;",
        "`": "&#96;",
        "$": "&#36;",
        "\\": "&#92;",
        "{": "&#123;",
        "}": "&#125;",
    }
)
#: A brace that would open a Jinja tag, comment or expression inside a JSON string (see ``script_json``).
_JINJA_OPENING = re.compile(r"\{(?=[{%#])")
#: Characters ``script_json`` writes as JSON escapes.
_SCRIPT_JSON_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("`", "\\u0060"), ("$", "\\u0024"))


def map_text(value: object) -> str:
    """Return ``value`` as text that is inert wherever a map puts it: HTML, a JavaScript literal, Jinja.

    Every tooltip, popup, label and attribution of our folium maps is built from this (through
    ``map_tooltip``, ``map_popup``, ``map_label_icon`` and ``labelled_geojson``): folium writes such text
    unescaped into a JavaScript template literal of the page's nonced script, Leaflet then parses it as
    HTML, and branca renders the script as a Jinja template once more. HTML-escaping alone leaves a
    backtick, ``${`` and ``{{`` working; here every character that means something in any of the three
    is written as an HTML character reference, which only the final HTML parse turns back into the
    character, so the text is shown exactly as recorded.

    Parameters
    ----------
    value
        Any value (``str()`` is taken): a name, an id, a label.

    Returns
    -------
    str
        Markup holding no ``<``, ``>``, quote, backtick, ``$``, backslash or brace.
    """
    return str(value).translate(_MAP_TEXT_REFERENCES)


def map_tooltip(text: object, **options: Any) -> folium.Tooltip:
    """Return a folium tooltip showing ``text`` as plain text (see ``map_text``); ``options`` go to Leaflet."""
    return folium.Tooltip(map_text(text), **options)


def map_popup(text: object, *, link: tuple[str, str] | None = None, max_width: int = 240) -> folium.Popup:
    """Return a folium popup showing ``text`` as plain text, then optionally a link.

    Parameters
    ----------
    text
        The popup's text (see ``map_text``).
    link
        ``(url, link text)``, shown on a line of its own; both are made inert like ``text``.
    max_width
        Largest width in pixels.
    """
    markup = map_text(text)
    if link is not None:
        url, label = link
        markup += f'<br><a href="{map_text(url)}">{map_text(label)}</a>'
    return folium.Popup(markup, max_width=max_width)


def map_label_icon(
    text: object,
    *,
    css: str,
    icon_size: tuple[int, int],
    icon_anchor: tuple[int, int],
    class_name: str,
    dot: bool = False,
) -> folium.DivIcon:
    """Return a DivIcon that shows ``text`` (plain text, see ``map_text``) in a ``<span class=css>``.

    ``css`` and ``class_name`` are our own class names, never data; ``dot`` puts a ``town-dot`` span first.
    """
    inner = '<span class="town-dot"></span>' if dot else ""
    return folium.DivIcon(
        html=f'<span class="{css}">{inner}{map_text(text)}</span>',
        icon_size=icon_size,
        icon_anchor=icon_anchor,
        class_name=class_name,
    )


def geojson_dict(gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    """Return ``gdf`` (any CRS) as a GeoJSON dict in EPSG:4326 whose text properties are made inert (``map_text``).

    Every GeoJSON a map draws goes through here: its properties are written into the page's script.
    """
    collection = json.loads(gdf.to_crs("EPSG:4326").to_json(drop_id=True))
    for feature in collection["features"]:
        properties = feature.get("properties") or {}
        feature["properties"] = {k: map_text(v) if isinstance(v, str) else v for k, v in properties.items()}
    return collection


def labelled_geojson(
    gdf: gpd.GeoDataFrame, labels: Iterable[object], *, name: str, style_function: Callable[[dict], dict]
) -> folium.GeoJson:
    """Return a GeoJSON layer of ``gdf`` whose features show ``labels`` (plain text) as their tooltips.

    Parameters
    ----------
    gdf
        The features; numeric columns stay as they are (``style_function`` may read them).
    labels
        One tooltip text per row of ``gdf``.
    name
        Name in the layer control (made inert too).
    style_function
        Leaflet path style of a feature (folium's ``style_function``).
    """
    data = gdf.assign(label=[str(label) for label in labels])
    return folium.GeoJson(
        geojson_dict(data),
        name=map_text(name),
        style_function=style_function,
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
    )


def script_json(value: object) -> str:
    """Return ``value`` as compact UTF-8 JSON that can stand inside a ``<script>`` folium renders.

    ``<``, ``>``, ``&``, backtick and ``$`` are written as JSON ``u`` escapes (no ``</script>``, and as with
    ``map_text`` no character from the data that means something in HTML or a template literal), and so is
    each ``{`` that would open a Jinja tag (``{{``, ``{%``, ``{#``; branca renders the script as a Jinja
    template). Outside a JSON string a ``{`` is always followed by ``"`` or ``}``, and a backtick or ``$``
    never stands, so every character replaced is inside a string.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in _SCRIPT_JSON_ESCAPES:
        text = text.replace(char, escape)
    return _JINJA_OPENING.sub(r"\\u007b", text)


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


def public_map(
    district: District,
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    roads: Mapping[str, Any] | None = None,
    tiles: tuple[TileSource, ...] = (),
    datum: DisplayDatum = "wgs84",
    translate: Callable[[str], str] = _identity,
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
        Main roads as a GeoJSON FeatureCollection with ``highway`` and ``name`` properties (see
        ``geo.roadlines.main_roads_geojson``); each road shows its street name as a tooltip. No
        roads are drawn when None.
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

    boundary = _display_gdf(district.boundary, datum)
    minx, miny, maxx, maxy = boundary.total_bounds
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=11,
        tiles=None,
        control_scale=True,
        zoom_snap=0.25,  # fit the district tightly (it is long and narrow)
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
    _add_town_areas(m, district, datum, _)  # over the boundary's white fill
    if roads is not None:
        _add_roads(m, _display_geojson(roads, datum), _)
    _add_town_labels(m, district.towns, datum, name_column, _)

    town_names = dict(zip(district.towns[schema.TOWN_CODE], district.towns[name_column], strict=True))
    for layer in LAYER_LABELS:
        if layer in layers:
            _add_facilities(m, layer, layers[layer], town_names, datum=datum, translate=_, detail_url=detail_url)

    folium.LayerControl(position="bottomright", collapsed=False).add_to(m)
    _Attribution(
        prefix="Leaflet",
        text=_("镇街驻地：GeoNames (CC BY 4.0)；设施、道路、村庄：合成演示数据"),
    ).add_to(m)
    _MapText(
        {
            "zoom_in": _("放大"),
            "zoom_out": _("缩小"),
            "close_popup": _("关闭弹窗"),
            "map": _("%(district)s设施地图") % {"district": district_name},
        }
    ).add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    localize_assets_inplace(m, static_url=static_url)
    return m


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


class _Attribution(MacroElement):
    """Set the attribution prefix (plain text, no external link) and add our data note."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.attributionControl.setPrefix({{ this.prefix|tojson }});
            {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.text|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, *, prefix: str, text: str) -> None:
        super().__init__()
        self._name = "Attribution"
        self.prefix = prefix
        self.text = map_text(text)


class _MapText(MacroElement):
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


def _add_town_areas(m: folium.Map, district: District, datum: DisplayDatum, translate: Callable[[str], str]) -> None:
    folium.GeoJson(
        geojson_dict(_display_gdf(district.town_areas[[schema.TOWN_CODE, "geometry"]], datum)),
        name=translate("镇街范围（近似）"),
        style_function=lambda _f: dict(_TOWN_AREA_STYLE),
        interactive=False,
    ).add_to(m)


def _add_roads(m: folium.Map, roads: Mapping[str, Any], translate: Callable[[str], str]) -> None:
    unnamed = translate("未命名道路")
    features = []
    for feature in roads["features"]:
        properties = {k: map_text(v) if isinstance(v, str) else v for k, v in feature["properties"].items()}
        properties["label"] = map_text(feature["properties"].get("name") or unnamed)
        features.append({**feature, "properties": properties})
    folium.GeoJson(
        {**roads, "features": features},
        name=translate("主要道路（合成）"),
        style_function=_road_style,
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
    ).add_to(m)


def _road_style(feature: dict[str, Any]) -> dict[str, Any]:
    style = _ROAD_STYLES.get(feature["properties"].get("highway"), _ROAD_STYLES["tertiary"])
    return {**style, "opacity": 0.9}


def _add_town_labels(
    m: folium.Map, towns: gpd.GeoDataFrame, datum: DisplayDatum, name_column: str, translate: Callable[[str], str]
) -> None:
    group = folium.FeatureGroup(name=translate("镇街驻地"), control=True)
    lons, lats = _display_xy(towns["seat_lon"].to_numpy(float), towns["seat_lat"].to_numpy(float), datum)
    for row, lon, lat in zip(towns.to_dict("records"), lons, lats, strict=True):
        approximate = str(row["seat_approximate"]).lower() == "true"
        css = "town-seat town-seat-approx" if approximate else "town-seat"
        icon = map_label_icon(
            row[name_column], css=css, icon_size=(96, 18), icon_anchor=(5, 9), class_name="town-label", dot=True
        )
        folium.Marker([lat, lon], icon=icon, interactive=False, keyboard=False).add_to(group)
    group.add_to(m)


def facility_title(name: str, layer_label: str, status_label: str, translate: Callable[[str], str]) -> str:
    """Return a marker's accessible name: the facility's name, type and status."""
    return translate("%(name)s（%(type)s，%(status)s）") % {"name": name, "type": layer_label, "status": status_label}


def _add_facilities(
    m: folium.Map,
    layer: str,
    gdf: gpd.GeoDataFrame,
    town_names: Mapping[str, str],
    *,
    datum: DisplayDatum,
    translate: Callable[[str], str],
    detail_url: Callable[[str, str], str] | None,
) -> None:
    label = translate(LAYER_LABELS[layer])
    lons, lats = _display_xy(gdf[schema.LON].to_numpy(float), gdf[schema.LAT].to_numpy(float), datum)
    facilities = []
    for row, lon, lat in zip(gdf.to_dict("records"), lons, lats, strict=True):
        status = row[schema.STATUS]
        name = str(row[schema.NAME])
        status_label = translate(STATUS_LABELS[status]) if status in STATUS_LABELS else str(status)
        town = town_names.get(str(row[schema.TOWN_CODE]), str(row[schema.TOWN_CODE]))
        address = row.get(schema.ADDRESS)
        lines = [name, f"{label} · {status_label}", town]
        if isinstance(address, str) and address:
            lines.append(address)
        facility = {
            "id": str(row[schema.ID]),
            "lat": round(float(lat), 6),
            "lon": round(float(lon), 6),
            "fill": "pending" if status in PENDING_STATUSES else "ready",
            "title": facility_title(name, label, status_label, translate),
            "lines": lines,
        }
        if detail_url is not None:
            facility["url"] = detail_url(layer, str(row[schema.ID]))
        facilities.append(facility)
    FacilityLayer(
        layer,
        facilities,
        name=translate("%(type)s（%(count)d）") % {"type": label, "count": len(facilities)},
        link_text=translate("查看详情"),
    ).add_to(m)


class FacilityLayer(Layer):
    """One public layer's facilities as keyboard-focusable DivIcon markers, drawn by one small script.

    The data go to the page once as JSON; the script builds each marker with a ``title`` (its
    accessible name), a tooltip and a popup made of text nodes (no HTML from the data is parsed).
    Tab reaches each marker; Enter opens its popup (Leaflet 1.9), which links to the detail page.

    Parameters
    ----------
    layer
        Public layer name; selects the symbol (CSS class ``fac-<layer>``).
    facilities
        One dict per marker: ``id``, ``lat``, ``lon``, ``fill`` (``"ready"`` or ``"pending"``),
        ``title``, ``lines`` (popup text; the first line is the name, shown bold and as tooltip) and
        optionally ``url`` (the detail page, linked from the popup).
    name
        Name in the layer control.
    link_text
        Text of the popup's link to the detail page.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.featureGroup();
            (function (group, layer, facilities, linkText) {
                facilities.forEach(function (f) {
                    var icon = L.divIcon({
                        className: "fac-marker",
                        html: '<span class="fac-symbol fac-' + layer + ' fac-' + f.fill + '"></span>',
                        iconSize: [18, 18],
                        iconAnchor: [9, 9]
                    });
                    var marker = L.marker([f.lat, f.lon], {icon: icon, title: f.title, alt: f.title, keyboard: true});
                    var tip = document.createElement("span");
                    tip.textContent = f.lines[0];
                    marker.bindTooltip(tip);
                    var popup = document.createElement("div");
                    popup.className = "fac-popup";
                    f.lines.forEach(function (line, i) {
                        var el = document.createElement(i === 0 ? "strong" : "div");
                        el.textContent = line;
                        popup.appendChild(el);
                    });
                    if (f.url) {
                        var link = document.createElement("a");
                        link.href = f.url;
                        link.textContent = linkText;
                        popup.appendChild(link);
                    }
                    marker.bindPopup(popup, {maxWidth: 280});
                    marker.on("add", function () {
                        var el = marker.getElement();
                        if (el) {
                            el.setAttribute("aria-label", f.title);
                            el.setAttribute("data-facility", layer + "/" + f.id);
                        }
                    });
                    marker.facilityId = f.id;
                    group.addLayer(marker);
                });
            })({{ this.get_name() }}, {{ this.layer|tojson }}, {{ this.facilities_json }}, {{ this.link_text|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, layer: str, facilities: list[dict[str, Any]], *, name: str, link_text: str = "查看详情") -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "FacilityLayer"
        self.layer = layer
        self.facilities = facilities
        self.link_text = link_text
        self.facilities_json = script_json(facilities)


def _display_xy(lon: np.ndarray, lat: np.ndarray, datum: DisplayDatum) -> tuple[np.ndarray, np.ndarray]:
    """Return WGS-84 coordinates in the display datum (new arrays; GCJ-02 for Amap-like tiles)."""
    if datum == "wgs84":
        return lon.copy(), lat.copy()
    return convert(lon, lat, "wgs84", datum)


def _display_gdf(gdf: gpd.GeoDataFrame, datum: DisplayDatum) -> gpd.GeoDataFrame:
    """Return a copy of ``gdf`` (any CRS) in EPSG:4326, its coordinates in the display datum."""
    out = gdf.to_crs("EPSG:4326")
    if datum == "wgs84":
        return out
    out = out.copy()
    out.geometry = shapely.transform(
        out.geometry.values, lambda xy: np.column_stack(_display_xy(xy[:, 0], xy[:, 1], datum))
    )
    return out


def _display_geojson(collection: Mapping[str, Any], datum: DisplayDatum) -> dict[str, Any]:
    """Return a copy of a GeoJSON FeatureCollection with its coordinates in the display datum."""
    if datum == "wgs84":
        return dict(collection)
    features = []
    for feature in collection["features"]:
        geometry = shapely.geometry.shape(feature["geometry"])
        moved = shapely.transform(geometry, lambda xy: np.column_stack(_display_xy(xy[:, 0], xy[:, 1], datum)))
        features.append({**feature, "geometry": shapely.geometry.mapping(moved)})
    return {**collection, "features": features}
