"""Coverage: which demand points reach a facility within the thresholds (``accessplan coverage``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask_babel import gettext

from layers import schema
from webmap.i18n import N_
from webmap.maps.base import render_map_parts
from webmap.maps.results import coverage_layers, coverage_map, steep_layers
from webmap.security import nonced_map_parts
from webmap.store import get_district
from webmap.views.planner.forms import (
    DEMANDS,
    FACILITY_LAYERS,
    PROFILES,
    choice_errors,
    shown_thresholds,
    threshold_errors,
    threshold_list,
)
from webmap.views.planner.kind import (
    DOWNLOADS,
    AnalysisKind,
    CoveredPoints,
    first_threshold_points,
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

#: Defaults of the coverage form (DOMAIN.md §1: the 15-minute life circle is 800–1000 m on foot).
DEFAULTS = {
    "facilities": schema.SERVICE_CENTRE,
    "demand": "household",
    "profile": "walk",
    "thresholds": "800m",
    "urban_threshold": "",
    "rural_threshold": "",
    "scenario": False,
    "compare_flat": False,
    "grid_spacing": 400.0,
}


def read_form(data: Any) -> tuple[dict[str, Any], list[str]]:
    """Return the coverage options from a submitted form and the problems found (naming the field)."""
    form = {
        "facilities": data.get("facilities", ""),
        "demand": data.get("demand", ""),
        "profile": data.get("profile", ""),
        "thresholds": data.get("thresholds", "").strip(),
        "urban_threshold": data.get("urban_threshold", "").strip(),
        "rural_threshold": data.get("rural_threshold", "").strip(),
        "scenario": data.get("scenario") == "on",
        "compare_flat": data.get("compare_flat") == "on",
        "grid_spacing": data.get("grid_spacing", "400"),
    }
    errors = choice_errors(form, {"facilities": FACILITY_LAYERS, "demand": DEMANDS, "profile": PROFILES})
    thresholds = threshold_list(form["thresholds"])
    errors += threshold_errors([t for t in [*thresholds, form["urban_threshold"], form["rural_threshold"]] if t])
    if not thresholds and not (form["urban_threshold"] or form["rural_threshold"]):
        errors.append(gettext("请至少填写一个阈值（如 800m 或 15min）。"))
    try:
        form["grid_spacing"] = float(form["grid_spacing"])
        if not 50 <= form["grid_spacing"] <= 5000:
            raise ValueError
    except ValueError:
        errors.append(gettext("网格间距须为 50–5000 米之间的数字；收到 %(value)r。", value=data.get("grid_spacing")))
    form["thresholds"] = thresholds
    return form, errors


def parameters(form: dict[str, Any]) -> Any:
    """Return the run's ``CoverageParameters`` from the job's form."""
    from analyses.runs.coverage import CoverageParameters

    return CoverageParameters.from_form(form)


def run(parameters: Any, **inputs: Any) -> Any:
    """Measure coverage as ``accessplan coverage`` does (``analyses.runs.coverage.run_coverage``)."""
    from analyses.runs.coverage import run_coverage

    return run_coverage(parameters, **inputs)


def result_context(record: Job, stem: str = "coverage") -> dict[str, Any]:
    """Return the tables (per town and village, with names) and the map of a done coverage job.

    ``stem`` names its files (``<stem>.gpkg``): a saved what-if writes a coverage result as ``whatif``.
    """
    import geopandas as gpd

    district = get_district()
    result = record.result or {}
    town_names, village_names = town_and_village_names(district)
    columns = result.get("coverage_columns", [])
    by_town = [{**row, "name": town_names.get(str(row.get(schema.TOWN_CODE)), "")} for row in result.get("by_town", [])]
    by_village = [
        {**row, "name": village_names.get(str(row.get(schema.VILLAGE_CODE)), "")}
        for row in result.get("by_village", [])
    ]
    path = result_file(record, stem)
    map_parts = None
    if path.is_file() and columns:
        facilities = gpd.read_file(path, layer="facilities")
        planned = gpd.read_file(path, layer="planned_facilities") if has_layer(path, "planned_facilities") else None
        m = coverage_map(district, facilities, planned, index=display_index(record, "coverage", stem),
                         layer_url=layer_urls(record.id), static_url=static_url)  # fmt: skip
        map_parts = nonced_map_parts(render_map_parts(m))
    slopes_by_town = [
        {**row, "name": town_names.get(str(row.get(schema.TOWN_CODE)), "")}
        for row in (result.get("slopes") or {}).get("by_town", [])
    ]
    return {
        "result": result,
        "slopes_by_town": slopes_by_town,
        "coverage_columns": columns,
        "by_town": by_town,
        "by_village": by_village,
        "map_parts": map_parts,
        "downloads": DOWNLOADS,
        "town_names": town_names,
    }


def result_sites(record: Job, stem: str = "coverage") -> list[dict[str, Any]]:
    """Return the facilities a done coverage job counted (files ``<stem>.*``): ``id``, ``lon``, ``lat``, ``name``."""
    path = result_file(record, stem)
    if not has_layer(path, "facilities"):
        return []
    facilities = read_layer(path, "facilities").to_crs(schema.WGS84)
    names = facilities[schema.NAME] if schema.NAME in facilities.columns else [""] * len(facilities)
    places = facilities["place"] if "place" in facilities.columns else [""] * len(facilities)
    return [{"id": str(i), "lon": float(g.x), "lat": float(g.y), "name": str(n or ""), "place": str(p or "")}
            for i, g, n, p in zip(facilities[schema.ID], facilities.geometry, names, places, strict=True)]  # fmt: skip


def covered_points(record: Job, stem: str = "coverage") -> CoveredPoints:
    """Return the demand points of a done coverage job (files ``<stem>.*``), covered within its first threshold."""
    return first_threshold_points(record, stem)


def headline(record: Job) -> dict[str, Any]:
    """Return the weighted share covered within each threshold."""
    result = record.result or {}
    return {f"{c}_weighted_share": result["summary"][c]["weighted_share"] for c in result["coverage_columns"]}


def layers(path: Path, result: dict[str, Any], crs: str) -> list[Layer]:
    """Return the display layers of a coverage result (its GeoPackage ``path``): points, covered or not."""
    import geopandas as gpd

    column = (result.get("coverage_columns") or [None])[0]
    if column is None:
        return []
    points = gpd.read_file(path, layer="coverage", columns=["demand_id", column])
    layers = coverage_layers(points, covered_column=column, crs=crs)
    if has_layer(path, "steep_segments"):  # a run with the slope comparison: the steep road pieces too
        steep = gpd.read_file(path, layer="steep_segments")
        layers += steep_layers(steep, synthetic_dem="dem" in get_district().synthetic_files)
    return layers


KIND = AnalysisKind(
    name="coverage",
    label=N_("覆盖分析"),
    path="/coverage",
    defaults=DEFAULTS,
    read_form=read_form,
    form_template="planner/coverage_form.html",
    form_choices={"layers": FACILITY_LAYERS, "demands": DEMANDS, "profiles": PROFILES},
    parameters=parameters,
    run=run,
    result_context=result_context,
    covered_points=covered_points,
    headline=headline,
    shown_form=shown_thresholds,
    sites=result_sites,
    summary_fields={"facilities": FACILITY_LAYERS, "thresholds": None, "profile": PROFILES, "demand": DEMANDS,
                    "scenario": None},  # fmt: skip
    layers=layers,
)
