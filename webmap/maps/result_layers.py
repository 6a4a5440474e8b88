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

Detail on zoom: a layer of hexagon counts also gets finer levels (``ZOOM_LEVELS``: hexagons of 150, 50
and 20 m from map zoom 13, 15 and 17 on), each stored as a table of cells (``display/<name>.<level>.npy``:
Web-Mercator tile, axial q and r, the count of each group) sorted by tile. The page asks for the tiles in
view of the level of its zoom (``tile_collection``); a cell belongs to the one tile holding its centre,
so a tile holds at most (tile area ÷ hexagon area) cells however dense the points (``ZoomLevel.max_cells``)
and every level's cells count every point exactly once.
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

from geo.hexgrid import axial, hex_centres, hex_polygons, tile_xy
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
class ZoomLevel:
    """A finer level of a layer of hexagon counts, sent per map tile.

    From map zoom ``min_zoom`` on, hexagons of edge ``edge_m`` metres, sent per Web-Mercator tile of zoom
    ``tile_zoom`` (each cell in the tile holding its centre).
    """

    min_zoom: int
    edge_m: float
    tile_zoom: int

    def max_cells(self, lat: float) -> int:
        """Return the most cells one tile can hold at latitude ``lat``: its area over a hexagon's, plus a rim."""
        side = 40_075_016.7 * np.cos(np.deg2rad(lat)) / 2**self.tile_zoom  # metres on the ground
        width = np.sqrt(3.0) * self.edge_m  # across the flats
        return int(np.ceil((side + width) * (side + 2 * self.edge_m) / (1.5 * np.sqrt(3.0) * self.edge_m**2)))


#: The finer levels of every layer of hexagon counts, coarse to fine: district zoom (below 13) keeps the
#: layer's own hexagons (``DISPLAY_HEX_M``); a tile holds at most ~330, ~720 and ~290 cells (Bishan's
#: latitude), each a few hundred bytes of GeoJSON.
ZOOM_LEVELS = (ZoomLevel(13, 150.0, 13), ZoomLevel(15, 50.0, 14), ZoomLevel(17, 20.0, 16))


@dataclass(frozen=True)
class ZoomCells:
    """The finer levels of a layer of hexagon counts: per level a table of cells sorted by tile.

    ``cells[i]`` is a structured array with ``tile`` (x · 2**tile_zoom + y), ``q``, ``r`` and ``n`` (the
    count of each group, in the order of ``groups``: (name msgid, colour)); ``bad`` is the group whose
    share shades a cell; ``crs`` the projected CRS of the grid; ``coarse_m`` the edge of the layer's own
    hexagons (below the first level's zoom).
    """

    crs: str
    groups: tuple[tuple[str, str], ...]
    bad: int
    coarse_m: float
    levels: tuple[ZoomLevel, ...]
    cells: tuple[np.ndarray, ...]

    def meta(self) -> dict[str, Any]:
        """Return what the index keeps of it (all but the cells)."""
        return {"crs": self.crs, "groups": [list(g) for g in self.groups], "bad": self.bad, "coarse_m": self.coarse_m,
                "levels": [{"min_zoom": lv.min_zoom, "edge_m": lv.edge_m, "tile_zoom": lv.tile_zoom}
                           for lv in self.levels]}  # fmt: skip


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
    zoom: ZoomCells | None = None

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


