"""Build folium maps as plain functions (no Flask), and read the main roads drawn on them."""

from __future__ import annotations

import bz2
import html
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any

import folium
import shapely
from branca.element import Element, MacroElement
from folium.map import Layer
from folium.template import Template
from shapely.geometry import LineString, MultiLineString

from layers import schema
from webmap.assets import default_static_url, localize_assets_inplace

if TYPE_CHECKING:
    import geopandas as gpd

    from layers.district import District

logger = logging.getLogger(__name__)

#: Highway classes drawn on the public map (the rest of the network would make the page heavy).
MAIN_HIGHWAYS = ("trunk", "primary", "secondary", "tertiary")

#: User-facing names (zh-CN) of the public layers, in legend order.
LAYER_LABELS = MappingProxyType(
    {
        schema.SERVICE_CENTRE: "渝馨家园（残疾人服务中心）",
        schema.REHAB_STATION: "康复站",
        schema.ACCESSIBLE_TOILET: "无障碍厕所",
        schema.SPORTS_SITE: "文化体育示范点",
    }
)

#: User-facing names (zh-CN) of every status of the public layers.
STATUS_LABELS = MappingProxyType(
    {
        "planned": "规划中",
        "open": "开放",
        "closed": "已关闭",
        "under_construction": "在建",
        "completed": "已建成",
        "accepted": "已验收",
    }
)

#: Statuses drawn as hollow symbols: the facility is not usable yet.
PENDING_STATUSES = frozenset({"planned", "under_construction"})

ROAD_LABELS = MappingProxyType(
    {"trunk": "干线公路", "primary": "主干道", "secondary": "次干道", "tertiary": "支路（三级）"}
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


@dataclass(frozen=True)
class MapParts:
    """The three pieces of a rendered folium map, for our own Jinja template.

    ``header`` goes in ``<head>`` (asset links, styles), ``html`` where the map should appear and
    ``script`` at the end of ``<body>``.
    """

    header: str
    html: str
    script: str


def public_map(
    district: District,
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    roads: Mapping[str, Any] | None = None,
    tile_url: str | None = None,
    tile_attr: str | None = None,
    static_url: Callable[[str], str] = default_static_url,
) -> folium.Map:
    """Build the public map: district, towns, main roads and the public facility layers.

    Parameters
    ----------
    district
        The district; its boundary, towns (seat points) and town areas are drawn (EPSG:4326).
    layers
        Public layer name (``layers.schema.PUBLIC_LAYERS``) → its rows as from ``Store.features``
        (EPSG:4326). Every row becomes one marker; filter statuses before calling.
    roads
        Main roads as a GeoJSON FeatureCollection with a ``highway`` property (see
        ``main_roads_from_osm``); no roads are drawn when None.
    tile_url
        Leaflet URL template of a tile server (e.g. an intranet one); no base tiles when None.
    tile_attr
        Attribution of the tiles; required with ``tile_url``.
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
        ``tile_url`` comes without ``tile_attr``.
    """
    not_public = sorted(set(layers) - set(schema.PUBLIC_LAYERS))
    if not_public:
        msg = (
            f"`layers` may only hold public layers {list(schema.PUBLIC_LAYERS)!r}; got {not_public!r}. "
            "Households and other sensitive layers never go on the public map."
        )
        raise ValueError(msg)
    if tile_url and not tile_attr:
        msg = f"`tile_attr` is required with `tile_url` {tile_url!r}; set TILE_ATTR to the tiles' attribution."
        raise ValueError(msg)

    minx, miny, maxx, maxy = district.boundary.total_bounds
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=11,
        tiles=None,
        control_scale=True,
        zoom_snap=0.25,  # fit the district tightly (it is long and narrow)
    )
    if tile_url:
        folium.TileLayer(tiles=tile_url, attr=tile_attr, name="底图", overlay=False, control=False).add_to(m)

    # Without tiles the district is a white sheet on grey; with tiles only its outline is drawn.
    boundary_style = {**_BOUNDARY_STYLE, "fill": not tile_url}
    folium.GeoJson(
        _geo_dict(district.boundary),
        name=f"{district.name}区界",
        style_function=lambda _f: boundary_style,
        interactive=False,
        attribution="区界：天地图",
    ).add_to(m)
    _add_town_areas(m, district)  # over the boundary's white fill
    if roads is not None:
        _add_roads(m, roads)
    _add_town_labels(m, district.towns)

    town_names = dict(zip(district.towns[schema.TOWN_CODE], district.towns["name"], strict=True))
    for layer in LAYER_LABELS:
        if layer in layers:
            _add_facilities(m, layer, layers[layer], town_names)

    folium.LayerControl(position="bottomright", collapsed=False).add_to(m)
    _Attribution(prefix="Leaflet", text="镇街驻地：GeoNames (CC BY 4.0)；设施、道路、村庄：合成演示数据").add_to(m)
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


