"""Compare two stored planner results of the same kind: parameters, data versions, deltas, changed points.

Every kind reduces to demand points with a covered flag (``AnalysisKind.covered_points``): coverage (the
first ``covered_*`` column), service areas (inside the first threshold's dissolved area), siting (within
the model's threshold of the assigned site) and gaps (covered unless uncovered, unreachable or too far
from a road; only the gap points are stored, so a point missing from a gaps result counts as covered,
and the counts come from the results' own tables, ``AnalysisKind.compare_counts``). The page shows both
results' parameters and data versions side by side, the covered counts overall and per town with
their differences, and the points whose covered status differs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flask import render_template, request
from flask_babel import gettext as _

from layers import schema
from webmap.auth import role_required
from webmap.maps.base import render_map_parts
from webmap.maps.compare import compare_map, merged_header
from webmap.security import nonced_map_parts
from webmap.store import get_district
from webmap.views.planner.describe import flatten, shown_value, value_labels
from webmap.views.planner.kind import static_url, town_and_village_names
from webmap.views.planner.pages import PLANNER_ROLES, bp, comparable, get_job, index_context, job_name, kinds

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

    from layers.jobs import Job

logger = logging.getLogger(__name__)

#: Changed points listed on the page (all of them are counted).
MAX_CHANGED_ROWS = 500


@bp.get("/compare")
@role_required(*PLANNER_ROLES)
def compare() -> str:
    """Compare the done jobs ``?a=`` and ``?b=`` side by side.

    Choices that cannot be compared (one missing, the same twice, not done, kinds that do not compare)
    show the planner's page again with the compare form as chosen and the reason, in the page's
    language; an unknown job is a 404.
    """
    a_id, b_id = request.args.get("a", ""), request.args.get("b", "")
    problem = compare_problem(a_id, b_id)
    if problem is not None:
        return render_template("planner/index.html", **index_context((a_id, b_id), [problem]))
    a, b = get_job(a_id), get_job(b_id)
    return render_template("planner/compare.html", a=a, b=b, **compare_jobs(a, b))


def compare_problem(a_id: str, b_id: str) -> str | None:
    """Return why the jobs ``a_id`` and ``b_id`` cannot be compared (in the page's language), or None."""
    if not a_id or not b_id:
        return _("请选择两个要对比的结果（结果 A 和结果 B）。")
    if a_id == b_id:
        return _("结果 A 和结果 B 是同一个任务；请选择两个不同的结果。")
    a, b = get_job(a_id), get_job(b_id)
    for record in (a, b):
        if record.status != "done":
            return _("任务 %(id)s 尚未完成，无法对比；请等它完成或选择另一个结果。", id=record.id[:8])
    if a.kind not in kinds() or b.kind not in kinds():
        return _("无法对比这种分析：%(kind)s。", kind=a.kind if a.kind not in kinds() else b.kind)
    if not comparable(a, b):
        labels = {name: _(kind.label) for name, kind in kinds().items()}
        return _("“%(a)s”（%(kind_a)s）和“%(b)s”（%(kind_b)s）不是同一种分析，无法对比；请选择同一种分析的两个结果"
                 "（推演方案可与覆盖分析、选址结果对比）。", a=job_name(a), kind_a=labels[a.kind], b=job_name(b),
                 kind_b=labels[b.kind])  # fmt: skip
    return None


def compare_jobs(a: Job, b: Job) -> dict[str, Any]:
    """Return what the compare page shows for two done jobs that compare (``pages.comparable``).

    Returns
    -------
    dict
        ``parameters`` and ``versions`` (rows of key, value in A, value in B, differs; values as people
        read them), ``overall`` (points, covered, share for A and B and the change), ``by_town`` (the
        same per town, with its name), ``changed`` (demand id, town name, covered in A, covered in B; at
        most ``MAX_CHANGED_ROWS``), ``n_changed``, ``n_gained`` and ``n_lost``, ``measures`` (what
        "covered" means in each), ``sites`` (``only_a``, ``only_b``: the sites one result has and the
        other lacks, with their places; None when a kind has no sites) and ``maps`` (the two maps'
        parts and names, moved together on the page).
    """
    district = get_district()
    town_names, _villages = town_and_village_names(district)
    kind_a, kind_b = kinds()[a.kind], kinds()[b.kind]
    counts = kind_a.compare_counts if a.kind == b.kind else None  # such results list only the points not covered
    pa, ma, located_a = covered_points(a)
    pb, mb, located_b = covered_points(b)
    merged = pa.merge(pb, how="outer", left_index=True, right_index=True, suffixes=("_a", "_b"))
    merged["town"] = merged["town_a"].fillna(merged["town_b"])
    for side in ("a", "b"):
        merged[f"covered_{side}"] = merged[f"covered_{side}"].astype("boolean")
        if counts is not None:
            merged[f"covered_{side}"] = merged[f"covered_{side}"].fillna(True)
    overall, by_town = counts(a, b) if counts is not None else _counts(merged)
    by_town = [{**row, "name": town_names.get(row[schema.TOWN_CODE], row[schema.TOWN_CODE])} for row in by_town]
    both = merged["covered_a"].notna() & merged["covered_b"].notna()
    differs = both & (merged["covered_a"] != merged["covered_b"])
    changed = merged[differs.fillna(False).astype(bool)].sort_index()
    rows = [
        {"demand_id": d, "town": town_names.get(str(r.town), str(r.town)), "a": bool(r.covered_a),
         "b": bool(r.covered_b)}
        for d, r in zip(changed.index, changed.itertuples(), strict=True)
    ][:MAX_CHANGED_ROWS]  # fmt: skip
    only = {"a": int((merged["covered_a"].notna() & merged["covered_b"].isna()).sum()),
            "b": int((merged["covered_b"].notna() & merged["covered_a"].isna()).sum())}  # fmt: skip
    sites = site_differences(a, b)
    maps = []
    for record, located, here, title in ((a, located_a, "only_a", _("结果 A 的地图")),
                                         (b, located_b, "only_b", _("结果 B 的地图"))):  # fmt: skip
        own = job_sites(record) or []
        m = compare_map(district, located, own, (sites or {}).get(here, []), title=title, static_url=static_url)
        maps.append({"parts": nonced_map_parts(render_map_parts(m)), "name": m.get_name()})
    labels = value_labels(kinds())
    return {
        "parameters": _side_by_side(a.parameters, b.parameters, labels),
        "versions": _side_by_side(a.data_versions or {}, b.data_versions or {}, labels),
        "overall": overall,
        "by_town": by_town,
        "changed": rows,
        "n_changed": int(len(changed)),
        "n_gained": int((~changed["covered_a"].astype(bool) & changed["covered_b"].astype(bool)).sum()),
        "n_lost": int((changed["covered_a"].astype(bool) & ~changed["covered_b"].astype(bool)).sum()),
        "only": only,
        "measures": {"a": ma, "b": mb},
        "headline": _side_by_side(kind_a.headline(a), kind_b.headline(b), {}),
        "sites": sites,
        "maps": maps,
        "maps_header": merged_header([m["parts"].header for m in maps]),
    }


def job_sites(record: Job) -> list[dict[str, Any]] | None:
    """Return a done job's sites (``AnalysisKind.sites``) with a ``label`` (name or place); None without sites."""
    read = kinds()[record.kind].sites
    if read is None:
        return None
    return [{**s, "label": s.get("name") or s.get("place") or s["id"]} for s in read(record)]


def site_differences(a: Job, b: Job) -> dict[str, list[dict[str, Any]]] | None:
    """Return the sites only in A and only in B (``only_a``, ``only_b``, by id); None if one has no sites.

    A site is the same in both when its id is and it lies within about a metre (1e-5 degrees) of itself:
    a site a what-if moved counts as only in A where it was and only in B where it went.
    """
    sa, sb = job_sites(a), job_sites(b)
    if sa is None or sb is None:
        return None

    def key(site: dict[str, Any]) -> tuple[str, float, float]:
        return str(site["id"]), round(float(site["lon"]), 5), round(float(site["lat"]), 5)

    ka, kb = {key(s) for s in sa}, {key(s) for s in sb}
    return {"only_a": sorted((s for s in sa if key(s) not in kb), key=lambda s: str(s["id"])),
            "only_b": sorted((s for s in sb if key(s) not in ka), key=lambda s: str(s["id"])),
            "n_a": len(sa), "n_b": len(sb)}  # fmt: skip


def covered_points(record: Job) -> tuple[pd.DataFrame, str, gpd.GeoDataFrame | None]:
    """Return a done job's demand points, what covered means, and the points located for its map.

    The points are indexed by ``demand_id`` with ``town`` and ``covered``; the located points have
    ``demand_id``, ``covered`` and their geometry in EPSG:4326 (None when the result has no locations).

    Raises
    ------
    werkzeug.exceptions.NotFound
        If the job's result file is gone.
    """
    import geopandas as gpd
    import pandas as pd

    read = kinds()[record.kind].covered_points(record)
    frame, column = read.frame, read.column
    located = None
    if isinstance(frame, gpd.GeoDataFrame) and frame.crs is not None:
        located = gpd.GeoDataFrame({"demand_id": frame["demand_id"].astype(str).to_numpy(),
                                    "covered": frame[column].astype(bool).to_numpy()},
                                   geometry=frame.geometry.to_crs(schema.WGS84).to_numpy(),
                                   crs=schema.WGS84)  # fmt: skip
        located = located[located.geometry.notna() & ~located.geometry.is_empty]
    frame = pd.DataFrame(frame.drop(columns="geometry", errors="ignore") if isinstance(frame, gpd.GeoDataFrame)
                         else frame)  # fmt: skip
    town = frame[schema.TOWN_CODE].astype(str).to_numpy() if schema.TOWN_CODE in frame.columns else ""
    points = pd.DataFrame({"town": town, "covered": frame[column].astype(bool).to_numpy()}, index=frame["demand_id"])
    points.index = points.index.astype(str)
    return points[~points.index.duplicated()], read.measure, located


def _counts(merged: pd.DataFrame) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    def summary(frame: pd.DataFrame) -> dict[str, Any]:
        row = {}
        for side in ("a", "b"):
            known = frame[f"covered_{side}"].dropna()
            row[f"points_{side}"], row[f"covered_{side}"] = int(len(known)), int(known.astype(bool).sum())
            row[f"share_{side}"] = row[f"covered_{side}"] / row[f"points_{side}"] if len(known) else None
        row["covered_change"] = row["covered_b"] - row["covered_a"]
        shares = (row["share_a"], row["share_b"])
        row["share_change"] = None if None in shares else shares[1] - shares[0]
        return row

    by_town = [{schema.TOWN_CODE: str(code), **summary(group)} for code, group in merged.groupby("town", sort=True)]
    return summary(merged), by_town


def _side_by_side(a: dict[str, Any], b: dict[str, Any], labels: Any) -> list[dict[str, Any]]:
    """Rows of (key, value in a, value in b, differs) over the flattened keys of both, in a's order.

    Values are shown as people read them (``describe.shown_value``; floats rounded to 6 digits) and
    compared as stored.
    """
    fa, fb = flatten(a), flatten(b)
    keys = list(dict.fromkeys([*fa, *fb]))

    def shown(values: dict[str, Any], key: str) -> Any:
        if key not in values:
            return "—"
        value = values[key]
        return round(value, 6) if isinstance(value, float) else shown_value(key, value, labels)

    return [{"key": k, "a": shown(fa, k), "b": shown(fb, k), "differs": fa.get(k) != fb.get(k)} for k in keys]
