"""Siting: choose facility sites by MCLP, p-median, set cover or p-center on the roads (``accessplan site``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from layers import schema
from webmap.i18n import N_
from webmap.maps.base import render_map_parts
from webmap.maps.results import siting_layers, siting_map
from webmap.security import nonced_map_parts
from webmap.store import get_district
from webmap.views.planner.forms import DEMANDS, FACILITY_LAYERS, PROFILES, choice_errors, number, threshold_errors
from webmap.views.planner.kind import (
    DOWNLOADS,
    AnalysisKind,
    CoveredPoints,
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

#: The siting models of ``analyses.siting``.
MODELS = {
    "max_coverage": N_("最大覆盖（阈值内的需求最多）"),
    "p_median": N_("p-中位（总出行成本最小）"),
    "set_cover": N_("集合覆盖（覆盖全部需求的最少站点）"),
    "p_center": N_("p-中心（最远需求的成本最小）"),
}
METHODS = {"exact": N_("精确求解（HiGHS，给出最优性差距）"), "heuristic": N_("快速启发式（贪心加交换）")}
#: Defaults of the siting form: 15 渝馨家园, exactly one per town (镇街), today's centres kept.
DEFAULTS = {"layer": schema.SERVICE_CENTRE, "model": "max_coverage", "p": 15, "per_town": 1,
            "keep_existing": True, "demand": "household", "profile": "drive", "threshold": "15min",
            "candidate_radius": "2km", "candidates_per_town": 8, "method": "exact", "time_limit": 60.0}  # fmt: skip


def read_form(data: Any) -> tuple[dict[str, Any], list[str]]:
    """Return the siting options from a submitted form and the problems found (naming the field)."""
    from analyses.costs import parse_threshold

    form: dict[str, Any] = {k: str(data.get(k, "")).strip() for k in DEFAULTS}
    form["keep_existing"] = data.get("keep_existing") == "on"
    errors = choice_errors(form, {"layer": FACILITY_LAYERS, "model": MODELS, "demand": DEMANDS,
                                  "profile": PROFILES, "method": METHODS})  # fmt: skip
    errors += threshold_errors([form["threshold"]])
    try:
        if parse_threshold(form["candidate_radius"]).weight != "length":
            raise ValueError
    except ValueError:
        errors.append(_("候选点范围须为距离，如 2km；收到 %(value)r。", value=form["candidate_radius"]))
    for key, label, low, high in (("p", _("站点总数 p"), 1, 500), ("per_town", _("每个镇街的站点数"), 1, 10),
                                  ("candidates_per_town", _("每个镇街的候选点数"), 0, 200)):  # fmt: skip
        if form[key] == "":
            form[key] = None
            continue
        form[key], more = number(form[key], label, low, high, integer=True)
        errors += more
    form["time_limit"], more = number(form["time_limit"], _("求解时间上限"), 1, 600)
    errors += more
    if form["model"] == "set_cover":
        form["p"] = None  # set cover finds the fewest sites itself
    elif form["p"] is None and form["per_town"] is None and form["model"] in MODELS:
        errors.append(_("该模型需要站点总数 p 或每个镇街的站点数。"))
    return form, errors


def parameters(form: dict[str, Any]) -> Any:
    """Return the run's ``SitingParameters`` from the job's form."""
    from analyses.runs.siting import SitingParameters

    return SitingParameters.from_form(form)


def run(parameters: Any, **inputs: Any) -> Any:
    """Choose sites as ``accessplan site`` does (``analyses.runs.siting.run_siting``)."""
    from analyses.runs.siting import run_siting

    return run_siting(parameters, **inputs)


def result_context(record: Job) -> dict[str, Any]:
    """Return the chosen sites, per-town (before/after) and per-village tables, and the map of a done job."""
    import geopandas as gpd

    district = get_district()
    result = record.result or {}
    town_names, village_names = town_and_village_names(district)
    path = result_file(record, "siting")
    map_parts = None
    if path.is_file():
        import pyogrio

        sites = gpd.read_file(path, layer="sites")
        assigned = pyogrio.read_dataframe(path, layer="assignment", columns=["site_id"], read_geometry=False)
        counts = {str(k): int(v) for k, v in assigned["site_id"].value_counts().items()}
        m = siting_map(district, sites, counts, index=display_index(record, "siting"), layer_url=layer_urls(record.id),
                       static_url=static_url)  # fmt: skip
        map_parts = nonced_map_parts(render_map_parts(m))
    before = {}
    if result.get("comparison"):
        before = {str(r[schema.TOWN_CODE]): r for r in result["comparison"]["by_town"]}
    by_town = [{**row, "name": town_names.get(str(row[schema.TOWN_CODE]), ""),
                "share_before": before.get(str(row[schema.TOWN_CODE]), {}).get("covered_share_before")}
               for row in result.get("by_town", [])]  # fmt: skip
    by_village = [{**row, "name": village_names.get(str(row[schema.VILLAGE_CODE]), ""),
                   "town_name": town_names.get(str(row[schema.TOWN_CODE]), "")}
                  for row in result.get("by_village", [])]  # fmt: skip
    sites = [
        {**row, "town_name": town_names.get(str(row.get(schema.TOWN_CODE)), "")} for row in result.get("sites", [])
    ]
    return {"result": result, "by_town": by_town, "by_village": by_village, "sites": sites,
            "map_parts": map_parts, "downloads": DOWNLOADS, "models": MODELS}  # fmt: skip


def layers(path: Path, result: dict[str, Any], crs: str) -> list[Layer]:
    """Return the display layers of a siting result (its GeoPackage ``path``): demand before/after, links."""
    import geopandas as gpd

    del result  # everything is in the GeoPackage
    sites = gpd.read_file(path, layer="sites", columns=[schema.ID])
    assignment = gpd.read_file(path, layer="assignment",
                               columns=["demand_id", "site_id", "covered", "covered_before"])  # fmt: skip
    return siting_layers(sites, assignment, crs=crs)


def covered_points(record: Job) -> CoveredPoints:
    """Return the demand points of a done siting job, covered within the model's threshold of their site."""
    threshold = ((record.result or {}).get("parameters") or {}).get("cutoff", "")
    return CoveredPoints(read_layer(result_file(record, "siting"), "assignment"), "covered",
                         _("选址后 %(threshold)s 内", threshold=threshold))  # fmt: skip


def headline(record: Job) -> dict[str, Any]:
    """Return the model, its objective, the share covered, optimality and the number of sites."""
    result = record.result or {}
    keys = ("model", "objective", "covered_share", "optimal", "gap", "solver")
    return {**{k: result.get(k) for k in keys}, "sites": len(result.get("selected", []))}


KIND = AnalysisKind(
    name="siting",
    label=N_("选址"),
    path="/siting",
    defaults=DEFAULTS,
    read_form=read_form,
    form_template="planner/siting_form.html",
    form_choices={"layers": FACILITY_LAYERS, "models": MODELS, "methods": METHODS, "demands": DEMANDS,
                  "profiles": PROFILES},  # fmt: skip
    parameters=parameters,
    run=run,
    result_context=result_context,
    covered_points=covered_points,
    headline=headline,
    layers=layers,
)