def main_roads_from_osm(
    path: str | Path,
    *,
    highways: Iterable[str] = MAIN_HIGHWAYS,
    tolerance_deg: float = 0.0001,
) -> dict[str, Any]:
    """Read the main roads of an OSM XML file (``.osm`` or ``.osm.bz2``) as light GeoJSON.

    Ways of one ``highway`` class are merged into one MultiLineString (connected ways joined),
    simplified and rounded, so the page carries a few features instead of a thousand.

    Parameters
    ----------
    path
        OSM XML file; node coordinates are WGS-84.
    highways
        ``highway`` tag values to keep, in drawing order (first is drawn first).
    tolerance_deg
        Douglas–Peucker tolerance in degrees (0.0001° ≈ 10 m); coordinates are rounded to 5 decimals.

    Returns
    -------
    dict
        A GeoJSON FeatureCollection with one feature per class present, properties ``highway`` and
        ``ways`` (number of OSM ways merged).
    """
    path = Path(path)
    keep = tuple(highways)
    nodes: dict[str, tuple[float, float]] = {}
    lines: dict[str, list[LineString]] = {highway: [] for highway in keep}
    n_ways = 0
    with _open_osm(path) as f:
        for _event, elem in ET.iterparse(f, events=("end",)):
            if elem.tag == "node":
                nodes[elem.get("id")] = (float(elem.get("lon")), float(elem.get("lat")))
                elem.clear()
            elif elem.tag == "way":
                n_ways += 1
                highway = next((t.get("v") for t in elem.iter("tag") if t.get("k") == "highway"), None)
                if highway in lines:
                    coords = [nodes[r] for r in (nd.get("ref") for nd in elem.iter("nd")) if r in nodes]
                    if len(coords) >= 2:
                        lines[highway].append(LineString(coords))
                elem.clear()
    features = [_road_feature(highway, ways, tolerance_deg) for highway, ways in lines.items() if ways]
    logger.info(
        "Read %d main road ways (of %d ways) from %r",
        sum(len(ways) for ways in lines.values()),
        n_ways,
        str(path),
    )
    return {"type": "FeatureCollection", "features": features}


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
        self.text = html.escape(text)


def _add_town_areas(m: folium.Map, district: District) -> None:
    folium.GeoJson(
        _geo_dict(district.town_areas[[schema.TOWN_CODE, "geometry"]]),
        name="镇街范围（近似）",
        style_function=lambda _f: dict(_TOWN_AREA_STYLE),
        interactive=False,
    ).add_to(m)


def _add_roads(m: folium.Map, roads: Mapping[str, Any]) -> None:
    folium.GeoJson(
        dict(roads),
        name="主要道路（合成）",
        style_function=_road_style,
        interactive=False,
    ).add_to(m)


def _road_style(feature: dict[str, Any]) -> dict[str, Any]:
    style = _ROAD_STYLES.get(feature["properties"].get("highway"), _ROAD_STYLES["tertiary"])
    return {**style, "opacity": 0.9}


def _add_town_labels(m: folium.Map, towns: gpd.GeoDataFrame) -> None:
    group = folium.FeatureGroup(name="镇街驻地", control=True)
    for row in towns.itertuples(index=False):
        approximate = str(row.seat_approximate).lower() == "true"
        css = "town-seat town-seat-approx" if approximate else "town-seat"
        label = html.escape(str(row.name))
        icon = folium.DivIcon(
            html=f'<span class="{css}"><span class="town-dot"></span>{label}</span>',
            icon_size=(96, 18),
            icon_anchor=(5, 9),
            class_name="town-label",
        )
        folium.Marker([row.seat_lat, row.seat_lon], icon=icon, interactive=False, keyboard=False).add_to(group)
    group.add_to(m)


