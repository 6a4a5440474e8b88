"""Gaps: where demand is not covered, shown as hexagons and points (``accessplan gaps``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask_babel import gettext

from layers import schema
from webmap.i18n import N_
from webmap.maps.base import render_map_parts
from webmap.maps.results import gaps_layers, gaps_map
from webmap.security import nonced_map_parts
from webmap.store import get_district
from webmap.views.planner.coverage import read_form as read_coverage_form
from webmap.views.planner.forms import DEMANDS, FACILITY_LAYERS, PROFILES
from webmap.views.planner.kind import (
    DOWNLOADS,
    AnalysisKind,
    CoveredPoints,
    has_layer,
    read_layer,
    result_file,
    static_url,
    town_and_village_names,
)
from webmap.views.planner.layers import display_index, layer_urls

if TYPE_CHECKING:
    from pathlib import Path

    from layers.jobs import Job
    from webmap.maps.result_layers import Layer

#: Defaults of the gaps form (the 15-minute life circle on foot; 500 m hexagons).
DEFAULTS = {"facilities": schema.SERVICE_CENTRE, "demand": "household", "profile": "walk", "threshold": "800m",
            "hex_size": 500.0, "roads": False}  # fmt: skip
#: The layers of a gaps result that list the points not covered (every other point is covered).
GAP_LAYERS = ("gap_uncovered", "gap_unreachable", "gap_too_far")


def read_form(data: Any) -> tuple[dict[str, Any], list[str]]:
    """Return the gaps options from a submitted form and the problems found (the coverage form's checks)."""
    coverage_like = {**{k: data.get(k, "") for k in ("facilities", "demand", "profile")},
                     "thresholds": data.get("threshold", ""), "grid_spacing": "400"}  # fmt: skip
    checked, errors = read_coverage_form(coverage_like)
    form = {k: checked[k] for k in ("facilities", "demand", "profile")}
    form["threshold"] = data.get("threshold", "").strip()
    form["roads"] = data.get("roads") == "on"
    if len(checked["thresholds"]) > 1:
        errors.append(gettext("缺口分析只用一个阈值。"))
    try:
        form["hex_size"] = float(data.get("hex_size", ""))
        if not 100 <= form["hex_size"] <= 5000:
            raise ValueError
    except ValueError:
        form["hex_size"] = data.get("hex_size", "")
        errors.append(gettext("六边形大小须为 100–5000 米之间的数字；收到 %(value)r。", value=data.get("hex_size")))
    return form, errors


def parameters(form: dict[str, Any]) -> Any:
    """Return the run's ``GapsParameters`` from the job's form."""
    from analyses.runs.coverage import GapsParameters

    return GapsParameters.from_form(form)


def run(parameters: Any, **inputs: Any) -> Any:
    """Find gaps as ``accessplan gaps`` does (``analyses.runs.coverage.run_gaps``)."""
    from analyses.runs.coverage import run_gaps

    return run_gaps(parameters, **inputs)


def result_context(record: Job) -> dict[str, Any]:
    """Return the per-town table (with names) and the map of a done gaps job."""
    district = get_district()
    town_names, _villages = town_and_village_names(district)
    result = record.result or {}
    by_town = [{**row, "name": town_names.get(str(row[schema.TOWN_CODE]), "")} for row in result.get("by_town", [])]
    path = result_file(record, "gaps")
    map_parts = None
    if path.is_file():
        m = gaps_map(district, index=display_index(record, "gaps"), layer_url=layer_urls(record.id),
                     static_url=static_url)  # fmt: skip
        map_parts = nonced_map_parts(render_map_parts(m))
    return {"result": result, "by_town": by_town, "map_parts": map_parts, "downloads": DOWNLOADS}


def layers(path: Path, result: dict[str, Any], crs: str) -> list[Layer]:
    """Return the display layers of a gaps result (its GeoPackage ``path``): hexagons, uncovered points."""
    import geopandas as gpd

    del result  # everything is in the GeoPackage
    hexagons = gpd.read_file(path, layer="gap_hexagons", columns=["gap_share", "n_uncovered"])
    uncovered = gpd.read_file(path, layer="gap_uncovered", columns=["demand_id"])
    return gaps_layers(hexagons, uncovered, crs=crs)


def covered_points(record: Job) -> CoveredPoints:
    """Return the points a done gaps job lists (uncovered, unreachable, too far from a road), none covered.

    Only these are stored, so the compare page counts a point missing from the result as covered.
    """
    import pandas as pd

    path = result_file(record, "gaps")
    parts = [read_layer(path, name).assign(covered=False) for name in GAP_LAYERS if has_layer(path, name)]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["demand_id", "covered"])
    return CoveredPoints(frame, "covered",
                         gettext("不在服务缺口中（%(threshold)s）", threshold=record.parameters.get("threshold", "")))


def headline(record: Job) -> dict[str, Any]:
    """Return the gaps summary (counts of uncovered, unreachable and too-far points)."""
    return dict((record.result or {}).get("summary", {}))


def compare_counts(a: Job, b: Job) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the compare page's overall and per-town counts of two gaps jobs, from their per-town tables.

    Covered = points − uncovered − unreachable − too far from a road.
    """

    def per_town(record: Job) -> dict[str, tuple[int, int]]:
        return {str(r[schema.TOWN_CODE]): (int(r["points"]), int(r["points"] - r["uncovered"] - r["unreachable"]
                                                                  - r["too_far_from_road"]))
                for r in (record.result or {}).get("by_town", [])}  # fmt: skip

    ta, tb = per_town(a), per_town(b)

    def row(pa: tuple[int, int] | None, pb: tuple[int, int] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for side, value in (("a", pa), ("b", pb)):
            points, covered = value or (0, 0)
            out[f"points_{side}"], out[f"covered_{side}"] = points, covered
            out[f"share_{side}"] = covered / points if points else None
        out["covered_change"] = out["covered_b"] - out["covered_a"]
        shares = (out["share_a"], out["share_b"])
        out["share_change"] = None if None in shares else shares[1] - shares[0]
        return out

    towns = sorted(set(ta) | set(tb))
    total = row(tuple(map(sum, zip(*ta.values(), strict=True))) if ta else None,
                tuple(map(sum, zip(*tb.values(), strict=True))) if tb else None)  # fmt: skip
    return total, [{schema.TOWN_CODE: t, **row(ta.get(t), tb.get(t))} for t in towns]


KIND = AnalysisKind(
    name="gaps",
    label=N_("服务缺口"),
    path="/gaps",
    defaults=DEFAULTS,
    read_form=read_form,
    form_template="planner/gaps_form.html",
    form_choices={"layers": FACILITY_LAYERS, "demands": DEMANDS, "profiles": PROFILES},
    parameters=parameters,
    run=run,
    result_context=result_context,
    covered_points=covered_points,
    headline=headline,
    compare_counts=compare_counts,
    summary_fields={"facilities": FACILITY_LAYERS, "threshold": None, "profile": PROFILES, "demand": DEMANDS},
    layers=layers,
)
