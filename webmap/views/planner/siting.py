"""Siting: choose facility sites by MCLP, p-median, set cover or p-center on the roads (``accessplan site``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import abort
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
from webmap.views.planner.pages import get_job

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
    scenario = str(data.get("scenario", "") or "").strip()
    if scenario:
        form["scenario"] = scenario
        form["fixed_sites"], form["closed_sites"] = scenario_sites(scenario_record(scenario))
        if isinstance(form["p"], int) and len(form["fixed_sites"]) > form["p"]:
            errors.append(_("“站点总数 p”为 %(p)s，少于推演方案保留的 %(n)s 个站点（都计入 p）；"
                            "请把 p 提高到至少 %(n)s。", p=form["p"], n=len(form["fixed_sites"])))  # fmt: skip
    if form["model"] == "set_cover":
        form["p"] = None  # set cover finds the fewest sites itself
    elif form["p"] is None and form["per_town"] is None and form["model"] in MODELS:
        errors.append(_("该模型需要站点总数 p 或每个镇街的站点数。"))
    errors += quota_errors(form["p"], form["per_town"], len(get_district().towns))
    return form, errors


def scenario_record(job_id: str) -> Job:
    """Return the saved what-if scenario ``job_id``; a 400 naming it when the job is not one (404 if none)."""
    record = get_job(job_id)
    if record.kind != "whatif" or record.status != "done":
        abort(400, _("任务 %(id)s 不是已保存的推演方案。", id=record.id[:8]))
    return record


def scenario_sites(record: Job) -> tuple[list[dict[str, Any]], list[str]]:
    """Return a saved what-if's kept sites and the ids of the ones it closed.

    Kept: its sites in service, each ``id``, ``lon``, ``lat``, ``name``; closed ones are neither kept nor
    candidates.
    """
    sites = record.parameters.get("sites", [])
    kept = [{"id": str(s["id"]), "lon": float(s["lon"]), "lat": float(s["lat"]), "name": s.get("name") or ""}
            for s in sites if s.get("in_service")]  # fmt: skip
    return kept, [str(s["id"]) for s in sites if not s.get("in_service")]


def prefill(form: dict[str, Any], args: Any) -> dict[str, Any]:
    """Return the form started from a saved what-if (``?scenario=<id>``): its layer, demand, profile and threshold.

    Its sites in service are kept (each counts toward p, so p is at least their number) and the ones it
    closed are left out (``closed_sites``); no per-town quota (a scenario may have two sites in a town)
    and no other kept sites (the scenario's are the kept ones). Without ``scenario`` the form is unchanged.
    """
    job_id = str(args.get("scenario", "") or "").strip()
    if not job_id:
        return form
    record = scenario_record(job_id)
    chosen = record.parameters
    kept, closed = scenario_sites(record)
    layer = chosen.get("facilities") if chosen.get("start") == "layer" else form["layer"]
    return {**form, "layer": layer or form["layer"], "demand": chosen.get("demand", form["demand"]),
            "profile": chosen.get("profile", form["profile"]), "threshold": chosen.get("threshold", form["threshold"]),
            "p": max(int(form["p"] or 0), len(kept)), "per_town": None, "keep_existing": False, "scenario": job_id,
            "fixed_sites": kept, "closed_sites": closed, "scenario_name": chosen.get("name") or job_id[:8]}  # fmt: skip


def quota_errors(p: Any, per_town: Any, towns: int) -> list[str]:
    """Return the problem of quotas no choice of sites can meet: ``per_town`` × ``towns`` more than ``p``."""
    if not (isinstance(p, int) and isinstance(per_town, int)) or per_town * towns <= p:
        return []
    return [_("“每个镇街的站点数”为 %(per_town)s，%(towns)s 个镇街共需 %(need)s 个站点，多于“站点总数 p”的 %(p)s 个；"
              "请把 p 提高到至少 %(need)s，或减少每个镇街的站点数。",
              per_town=per_town, towns=towns, need=per_town * towns, p=p)]  # fmt: skip


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
            "map_parts": map_parts, "downloads": DOWNLOADS, "models": MODELS,
            "solver_state": solver_state(result)}  # fmt: skip


def solver_state(result: dict[str, Any]) -> str:
    """Return how a stored siting result was solved, in the page's language.

    "HiGHS；已证明最优", "HiGHS；达到时间上限，未证明最优（差距 1.2%）" or "快速启发式；未证明最优", from the
    result's ``optimal``, ``gap``, ``solver`` and ``parameters.method`` (the solver's own English text is
    not shown).
    """
    solver = str(result.get("solver") or "")
    method = (result.get("parameters") or {}).get("method")
    name = "HiGHS" if "HiGHS" in solver else _("快速启发式（贪心加交换）")
    gap = result.get("gap")
    if result.get("optimal"):
        state = _("已证明最优")
    elif method == "exact":
        state = _("达到时间上限，未证明最优")
    else:
        state = _("未证明最优")
    if not result.get("optimal") and isinstance(gap, int | float):
        state += _("（差距 %(gap)s）", gap=f"{100 * gap:.2f}%")
    return _("%(solver)s；%(state)s", solver=name, state=state)


def result_sites(record: Job) -> list[dict[str, Any]]:
    """Return a done siting job's chosen sites: ``id``, ``lon``, ``lat``, ``name`` and ``place`` (Chinese)."""
    return [{"id": str(s[schema.ID]), "lon": float(s["lon"]), "lat": float(s["lat"]), "name": s.get("name") or "",
             "place": s.get("place") or ""} for s in (record.result or {}).get("sites", [])]  # fmt: skip


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
    prefill=prefill,
    form_template="planner/siting_form.html",
    form_choices={"layers": FACILITY_LAYERS, "models": MODELS, "methods": METHODS, "demands": DEMANDS,
                  "profiles": PROFILES},  # fmt: skip
    parameters=parameters,
    run=run,
    result_context=result_context,
    covered_points=covered_points,
    headline=headline,
    sites=result_sites,
    summary_fields={"model": MODELS, "layer": FACILITY_LAYERS, "p": None, "threshold": None, "per_town": None,
                    "keep_existing": None, "profile": PROFILES, "demand": DEMANDS, "method": METHODS},  # fmt: skip
    layers=layers,
)
