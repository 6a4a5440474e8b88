"""The display layers of a done job's result map, fetched on demand by its page (gzip GeoJSON, cached).

A kind with a map (``AnalysisKind.layers``) turns its GeoPackage into small display layers
(``webmap.maps.result_layers``); its job writes them next to the downloads, and a result of an older job
gets them on its first view. ``planner.result_layer`` sends one, under the same rule as the result page
(planners and admins): the layers hold only what that page shows (demand points as generalised planning
points, or counts per hexagon when many). A layer of hexagon counts also sends its finer hexagons one map
tile at a time (``?level=i&x=..&y=..``, ``result_layers.tile_collection``) as the page zooms in.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Response, abort, request, url_for
from flask_babel import gettext

from webmap.auth import role_required
from webmap.maps.result_layers import layer_file, read_index, tile_collection
from webmap.views.planner.kind import write_display_layers
from webmap.views.planner.pages import PLANNER_ROLES, bp, get_job, kinds

if TYPE_CHECKING:
    from collections.abc import Callable

    from layers.jobs import Job


def display_index(record: Job, kind: str, stem: str | None = None) -> list[dict[str, Any]]:
    """Return a done job's display layers (name, legend), writing them first for a job that has none.

    ``kind`` is the kind whose result it holds; ``stem`` names its files when not the kind's name (a saved
    what-if writes a coverage result as ``whatif``).
    """
    folder = Path(record.result_path or "")
    index = read_index(folder)
    if index is None and record.result_path:
        write_display_layers(kinds()[kind], folder, record.result or {}, stem)
        index = read_index(folder)
    return index or []


def layer_urls(job_id: str) -> Callable[[str], str]:
    """Return a display layer's name → its URL for job ``job_id``."""
    return lambda name: url_for("planner.result_layer", job_id=job_id, name=name)


@bp.get("/jobs/<job_id>/layers/<name>.geojson")
@role_required(*PLANNER_ROLES)
def result_layer(job_id: str, name: str) -> Response:
    """Send one display layer of a done job as GeoJSON (gzip when the browser accepts it; cached a day).

    With ``level``, ``x`` and ``y`` (whole numbers): the cells of that finer level of the layer in that
    map tile (``result_layers.tile_collection``).
    """
    record = get_job(job_id)
    folder = Path(record.result_path) if record.status == "done" and record.result_path else None
    tile = [request.args.get(key) for key in ("level", "x", "y")]
    if any(v is not None for v in tile):
        if folder is None or not all(v is not None and v.isdigit() and len(v) <= 9 for v in tile):
            abort(404, gettext("地图图层 %(name)r 的格子须用整数 level、x、y 请求；收到 level=%(level)r、x=%(x)r、"
                               "y=%(y)r。", name=name, level=tile[0], x=tile[1], y=tile[2]))  # fmt: skip
        collection = tile_collection(folder, name, *(int(v) for v in tile))
        if collection is None:
            abort(404, gettext("任务 %(id)r 的地图图层 %(name)r 没有第 %(level)s 级格子。", id=job_id, name=name,
                               level=tile[0]))  # fmt: skip
        text = json.dumps(collection, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return _send(gzip.compress(text, 6))
    path = layer_file(folder, name) if folder is not None else None
    if path is None or not path.is_file():
        abort(404, gettext("任务 %(id)r 没有名为 %(name)r 的地图图层。", id=job_id, name=name))
    return _send(path.read_bytes())


def _send(body: bytes) -> Response:
    """Return gzip GeoJSON ``body`` as sent to this request (decompressed unless it accepts gzip)."""
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    response = Response(body if gzipped else gzip.decompress(body), mimetype="application/geo+json")
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response
