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

from flask import abort, render_template, request
from flask_babel import gettext as _

from layers import schema
from webmap.auth import role_required
from webmap.store import get_district
from webmap.views.planner.kind import town_and_village_names
from webmap.views.planner.pages import PLANNER_ROLES, bp, get_job, kinds

if TYPE_CHECKING:
    import pandas as pd

    from layers.jobs import Job

logger = logging.getLogger(__name__)

#: Changed points listed on the page (all of them are counted).
MAX_CHANGED_ROWS = 500


@bp.get("/compare")
@role_required(*PLANNER_ROLES)
def compare() -> str:
    """Compare the done jobs ``?a=`` and ``?b=`` (same kind) side by side."""
    a_id, b_id = request.args.get("a", ""), request.args.get("b", "")
    if not a_id or not b_id:
        abort(400, _("请选择两个要对比的结果（a 和 b）。"))
    if a_id == b_id:
        abort(400, _("请选择两个不同的结果。"))
    a, b = get_job(a_id), get_job(b_id)
    for record in (a, b):
        if record.status != "done":
            abort(400, _("任务 %(id)s 尚未完成，无法对比。", id=record.id[:8]))
    if compared_as(a) != compared_as(b):
        abort(400, _("只能对比同一种分析的结果；收到 %(a)s 和 %(b)s。", a=a.kind, b=b.kind))
    return render_template("planner/compare.html", a=a, b=b, **compare_jobs(a, b))


def compared_as(record: Job) -> str:
    """Return the kind ``record``'s results compare as (``AnalysisKind.compare_as``: a saved what-if as coverage)."""
    kind = kinds().get(record.kind)
    return (kind.compare_as if kind is not None else None) or record.kind


def compare_jobs(a: Job, b: Job) -> dict[str, Any]:
    """Return what the compare page shows for two done jobs of one kind.

    Returns
    -------
    dict
        ``parameters`` and ``versions`` (rows of key, value in A, value in B, differs),
        ``overall`` (points, covered, share for A and B and the change), ``by_town`` (the same per
        town, with its name), ``changed`` (demand id, town name, covered in A, covered in B; at most
        ``MAX_CHANGED_ROWS``), ``n_changed``, ``n_gained`` and ``n_lost``, and ``measures`` (what
        "covered" means in each).
    """
    district = get_district()
    town_names, _villages = town_and_village_names(district)
    kind = kinds()[a.kind]
    pa, ma = covered_points(a)
    pb, mb = covered_points(b)
    default = kind.compare_counts is not None  # such results list only the points not covered
    merged = pa.merge(pb, how="outer", left_index=True, right_index=True, suffixes=("_a", "_b"))
    merged["town"] = merged["town_a"].fillna(merged["town_b"])
    for side in ("a", "b"):
        merged[f"covered_{side}"] = merged[f"covered_{side}"].astype("boolean")
        if default:
            merged[f"covered_{side}"] = merged[f"covered_{side}"].fillna(True)
    if kind.compare_counts is not None:
        overall, by_town = kind.compare_counts(a, b)
    else:
        overall, by_town = _counts(merged)
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
    return {
        "parameters": _side_by_side(a.parameters, b.parameters),
        "versions": _side_by_side(a.data_versions or {}, b.data_versions or {}),
        "overall": overall,
        "by_town": by_town,
        "changed": rows,
        "n_changed": int(len(changed)),
        "n_gained": int((~changed["covered_a"].astype(bool) & changed["covered_b"].astype(bool)).sum()),
        "n_lost": int((changed["covered_a"].astype(bool) & ~changed["covered_b"].astype(bool)).sum()),
        "only": only,
        "measures": {"a": ma, "b": mb},
        "headline": _side_by_side(kind.headline(a), kind.headline(b)),
    }


def covered_points(record: Job) -> tuple[pd.DataFrame, str]:
    """Return a done job's demand points (index ``demand_id``; ``town``, ``covered``) and what covered means.

    Raises
    ------
    werkzeug.exceptions.NotFound
        If the job's result file is gone.
    """
    import geopandas as gpd
    import pandas as pd

    if record.kind not in kinds():
        abort(400, _("无法对比这种分析：%(kind)s。", kind=record.kind))
    read = kinds()[record.kind].covered_points(record)
    frame, column = read.frame, read.column
    frame = pd.DataFrame(frame.drop(columns="geometry", errors="ignore") if isinstance(frame, gpd.GeoDataFrame)
                         else frame)  # fmt: skip
    town = frame[schema.TOWN_CODE].astype(str).to_numpy() if schema.TOWN_CODE in frame.columns else ""
    points = pd.DataFrame({"town": town, "covered": frame[column].astype(bool).to_numpy()}, index=frame["demand_id"])
    points.index = points.index.astype(str)
    return points[~points.index.duplicated()], read.measure


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


def _side_by_side(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of (key, value in a, value in b, differs) over the flattened keys of both, in a's order."""
    fa, fb = _flatten(a), _flatten(b)
    keys = list(dict.fromkeys([*fa, *fb]))
    return [{"key": k, "a": fa.get(k, "—"), "b": fb.get(k, "—"), "differs": fa.get(k) != fb.get(k)} for k in keys]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list):
        return {prefix: ", ".join(str(v) for v in value) if len(value) <= 20 else _("%(n)s 项", n=len(value))}
    if isinstance(value, float):
        return {prefix: round(value, 6)}
    return {prefix: value}
