"""The layers of a planner result map, built once per result as small GeoJSON and fetched on demand.

A result page draws its map from these layers rather than embedding every point in the page: dense
points become counts per hexagon (``geo.hexgrid``, ``DISPLAY_HEX_M`` edge), polygons are simplified for
display (``SIMPLIFY_M``) and every coordinate is rounded to ``DIGITS`` decimals (~1 m). Each layer is a
GeoJSON FeatureCollection whose features carry two properties the page's script reads: ``label`` (the
tooltip, plain text; written by the job, so in zh-CN) and ``style`` (the Leaflet path style over the
layer's own ``style``; points are drawn as circle markers of ``style.radius``). ``RemoteLayer`` is the
folium element that fetches one layer into the map.

The layers of a result are written next to its downloads (``<result folder>/display/<name>.geojson.gz``,
gzip) with an index (``display/index.json``: name → legend text, in the order drawn), so a page reads only
the index and the browser fetches each layer from ``planner.result_layer``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from branca.element import MacroElement
from flask_babel import gettext
from jinja2 import Template
from markupsafe import escape

from geo.hexgrid import axial, hex_polygons
from layers import schema
from webmap.maps.text import script_json

if TYPE_CHECKING:
    import geopandas as gpd

#: Above this many points a point layer is drawn as counts per hexagon.
MAX_POINTS = 1500
#: Edge of the display hexagons, metres (about 690 m across; ~900 hexagons over Bishan).
DISPLAY_HEX_M = 400.0
#: At most about this many hexagons per layer: a larger district gets larger hexagons.
MAX_HEXAGONS = 1200
#: Tolerance of the display simplification of polygons, metres (the service areas' roads are buffered 50 m).
SIMPLIFY_M = 40.0
#: Decimals kept of each longitude and latitude (1e-5° ≈ 1 m).
DIGITS = 5
#: The folder of a result's display layers, under its result folder.
FOLDER = "display"
INDEX = "index.json"


@dataclass(frozen=True)
class Layer:
    """One layer of a result map: its name (in URLs), its legend and its features.

    ``legend`` lists (name, count) pairs: each name an ``N_``-marked zh-CN msgid, translated when a page
    shows it (``legend_text``).
    """

    name: str
    legend: tuple[tuple[str, int], ...]
    features: list[dict[str, Any]]
    style: dict[str, Any] = field(default_factory=dict)

    def collection(self) -> dict[str, Any]:
        """Return the layer as a GeoJSON FeatureCollection; ``style`` (a foreign member) is every feature's base."""
        return {"type": "FeatureCollection", "style": self.style, "features": self.features}


@dataclass(frozen=True)
class PointGroup:
    """A class of points (e.g. covered): the mask of its points, its name for people and its colour."""

    mask: np.ndarray
    name: str
    colour: str


def _rounded(geometry: np.ndarray, digits: int) -> np.ndarray:
    return shapely.transform(geometry, lambda xy: np.round(xy, digits))


def features(geometry: Iterable[Any], labels: Sequence[str], styles: Sequence[dict[str, Any]], *,
             digits: int = DIGITS) -> list[dict]:  # fmt: skip
    """Return GeoJSON features of ``geometry`` (EPSG:4326, rounded to ``digits`` decimals) with labels and styles."""
    geoms = _rounded(np.asarray(list(geometry), dtype=object), digits)
    texts = shapely.to_geojson(geoms) if len(geoms) else []
    return [{"type": "Feature", "geometry": json.loads(text), "properties": {"label": str(label), "style": style}}
            for text, label, style in zip(texts, labels, styles, strict=True)]  # fmt: skip


