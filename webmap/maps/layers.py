"""The layers of the public map: facilities (keyboard-focusable markers), main roads, town seats, texts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import folium
import geopandas as gpd
from branca.element import MacroElement
from folium.map import Layer
from folium.template import Template

from layers import schema
from webmap.i18n import N_
from webmap.maps.base import DisplayDatum, display_xy
from webmap.maps.text import geojson_dict, map_label_icon, map_text, script_json

if TYPE_CHECKING:
    import geopandas as gpd

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


class Attribution(MacroElement):
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


def add_roads(m: folium.Map, roads: Mapping[str, Any], translate: Callable[[str], str]) -> None:
    """Draw the main roads as an inert layer: no tooltip, so no road takes a Tab stop before the facilities.

    ``roads`` is a GeoJSON FeatureCollection with ``highway`` and ``name`` properties
    (``geo.roadlines.main_roads_geojson``); the names are made inert (``map_text``) with the rest.
    """
    gdf = gpd.GeoDataFrame.from_features(list(roads["features"]), crs=schema.WGS84)
    folium.GeoJson(geojson_dict(gdf), name=map_text(translate("主要道路（合成）")), style_function=road_style,
                   interactive=False).add_to(m)  # fmt: skip


def road_style(feature: dict[str, Any]) -> dict[str, Any]:
    """Return the Leaflet style of a road feature by its ``highway`` class."""
    style = _ROAD_STYLES.get(feature["properties"].get("highway"), _ROAD_STYLES["tertiary"])
    return {**style, "opacity": 0.9}


def add_town_labels(
    m: folium.Map, towns: gpd.GeoDataFrame, datum: DisplayDatum, name_column: str, translate: Callable[[str], str]
) -> None:
    """Label each town at its seat (``seat_lon``/``seat_lat``; approximate seats styled apart)."""
    group = folium.FeatureGroup(name=translate("镇街驻地"), control=True)
    lons, lats = display_xy(towns["seat_lon"].to_numpy(float), towns["seat_lat"].to_numpy(float), datum)
    for row, lon, lat in zip(towns.to_dict("records"), lons, lats, strict=True):
        if lon != lon or lat != lat:  # NaN: this town's seat is unknown
            continue
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


def add_facilities(
    m: folium.Map,
    layer: str,
    gdf: gpd.GeoDataFrame,
    town_names: Mapping[str, str],
    *,
    datum: DisplayDatum,
    translate: Callable[[str], str],
    detail_url: Callable[[str, str], str] | None,
) -> None:
    """Add one public layer's facilities as a ``FacilityLayer`` (name, type, status, town, address)."""
    label = translate(LAYER_LABELS[layer])
    lons, lats = display_xy(gdf[schema.LON].to_numpy(float), gdf[schema.LAT].to_numpy(float), datum)
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
                    marker.facilityKey = layer + "/" + f.id;  // #facility=<layer>/<id> opens it
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
