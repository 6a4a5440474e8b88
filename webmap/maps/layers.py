"""The layers of the public map: facilities (keyboard-focusable markers), roads, town seats, texts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import folium
import geopandas as gpd
from branca.element import MacroElement
from folium.elements import JSCSSMixin
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
    {
        "trunk": N_("干线公路"),
        "primary": N_("主干道"),
        "secondary": N_("次干道"),
        "tertiary": N_("支路（三级）"),
        "residential": N_("街巷"),
    }
)
_ROAD_STYLES = MappingProxyType(
    {
        "trunk": {"color": "#b5542b", "weight": 4},
        "primary": {"color": "#c9803a", "weight": 3.5},
        "secondary": {"color": "#a89a5b", "weight": 2.5},
        "tertiary": {"color": "#9c9c9c", "weight": 1.5},
        "residential": {"color": "#b9b9b9", "weight": 1},
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


class RoadLayer(MacroElement):
    """Draw the district's roads as the base map, fetched per zoom band, with street names as labels.

    The roads come from the app as GeoJSON (``public.roads``), one file per band of
    ``geo.roadlines.ROAD_BANDS``, so no road data sits in the page. Lines are drawn on one canvas and
    labels are plain text in a pane hidden from assistive technology: nothing of the base map is
    interactive, takes a Tab stop or is announced as a control. From ``label_zoom`` each street name in
    view is drawn once, at the middle of its longest stretch in view (or a quarter either side, or another
    stretch): names are placed longest street first and a name that would touch one already placed, a
    control or a town's name, or leave the map, is left out, so no two labels overlap.

    Parameters
    ----------
    bands
        ``{"min_zoom", "url"}`` per band, by ``min_zoom``.
    label_zoom
        First zoom showing street names.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            (function (map, bands, labelZoom, styles) {
                var linePane = map.createPane("roads");
                linePane.style.zIndex = 405;  // over the district's white sheet, under markers
                linePane.style.pointerEvents = "none";
                var labelPane = map.createPane("roadLabels");
                labelPane.style.zIndex = 450;
                labelPane.style.pointerEvents = "none";
                labelPane.setAttribute("aria-hidden", "true");
                var renderer = L.canvas({pane: "roads", padding: 0.3});
                var files = {}, shown = null, lines = null, data = null;
                var labels = L.layerGroup().addTo(map);
                function bandAt(zoom) {
                    var found = bands[0];
                    bands.forEach(function (b) { if (zoom >= b.min_zoom) { found = b; } });
                    return found;
                }
                function style(feature) {
                    var s = styles[feature.properties.highway] || styles.residential;
                    return {color: s.color, weight: s.weight, opacity: 0.9};
                }
                var sizes = {};  // street name -> [width, height] of its label in pixels, measured once
                function measure(names) {
                    var todo = names.filter(function (name) { return !sizes[name]; });
                    if (!todo.length) { return; }
                    var sheet = document.createElement("div");  // hidden, in the label pane: same font as labels
                    sheet.style.cssText = "position: absolute; left: 0; top: 0; visibility: hidden;";
                    var spans = todo.map(function (name) {
                        var holder = document.createElement("div"), text = document.createElement("span");
                        holder.className = "road-label";
                        text.textContent = name;
                        holder.appendChild(text);
                        sheet.appendChild(holder);
                        return text;
                    });
                    labelPane.appendChild(sheet);
                    spans.forEach(function (text, i) {
                        var r = text.getBoundingClientRect();
                        if (r.width > 0) { sizes[todo[i]] = [Math.ceil(r.width), Math.ceil(r.height)]; }
                    });
                    labelPane.removeChild(sheet);
                }
                function sizeOf(name) {  // a map not laid out yet measures 0: guess wide (12 px glyphs, 0.75rem)
                    return sizes[name] || [name.length * 14 + 4, 18];
                }
                var extents = new WeakMap();
                function extent(f) {
                    if (!extents.has(f)) {
                        var box = L.latLngBounds([]);
                        parts(f).forEach(function (part) {
                            part.forEach(function (xy) { box.extend([xy[1], xy[0]]); });
                        });
                        extents.set(f, box);
                    }
                    return extents.get(f);
                }
                function parts(f) {
                    return f.geometry.type === "LineString" ? [f.geometry.coordinates] : f.geometry.coordinates;
                }
                // Each named street's stretches in view, as runs of container points clipped to the map, with
                // their length in pixels; one entry per name, however many features and pieces carry it.
                function streetsInView(screen) {
                    var view = map.getBounds(), streets = {};
                    data.features.forEach(function (f) {
                        var name = f.properties.name;
                        if (!name || !view.intersects(extent(f))) { return; }
                        var street = streets[name] || (streets[name] = {name: name, length: 0, runs: []});
                        parts(f).forEach(function (part) {
                            var run = null, prev = null;
                            part.forEach(function (xy) {
                                var p = map.latLngToContainerPoint([xy[1], xy[0]]);
                                var seg = prev && L.LineUtil.clipSegment(prev, p, screen, false, false);
                                prev = p;
                                if (!seg) { run = null; return; }
                                if (!run || !run.points[run.points.length - 1].equals(seg[0])) {
                                    run = {points: [seg[0]], length: 0};
                                    street.runs.push(run);
                                }
                                run.points.push(seg[1]);
                                run.length += seg[0].distanceTo(seg[1]);
                                street.length += seg[0].distanceTo(seg[1]);
                            });
                        });
                    });
                    return Object.keys(streets).map(function (name) { return streets[name]; })
                        .filter(function (street) { return street.length > 0; });
                }
                function along(run, share) {  // the point at share (0..1) of a run's length
                    var left = run.length * share;
                    for (var i = 1; i < run.points.length; i++) {
                        var a = run.points[i - 1], b = run.points[i], d = a.distanceTo(b);
                        if (d >= left && d > 0) { return a.add(b.subtract(a).multiplyBy(left / d)); }
                        left -= d;
                    }
                    return run.points[run.points.length - 1];
                }
                // Where a street's name may go, best first: the middle of its longest stretch in view, then
                // a quarter either side of it, then the middles of its next two stretches.
                function anchors(street) {
                    var runs = street.runs.slice().sort(function (a, b) { return b.length - a.length; });
                    var out = [along(runs[0], 0.5), along(runs[0], 0.25), along(runs[0], 0.75)];
                    runs.slice(1, 3).forEach(function (run) { out.push(along(run, 0.5)); });
                    return out;
                }
                var GAP = 4;  // pixels kept free between two names and between a name and the map's edge
                // Boxes of what is drawn over the street names, in container pixels: the map's controls, and
                // each town's name where its marker is placed (its drawn box may still glide there: after a
                // zoom, markercluster animates every marker icon's move).
                function taken() {
                    var frame = map.getContainer(), origin = frame.getBoundingClientRect(), boxes = [];
                    frame.querySelectorAll(".leaflet-control").forEach(function (el) {
                        var r = el.getBoundingClientRect(), x = r.left - origin.left, y = r.top - origin.top;
                        boxes.push([x, y, x + r.width, y + r.height]);
                    });
                    frame.querySelectorAll(".town-label").forEach(function (el) {
                        var at = map.layerPointToContainerPoint(L.DomUtil.getPosition(el));
                        at = at.add([el.offsetLeft, el.offsetTop]);
                        boxes.push([at.x, at.y, at.x + el.offsetWidth, at.y + el.offsetHeight]);
                        [].slice.call(el.children).forEach(function (text) {  // the name may run out of its box
                            var x = at.x + text.offsetLeft, y = at.y + text.offsetTop;
                            boxes.push([x, y, x + text.offsetWidth + 1, y + text.offsetHeight + 1]);
                        });
                    });
                    return boxes.filter(function (box) { return box[2] > box[0] && box[3] > box[1]; });
                }
                // One label per street name in view, longest stretch in view first (main roads win), each
                // at the first of its anchors where it fits inside the map without touching a placed one
                // (nor a control or a town's name, which would cover it).
                function drawLabels() {
                    labels.clearLayers();
                    if (!data || map.getZoom() < labelZoom) { return; }
                    var size = map.getSize(), screen = L.bounds([0, 0], size), placed = taken();
                    var streets = streetsInView(screen).sort(function (a, b) {
                        return b.length - a.length || (a.name < b.name ? -1 : 1);
                    });
                    measure(streets.map(function (street) { return street.name; }));
                    function free(box) {
                        return box[0] >= GAP && box[1] >= GAP && box[2] <= size.x - GAP && box[3] <= size.y - GAP
                            && !placed.some(function (o) {
                                return box[0] < o[2] + GAP && o[0] < box[2] + GAP
                                    && box[1] < o[3] + GAP && o[1] < box[3] + GAP;
                            });
                    }
                    streets.forEach(function (street) {
                        var wh = sizeOf(street.name), half = [Math.round(wh[0] / 2), Math.round(wh[1] / 2)];
                        var spot = null, candidates = anchors(street);
                        for (var i = 0; i < candidates.length && !spot; i++) {
                            var p = candidates[i].round();
                            var box = [p.x - half[0], p.y - half[1], p.x - half[0] + wh[0], p.y - half[1] + wh[1]];
                            if (free(box)) { spot = p; placed.push(box); }
                        }
                        if (!spot) { return; }
                        var text = document.createElement("span");
                        text.textContent = street.name;
                        var icon = L.divIcon({className: "road-label", html: text, iconSize: wh, iconAnchor: half});
                        L.marker(map.containerPointToLatLng(spot), {
                            icon: icon, pane: "roadLabels", interactive: false, keyboard: false
                        }).addTo(labels);
                    });
                }
                function update() {
                    var band = bandAt(map.getZoom());
                    if (shown === band.url) { drawLabels(); return; }
                    shown = band.url;
                    if (!files[band.url]) {
                        files[band.url] = fetch(band.url, {credentials: "same-origin"})
                            .then(function (r) { return r.ok ? r.json() : {type: "FeatureCollection", features: []}; });
                    }
                    files[band.url].then(function (collection) {
                        if (shown !== band.url) { return; }
                        if (lines) { map.removeLayer(lines); }
                        data = collection;
                        lines = L.geoJSON(collection, {renderer: renderer, interactive: false, style: style});
                        lines.addTo(map);
                        map.getContainer().setAttribute("data-road-band", band.url);
                        drawLabels();
                    });
                }
                map.on("zoomend moveend", update);
                map.whenReady(update);
            })({{ this._parent.get_name() }}, {{ this.bands|tojson }}, {{ this.label_zoom|tojson }},
               {{ this.styles|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, bands: list[dict[str, Any]], *, label_zoom: int) -> None:
        super().__init__()
        self._name = "RoadLayer"
        self.bands = [{"min_zoom": int(b["min_zoom"]), "url": str(b["url"])} for b in bands]
        self.label_zoom = int(label_zoom)
        self.styles = {k: dict(v) for k, v in _ROAD_STYLES.items()}


class ResponsiveLayerControl(MacroElement):
    """Fold the layer control into its button on a narrow screen, so it does not cover the map.

    On a wide screen the control stays open beside the legend. Below ``max_width`` pixels it starts
    folded (Leaflet's own toggle button, named in the page language) and folds again on a map click.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            (function (map, control, query, label) {
                var toggle = control.getContainer().querySelector(".leaflet-control-layers-toggle");
                if (toggle) {
                    toggle.title = label;
                    toggle.setAttribute("aria-label", label);
                }
                if (window.matchMedia(query).matches) {
                    control.options.collapsed = true;
                    control.collapse();
                    map.on("click", control.collapse, control);
                }
            })({{ this._parent.get_name() }}, {{ this.control }}, {{ this.query|tojson }}, {{ this.label|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, control: str, *, label: str, max_width: int = 600) -> None:
        super().__init__()
        self._name = "ResponsiveLayerControl"
        self.control = control
        self.label = label
        self.query = f"(max-width: {int(max_width)}px)"


def add_roads(m: folium.Map, roads: Mapping[str, Any], translate: Callable[[str], str]) -> None:
    """Draw roads given in the page as an inert layer (the staff route map; the public map fetches them).

    ``roads`` is a GeoJSON FeatureCollection with ``highway`` and ``name`` properties
    (``geo.roadlines.main_roads_geojson``). No tooltip: no road takes a Tab stop before the markers.
    """
    gdf = gpd.GeoDataFrame.from_features(list(roads["features"]), crs=schema.WGS84)
    folium.GeoJson(geojson_dict(gdf), name=map_text(translate("主要道路")), style_function=road_style,
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
        cluster_text=translate("%(count)s 处%(type)s，按回车放大") % {"count": "{count}", "type": label},
    ).add_to(m)


#: Zoom from which facilities are never clustered (a town's streets are readable there).
CLUSTER_UNTIL_ZOOM = 15
#: A layer clusters its markers only when it draws at least this many (a short filtered list stays plain).
CLUSTER_MIN_MARKERS = 20


class FacilityLayer(JSCSSMixin, Layer):
    """One public layer's facilities as keyboard-focusable DivIcon markers, drawn by one small script.

    In a layer of ``CLUSTER_MIN_MARKERS`` or more, markers close together are drawn as one cluster
    (leaflet.markercluster) below ``CLUSTER_UNTIL_ZOOM``: a focusable button named with its count and
    type; Enter, Space or a click zooms in until it splits.

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
            {% if this.cluster %}
            var {{ this.get_name() }} = L.markerClusterGroup({
                disableClusteringAtZoom: {{ this.cluster_until }},
                maxClusterRadius: 45,
                showCoverageOnHover: false,
                spiderfyOnMaxZoom: false,
                iconCreateFunction: function (cluster) {
                    return L.divIcon({
                        className: "fac-cluster fac-cluster-{{ this.layer }}",
                        html: "<span>" + cluster.getChildCount() + "</span>",
                        iconSize: [30, 30]
                    });
                }
            });
            {% else %}
            var {{ this.get_name() }} = L.featureGroup();
            {% endif %}
            {{ this.get_name() }}.clusterText = {{ this.cluster_text|tojson }};
            (function (group, layer, facilities, linkText) {
                var clusterText = group.clusterText;
                if (group._featureGroup) {  // a cluster group: name each cluster and let Enter/Space open it
                    group._featureGroup.on("layeradd", function (e) { name({layer: e.layer}); });
                }
                function name(e) {
                    var cluster = e && e.layer;
                    if (!cluster || !cluster.getChildCount || !cluster.getElement()) { return; }
                    var el = cluster.getElement();
                    el.setAttribute("aria-label", clusterText.replace("{count}", cluster.getChildCount()));
                    el.title = el.getAttribute("aria-label");
                    if (!el.dataset.keys) {
                        el.dataset.keys = "1";
                        el.addEventListener("keydown", function (k) {
                            if (k.key === "Enter" || k.key === " ") {
                                k.preventDefault();
                                cluster.zoomToBounds({padding: [30, 30]});
                            }
                        });
                    }
                }
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
                    marker.clusterGroup = group._featureGroup ? group : null;
                    group.addLayer(marker);
                });
            })({{ this.get_name() }}, {{ this.layer|tojson }}, {{ this.facilities_json }}, {{ this.link_text|tojson }});
        {% endmacro %}
        """
    )

    default_js = [("markercluster", "leaflet.markercluster.js")]
    default_css = [("markercluster_css", "MarkerCluster.css")]

    def __init__(
        self,
        layer: str,
        facilities: list[dict[str, Any]],
        *,
        name: str,
        link_text: str = "查看详情",
        cluster_text: str = "{count} 处，按回车放大",
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "FacilityLayer"
        self.cluster_text = cluster_text
        self.cluster_until = CLUSTER_UNTIL_ZOOM
        self.cluster = len(facilities) >= CLUSTER_MIN_MARKERS
        self.layer = layer
        self.facilities = facilities
        self.link_text = link_text
        self.facilities_json = script_json(facilities)