def hex_counts(points: gpd.GeoDataFrame, groups: Sequence[PointGroup], *, crs: str,
               size: float = DISPLAY_HEX_M) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Count each group's points per hexagon of edge ``size`` (metres in ``crs``).

    Returns
    -------
    tuple of numpy.ndarray
        The hexagons (EPSG:4326 polygons, one per hexagon holding a point) and the counts, shape
        (hexagons, groups).
    """
    projected = points.geometry.to_crs(crs)
    q, r = axial(projected.x.to_numpy(), projected.y.to_numpy(), size)
    keys, inverse = np.unique(np.stack([q, r], axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    counts = np.stack([np.bincount(inverse, weights=np.asarray(g.mask, dtype=float), minlength=len(keys))
                       for g in groups], axis=1).astype(np.int64)  # fmt: skip
    import geopandas as gpd

    hexagons = gpd.GeoSeries(hex_polygons(keys[:, 0], keys[:, 1], size), crs=crs).to_crs(schema.WGS84)
    return hexagons.to_numpy(), counts


def point_layers(name: str, points: gpd.GeoDataFrame, groups: Sequence[PointGroup], *, crs: str,
                 labels: Sequence[str], bad: int = -1, max_points: int = MAX_POINTS,
                 size: float = DISPLAY_HEX_M) -> list[Layer]:  # fmt: skip
    """Return the layers of a set of points in ``groups``: one point layer per group, or counts per hexagon.

    Parameters
    ----------
    name
        Stem of the layers' names (``<name>_<i>`` per group, ``<name>_hex`` for the hexagons).
    points
        The points (EPSG:4326).
    groups
        Classes of the points; together they hold each point once.
    crs
        Projected CRS of the hexagon grid.
    labels
        One tooltip text per point (its id).
    bad
        The group whose share shades a hexagon (the last, e.g. not covered, by default).
    max_points, size
        Above ``max_points`` points, counts per hexagon of edge ``size`` metres (larger if more than
        ``MAX_HEXAGONS`` hexagons would hold points), corners rounded to ~10 m.
    """
    if len(points) <= max_points:
        layers = []
        for i, group in enumerate(groups):
            mask = np.asarray(group.mask, dtype=bool)
            style = {"radius": 3, "color": group.colour, "weight": 1, "fillColor": group.colour, "fillOpacity": 0.8}
            chosen = points.geometry.to_numpy()[mask]
            layers.append(Layer(f"{name}_{i}", ((group.name, int(mask.sum())),),
                                features(chosen, [labels[j] for j in np.flatnonzero(mask)], [style] * len(chosen))))
        return layers
    hexagons, counts = hex_counts(points, groups, crs=crs, size=size)
    if len(hexagons) > MAX_HEXAGONS:  # hexagons in use fall about as the square of their edge grows
        size *= float(np.sqrt(len(hexagons) / MAX_HEXAGONS)) * 1.05
        hexagons, counts = hex_counts(points, groups, crs=crs, size=size)
    share = counts[:, bad] / np.maximum(counts.sum(axis=1), 1)
    colour = groups[bad].colour
    styles = [{"fillOpacity": round(0.1 + 0.7 * float(s), 2)} for s in share]
    texts = ["；".join(f"{g.name}：{int(n)}" for g, n in zip(groups, row, strict=True)) for row in counts]
    legend = tuple((g.name, int(np.asarray(g.mask).sum())) for g in groups)
    base = {"color": colour, "weight": 0.5, "fillColor": colour}
    return [Layer(f"{name}_hex", legend, features(hexagons, texts, styles, digits=DIGITS - 1), base)]


def simplified(gdf: gpd.GeoDataFrame, crs: str, tolerance_m: float = SIMPLIFY_M) -> np.ndarray:
    """Return the geometry of ``gdf`` simplified for display by ``tolerance_m`` metres in ``crs``, EPSG:4326."""
    return gdf.geometry.to_crs(crs).simplify(tolerance_m).to_crs(schema.WGS84).to_numpy()


def write_layers(folder: Path, layers: Sequence[Layer]) -> None:
    """Write ``layers`` (gzip GeoJSON) and their index into ``folder``/display, replacing what was there."""
    out = folder / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        text = json.dumps(layer.collection(), ensure_ascii=False, separators=(",", ":"))
        (out / f"{layer.name}.geojson.gz").write_bytes(gzip.compress(text.encode("utf-8"), 6))
    index = [{"name": layer.name, "legend": [list(part) for part in layer.legend]} for layer in layers]
    (out / INDEX).write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")


def legend_text(legend: Iterable[Sequence[Any]]) -> str:
    """Return a layer's legend (``Layer.legend``, as stored) in the page's language: names with counts."""
    return "；".join(gettext("%(label)s（%(n)s）", label=gettext(name), n=n) for name, n in legend)


def read_index(folder: Path) -> list[dict[str, Any]] | None:
    """Return the index of a result's display layers (name, legend), or None if they were never written."""
    path = folder / FOLDER / INDEX
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def layer_file(folder: Path, name: str) -> Path | None:
    """Return the gzip GeoJSON file of layer ``name`` of a result, or None if it has no such layer."""
    names = {row["name"] for row in read_index(folder) or []}
    return folder / FOLDER / f"{name}.geojson.gz" if name in names else None


class RemoteLayer(MacroElement):
    """Fetch a GeoJSON layer (``Layer.collection``) from ``url`` into the folium ``group`` when the page loads.

    Each feature is drawn with the layer's ``style`` updated by its own (points as circle markers) and its
    ``label`` as a plain-text tooltip. A hidden element ``data-layer-url`` records the request; once drawn it gets
    ``data-features`` (the number of features), or ``data-error`` if the request failed.
    """

    _template = Template(
        """
{% macro html(this, kwargs) %}
<div hidden id="{{ this.get_name() }}" data-layer-url="{{ this.url_html }}"></div>
{% endmacro %}
{% macro script(this, kwargs) %}
(function () {
  var mark = document.getElementById({{ this.id_json }});
  fetch({{ this.url_json }}, {credentials: "same-origin"}).then(function (response) {
    if (!response.ok) { throw new Error(String(response.status)); }
    return response.json();
  }).then(function (data) {
    L.geoJSON(data, {
      pointToLayer: function (feature, latlng) {
        return L.circleMarker(latlng, Object.assign({}, data.style, feature.properties.style));
      },
      style: function (feature) { return Object.assign({}, data.style, feature.properties.style); },
      onEachFeature: function (feature, layer) {
        var text = document.createElement("span");
        text.textContent = feature.properties.label;
        layer.bindTooltip(text);
      }
    }).addTo({{ this.group }});
    mark.setAttribute("data-features", String(data.features.length));
  }).catch(function (error) { mark.setAttribute("data-error", String(error)); });
})();
{% endmacro %}
"""
    )

    def __init__(self, url: str, group: Any) -> None:
        super().__init__()
        self._name = "RemoteLayer"
        self.url_html = str(escape(url))
        self.url_json = script_json(url)
        self.id_json = script_json(self.get_name())
        self.group = group.get_name()