def cell_counts(x: np.ndarray, y: np.ndarray, masks: Sequence[np.ndarray],
                size: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Count the points of each mask per hexagon of edge ``size`` (``x``, ``y`` projected, metres).

    Returns
    -------
    tuple of numpy.ndarray
        The axial keys (q, r) of the hexagons holding a point, shape (hexagons, 2), and the counts,
        shape (hexagons, masks); each point is in exactly one hexagon.
    """
    q, r = axial(x, y, size)
    keys, inverse = np.unique(np.stack([q, r], axis=1).reshape(-1, 2), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    counts = np.stack([np.bincount(inverse, weights=np.asarray(m, dtype=float), minlength=len(keys))
                       for m in masks], axis=1).astype(np.int64)  # fmt: skip
    return keys, counts.reshape(len(keys), len(masks))


def hex_wgs84(q: np.ndarray, r: np.ndarray, size: float, crs: str) -> np.ndarray:
    """Return the hexagons (axial ``q``, ``r``, edge ``size`` in ``crs``) as EPSG:4326 polygons."""
    import geopandas as gpd

    return gpd.GeoSeries(hex_polygons(q, r, size), crs=crs).to_crs(schema.WGS84).to_numpy()


def level_cells(x: np.ndarray, y: np.ndarray, masks: Sequence[np.ndarray], level: ZoomLevel,
                crs: str) -> np.ndarray:  # fmt: skip
    """Return the cells of ``level`` holding the points (projected ``x``, ``y`` in ``crs``), sorted by tile.

    A structured array (``ZoomCells.cells``): ``tile``, ``q``, ``r`` and ``n`` (counts per mask); the
    tile of a cell is the Web-Mercator tile at ``level.tile_zoom`` holding its centre.
    """
    from pyproj import Transformer

    keys, counts = cell_counts(x, y, masks, level.edge_m)
    cx, cy = hex_centres(keys[:, 0], keys[:, 1], level.edge_m)
    lon, lat = Transformer.from_crs(crs, schema.WGS84, always_xy=True).transform(cx, cy)
    tx, ty = tile_xy(lon, lat, level.tile_zoom)
    dtype = [("tile", np.int64), ("q", np.int64), ("r", np.int64), ("n", np.int64, (len(masks),))]
    cells = np.zeros(len(keys), dtype=dtype)
    cells["tile"], cells["q"], cells["r"], cells["n"] = tx * 2**level.tile_zoom + ty, keys[:, 0], keys[:, 1], counts
    return cells[np.argsort(cells["tile"], kind="stable")]


def hex_style(colour: str) -> dict[str, Any]:
    """Return the base style of a layer of hexagon counts (and of its finer levels) in ``colour``."""
    return {"color": colour, "weight": 0.5, "fillColor": colour}


def hex_features(hexagons: np.ndarray, counts: np.ndarray, names: Sequence[str], bad: int) -> list[dict]:
    """Return the GeoJSON features of hexagons (EPSG:4326) with their counts per group (``names``).

    Each is labelled "name：count；..." and shaded by the share of group ``bad`` (fill opacity 0.1–0.8).
    """
    share = counts[:, bad] / np.maximum(counts.sum(axis=1), 1)
    styles = [{"fillOpacity": round(0.1 + 0.7 * float(s), 2)} for s in share]
    texts = ["；".join(f"{name}：{int(n)}" for name, n in zip(names, row, strict=True)) for row in counts]
    return features(hexagons, texts, styles, digits=DIGITS - 1)


def point_layers(name: str, points: gpd.GeoDataFrame, groups: Sequence[PointGroup], *, crs: str,
                 labels: Sequence[str], bad: int = -1, max_points: int = MAX_POINTS,
                 size: float = DISPLAY_HEX_M, levels: Sequence[ZoomLevel] = ZOOM_LEVELS) -> list[Layer]:  # fmt: skip
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
    levels
        The finer levels of the hexagon counts (``ZoomCells``), fetched per tile as the map zooms in.
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
    projected = points.geometry.to_crs(crs)
    x, y = projected.x.to_numpy(), projected.y.to_numpy()
    masks = [np.asarray(g.mask, dtype=bool) for g in groups]
    keys, counts = cell_counts(x, y, masks, size)
    if len(keys) > MAX_HEXAGONS:  # hexagons in use fall about as the square of their edge grows
        size *= float(np.sqrt(len(keys) / MAX_HEXAGONS)) * 1.05
        keys, counts = cell_counts(x, y, masks, size)
    bad = bad % len(groups)
    colour = groups[bad].colour
    legend = tuple((g.name, int(m.sum())) for g, m in zip(groups, masks, strict=True))
    hexagons = hex_wgs84(keys[:, 0], keys[:, 1], size, crs)
    finer = tuple(lv for lv in levels if lv.edge_m < size)
    zoom = ZoomCells(crs, tuple((g.name, g.colour) for g in groups), bad, round(size, 1), finer,
                     tuple(level_cells(x, y, masks, lv, crs) for lv in finer)) if finer else None  # fmt: skip
    shapes = hex_features(hexagons, counts, [g.name for g in groups], bad)
    return [Layer(f"{name}_hex", legend, shapes, hex_style(colour), zoom)]


def simplified(gdf: gpd.GeoDataFrame, crs: str, tolerance_m: float = SIMPLIFY_M) -> np.ndarray:
    """Return the geometry of ``gdf`` simplified for display by ``tolerance_m`` metres in ``crs``, EPSG:4326."""
    return gdf.geometry.to_crs(crs).simplify(tolerance_m).to_crs(schema.WGS84).to_numpy()


def write_layers(folder: Path, layers: Sequence[Layer]) -> None:
    """Write ``layers`` (gzip GeoJSON) and their index into ``folder``/display, replacing what was there."""
    out = folder / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for layer in layers:
        text = json.dumps(layer.collection(), ensure_ascii=False, separators=(",", ":"))
        (out / f"{layer.name}.geojson.gz").write_bytes(gzip.compress(text.encode("utf-8"), 6))
        entry: dict[str, Any] = {"name": layer.name, "legend": [list(part) for part in layer.legend]}
        if layer.zoom is not None:
            for i, cells in enumerate(layer.zoom.cells):
                np.save(out / f"{layer.name}.{i}.npy", cells, allow_pickle=False)
            entry["zoom"] = layer.zoom.meta()
        index.append(entry)
    (out / INDEX).write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")


def legend_text(legend: Iterable[Sequence[Any]], zoom: dict[str, Any] | None = None) -> str:
    """Return a layer's legend (``Layer.legend``, as stored) in the page's language: names with counts.

    With ``zoom`` (``ZoomCells.meta``, as stored) it also says what a cell shows and its sizes by zoom.
    """
    text = "；".join(gettext("%(label)s（%(n)s）", label=gettext(name), n=n) for name, n in legend)
    if zoom is None:
        return text
    sizes = " → ".join(f"{edge:.0f}" for edge in [zoom["coarse_m"], *(lv["edge_m"] for lv in zoom["levels"])])
    return text + gettext("；每个六边形显示其中各类点的个数，颜色越深未覆盖的比例越高；边长 %(sizes)s 米，"
                          "随地图放大变细", sizes=sizes)  # fmt: skip


def read_index(folder: Path) -> list[dict[str, Any]] | None:
    """Return the index of a result's display layers (name, legend), or None if they were never written."""
    path = folder / FOLDER / INDEX
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def layer_file(folder: Path, name: str) -> Path | None:
    """Return the gzip GeoJSON file of layer ``name`` of a result, or None if it has no such layer."""
    names = {row["name"] for row in read_index(folder) or []}
    return folder / FOLDER / f"{name}.geojson.gz" if name in names else None


def _level_table(folder: Path, name: str, level: int) -> tuple[dict[str, Any], np.ndarray] | None:
    entry = next((row for row in read_index(folder) or [] if row["name"] == name), None)
    zoom = (entry or {}).get("zoom")
    if zoom is None or not 0 <= level < len(zoom["levels"]):
        return None
    path = folder / FOLDER / f"{name}.{level}.npy"
    return (zoom, np.load(path, mmap_mode="r", allow_pickle=False)) if path.is_file() else None


def tile_collection(folder: Path, name: str, level: int, x: int, y: int) -> dict[str, Any] | None:
    """Return the cells of finer level ``level`` of layer ``name`` whose centre is in tile ``x``, ``y``.

    A GeoJSON FeatureCollection like the layer's own (``style``, each hexagon labelled with its counts);
    empty for a tile without cells; None if the layer has no such level.
    """
    found = _level_table(folder, name, level)
    if found is None:
        return None
    zoom, cells = found
    lv = zoom["levels"][level]
    n = 2 ** int(lv["tile_zoom"])
    if not (0 <= x < n and 0 <= y < n):
        chosen = cells[:0]
    else:
        tiles = cells["tile"]
        key = x * n + y
        chosen = cells[int(np.searchsorted(tiles, key, "left")) : int(np.searchsorted(tiles, key, "right"))]
    names = [group[0] for group in zoom["groups"]]
    colour = zoom["groups"][zoom["bad"]][1]
    hexagons = hex_wgs84(np.asarray(chosen["q"]), np.asarray(chosen["r"]), float(lv["edge_m"]), zoom["crs"])
    counts = np.asarray(chosen["n"]).reshape(len(chosen), len(names))
    return {"type": "FeatureCollection", "style": hex_style(colour),
            "features": hex_features(hexagons, counts, names, int(zoom["bad"])) if len(chosen) else []}  # fmt: skip


def level_tiles(folder: Path, name: str, level: int) -> list[tuple[int, int, int]]:
    """Return the tiles (x, y, cells) of finer level ``level`` of layer ``name`` holding cells, fullest first."""
    found = _level_table(folder, name, level)
    if found is None:
        return []
    zoom, cells = found
    n = 2 ** int(zoom["levels"][level]["tile_zoom"])
    keys, sizes = np.unique(np.asarray(cells["tile"]), return_counts=True)
    order = np.argsort(-sizes, kind="stable")
    return [(int(keys[i] // n), int(keys[i] % n), int(sizes[i])) for i in order]


class RemoteLayer(MacroElement):
    """Fetch a GeoJSON layer (``Layer.collection``) from ``url`` into the folium ``group`` when the page loads.

    Each feature is drawn with the layer's ``style`` updated by its own (points as circle markers) and its
    ``label`` as a plain-text tooltip. A hidden element ``data-layer-url`` records the request; once drawn it gets
    ``data-features`` (the number of features), or ``data-error`` if a request failed.

    With ``levels`` (``ZoomCells.meta()["levels"]``) the layer has finer hexagons: when the map's zoom
    reaches a level's ``min_zoom`` the page shows that level instead, fetching from
    ``url?level=i&x=..&y=..`` each tile (at the level's ``tile_zoom``) in view not fetched before, on every
    zoom or move. The element then records ``data-level`` (0: the layer's own hexagons, i + 1: level i),
    ``data-level-features`` (features of the level shown, drawn so far), ``data-cell-m`` (its hexagon edge)
    and ``data-pending`` (tile requests under way).
    """

    _template = Template(
        """
{% macro html(this, kwargs) %}
<div hidden id="{{ this.get_name() }}" data-layer-url="{{ this.url_html }}"></div>
{% endmacro %}
{% macro script(this, kwargs) %}
(function () {
  var mark = document.getElementById({{ this.id_json }});
  var url = {{ this.url_json }}, levels = {{ this.levels_json }}, parent = {{ this.group }};
  function get(address) {
    return fetch(address, {credentials: "same-origin"}).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    });
  }
  function draw(data, target) {
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
    }).addTo(target);
    return data.features.length;
  }
  var coarse = L.featureGroup().addTo(parent), drawn = [0], groups = [coarse], asked = [{}], pending = 0, shown = 0;
  levels.forEach(function () { groups.push(L.featureGroup()); asked.push({}); drawn.push(0); });
  function failed(error) { mark.setAttribute("data-error", String(error)); }
  function note() {
    if (!levels.length) { return; }
    mark.setAttribute("data-level", String(shown));
    mark.setAttribute("data-level-features", String(drawn[shown]));
    mark.setAttribute("data-cell-m", String(shown ? levels[shown - 1].edge_m : {{ this.coarse_json }}));
    mark.setAttribute("data-pending", String(pending));
  }
  get(url).then(function (data) {
    drawn[0] = draw(data, coarse);
    mark.setAttribute("data-features", String(drawn[0]));
    note();
  }).catch(failed);
  if (!levels.length) { return; }
  var map = {{ this.map }};
  function fetchTile(at, x, y) {
    pending += 1;
    get(url + "?level=" + (at - 1) + "&x=" + x + "&y=" + y).then(function (data) {
      drawn[at] += draw(data, groups[at]);
    }).catch(failed).then(function () { pending -= 1; note(); });
  }
  function update() {
    var at = 0, zoom = map.getZoom();
    levels.forEach(function (level, i) { if (zoom >= level.min_zoom) { at = i + 1; } });
    if (at !== shown) {
      parent.removeLayer(groups[shown]);
      parent.addLayer(groups[at]);
      shown = at;
    }
    if (at) {
      var tz = levels[at - 1].tile_zoom, view = map.getBounds();
      var nw = map.project(view.getNorthWest(), tz).divideBy(256).floor();
      var se = map.project(view.getSouthEast(), tz).divideBy(256).floor();
      for (var x = nw.x; x <= se.x; x += 1) {
        for (var y = nw.y; y <= se.y; y += 1) {
          if (!asked[at][x + "/" + y]) { asked[at][x + "/" + y] = true; fetchTile(at, x, y); }
        }
      }
    }
    note();
  }
  map.on("zoomend moveend", update);
  update();
})();
{% endmacro %}
"""
    )

    def __init__(self, url: str, group: Any, m: Any = None, zoom: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._name = "RemoteLayer"
        self.url_html = str(escape(url))
        self.url_json = script_json(url)
        self.id_json = script_json(self.get_name())
        self.group = group.get_name()
        levels = (zoom or {}).get("levels", []) if m is not None else []
        self.levels_json = script_json([{"min_zoom": int(lv["min_zoom"]), "tile_zoom": int(lv["tile_zoom"]),
                                         "edge_m": float(lv["edge_m"])} for lv in levels])  # fmt: skip
        self.coarse_json = script_json(float((zoom or {}).get("coarse_m", 0.0)))
        self.map = m.get_name() if m is not None else "null"
