"""The display layers of a done job's result map, fetched on demand by its page (gzip GeoJSON, cached).

A kind with a map (``AnalysisKind.layers``) turns its GeoPackage into small display layers
(``webmap.maps.result_layers``); its job writes them next to the downloads, and a result of an older job
gets them on its first view. ``planner.result_layer`` sends one, under the same rule as the result page
(planners and admins): the layers hold only what that page shows (demand points as generalised planning
points, or counts per hexagon when many).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Response, abort, request, url_for
from flask_babel import gettext

from webmap.auth import role_required
from webmap.maps.result_layers import layer_file, read_index
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
    """Send one display layer of a done job as GeoJSON (gzip when the browser accepts it; cached a day)."""
    record = get_job(job_id)
    path = layer_file(Path(record.result_path), name) if record.status == "done" and record.result_path else None
    if path is None or not path.is_file():
        abort(404, gettext("任务 %(id)r 没有名为 %(name)r 的地图图层。", id=job_id, name=name))
    body = path.read_bytes()
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    response = Response(body if gzipped else gzip.decompress(body), mimetype="application/geo+json")
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response