def _add_facilities(m: folium.Map, layer: str, gdf: gpd.GeoDataFrame, town_names: Mapping[str, str]) -> None:
    label = LAYER_LABELS[layer]
    facilities = []
    for row in gdf.to_dict("records"):
        status = row[schema.STATUS]
        name = str(row[schema.NAME])
        status_label = STATUS_LABELS.get(status, status)
        town = town_names.get(str(row[schema.TOWN_CODE]), str(row[schema.TOWN_CODE]))
        address = row.get(schema.ADDRESS)
        lines = [name, f"{label} · {status_label}", town]
        if isinstance(address, str) and address:
            lines.append(address)
        facilities.append(
            {
                "id": str(row[schema.ID]),
                "lat": round(float(row[schema.LAT]), 6),
                "lon": round(float(row[schema.LON]), 6),
                "fill": "pending" if status in PENDING_STATUSES else "ready",
                "title": f"{name}（{label}，{status_label}）",
                "lines": lines,
            }
        )
    FacilityLayer(layer, facilities, name=f"{label}（{len(facilities)}）").add_to(m)


class FacilityLayer(Layer):
    """One public layer's facilities as keyboard-focusable DivIcon markers, drawn by one small script.

    The data go to the page once as JSON; the script builds each marker with a ``title`` (its
    accessible name), a tooltip and a popup made of text nodes (no HTML from the data is parsed).

    Parameters
    ----------
    layer
        Public layer name; selects the symbol (CSS class ``fac-<layer>``).
    facilities
        One dict per marker: ``id``, ``lat``, ``lon``, ``fill`` (``"ready"`` or ``"pending"``),
        ``title`` and ``lines`` (popup text; the first line is the name, shown bold and as tooltip).
    name
        Name in the layer control.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.featureGroup();
            (function (group, layer, facilities) {
                facilities.forEach(function (f) {
                    var icon = L.divIcon({
                        className: "fac-marker",
                        html: '<span class="fac-symbol fac-' + layer + ' fac-' + f.fill + '"></span>',
                        iconSize: [18, 18],
                        iconAnchor: [9, 9]
                    });
                    var marker = L.marker([f.lat, f.lon], {icon: icon, title: f.title, keyboard: true});
                    var tip = document.createElement("span");
                    tip.textContent = f.lines[0];
                    marker.bindTooltip(tip);
                    var popup = document.createElement("div");
                    f.lines.forEach(function (line, i) {
                        var el = document.createElement(i === 0 ? "strong" : "div");
                        el.textContent = line;
                        popup.appendChild(el);
                    });
                    marker.bindPopup(popup, {maxWidth: 280});
                    marker.facilityId = f.id;
                    group.addLayer(marker);
                });
            })({{ this.get_name() }}, {{ this.layer|tojson }}, {{ this.facilities_json }});
        {% endmacro %}
        """
    )

    def __init__(self, layer: str, facilities: list[dict[str, Any]], *, name: str) -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "FacilityLayer"
        self.layer = layer
        self.facilities = facilities
        # UTF-8 JSON (half the size of \\u escapes), safe inside <script>: no "<", ">" or "&" left.
        self.facilities_json = (
            json.dumps(facilities, ensure_ascii=False, separators=(",", ":"))
            .replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
        )


def _geo_dict(gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    return json.loads(gdf.to_crs("EPSG:4326").to_json(drop_id=True))


def _road_feature(highway: str, ways: list[LineString], tolerance_deg: float) -> dict[str, Any]:
    merged = shapely.line_merge(MultiLineString(ways)).simplify(tolerance_deg, preserve_topology=False)
    parts = [merged] if isinstance(merged, LineString) else list(merged.geoms)
    coordinates = [[[round(x, 5), round(y, 5)] for x, y in part.coords] for part in parts if not part.is_empty]
    return {
        "type": "Feature",
        "properties": {"highway": highway, "ways": len(ways)},
        "geometry": {"type": "MultiLineString", "coordinates": coordinates},
    }


def _open_osm(path: Path) -> IO[bytes]:
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    return path.open("rb")
