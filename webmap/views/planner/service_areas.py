"""Service areas: each facility's catchment along the roads, per threshold (``accessplan service-areas``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from layers import schema
from webmap.i18n import N_
from webmap.maps.base import render_map_parts
from webmap.maps.results import service_areas_layers, service_areas_map
from webmap.security import nonced_map_parts
from webmap.store import get_district
from webmap.views.planner.forms import (
    DEMANDS,
    FACILITY_LAYERS,
    PROFILES,
    choice_errors,
    number,
    shown_thresholds,
    thresholds,
)
from webmap.views.planner.kind import (
    DOWNLOADS,
    AnalysisKind,
    CoveredPoints,
    first_threshold_points,
    result_file,
    static_url,
    town_and_village_names,
)
from webmap.views.planner.layers import display_index, layer_urls

if TYPE_CHECKING:
    from pathlib import Path

    from layers.jobs import Job
    from webmap.maps.result_layers import Layer

#: Which facilities a service-areas run draws: in service now, planned (not built yet) or all.
STATUS_FILTERS = {"in_service": N_("在用的设施"), "planned": N_("规划中、在建的设施"), "all": N_("全部设施")}
SHAPES = {"roads": N_("沿道路（较准确）"), "hull": N_("可达范围外包（较快）")}
#: Defaults of the service-areas form (the 5-, 10- and 15-minute life circles on foot, DOMAIN.md §1).
DEFAULTS = {"facilities": schema.SERVICE_CENTRE, "status_filter": "in_service", "profile": "walk",
            "thresholds": "300m, 800m", "shape": "roads", "buffer_m": 50.0, "demand": "village"}  # fmt: skip


def read_form(data: Any) -> tuple[dict[str, Any], list[str]]:
    """Return the service-areas options from a submitted form and the problems found (naming the field)."""
    form = {k: str(data.get(k, "")).strip() for k in DEFAULTS}
    errors = choice_errors(form, {"facilities": FACILITY_LAYERS, "status_filter": STATUS_FILTERS,
                                  "profile": PROFILES, "shape": SHAPES, "demand": DEMANDS})  # fmt: skip
    values, more = thresholds(form["thresholds"], limit=4)
    errors += more
    form["buffer_m"], more = number(form["buffer_m"], _("道路缓冲距离"), 0, 500)
    errors += more
    form["thresholds"] = values
    return form, errors


def parameters(form: dict[str, Any]) -> Any:
    """Return the run's ``ServiceAreasParameters`` from the job's form."""
    from analyses.runs.service_areas import ServiceAreasParameters

    return ServiceAreasParameters.from_form(form)


def run(parameters: Any, **inputs: Any) -> Any:
    """Draw service areas as ``accessplan service-areas`` does (``analyses.runs.service_areas``)."""
    from analyses.runs.service_areas import run_service_areas

    return run_service_areas(parameters, **inputs)


def result_context(record: Job) -> dict[str, Any]:
    """Return the per-facility and per-town tables (with names) and the map of a done service-areas job."""
    import geopandas as gpd

    district = get_district()
    result = record.result or {}
    town_names, _villages = town_and_village_names(district)
    path = result_file(record, "service_areas")
    map_parts = None
    if path.is_file():
        facilities = gpd.read_file(path, layer="facilities")
        m = service_areas_map(district, facilities, index=display_index(record, "service_areas"),
                              layer_url=layer_urls(record.id), static_url=static_url)  # fmt: skip
        map_parts = nonced_map_parts(render_map_parts(m))
    per_facility = [{**row, "town_name": town_names.get(str(row.get(schema.TOWN_CODE)), "")}
                    for row in result.get("per_facility", [])]  # fmt: skip
    by_town = [{**row, "name": town_names.get(str(row[schema.TOWN_CODE]), "")} for row in result.get("by_town", [])]
    return {"result": result, "per_facility": per_facility, "by_town": by_town, "map_parts": map_parts,
            "coverage_columns": result.get("coverage_columns", []), "downloads": DOWNLOADS}  # fmt: skip


def layers(path: Path, result: dict[str, Any], crs: str) -> list[Layer]:
    """Return the display layers of a service-areas result (its GeoPackage ``path``): catchments per threshold."""
    import geopandas as gpd

    del result  # everything is in the GeoPackage
    areas = gpd.read_file(path, layer="service_areas", columns=["facility_id", "threshold", "threshold_value"])
    facilities = gpd.read_file(path, layer="facilities", columns=[schema.ID, schema.NAME])
    return service_areas_layers(areas, facilities, crs=crs)


def covered_points(record: Job) -> CoveredPoints:
    """Return the demand points of a done service-areas job, covered inside the first threshold's area."""
    return first_threshold_points(record, "service_areas", layer="points")


def headline(record: Job) -> dict[str, Any]:
    """Return the dissolved area (km²) of each threshold."""
    return {f"area_km2_{row['threshold']}": round(row["area_m2"] / 1e6, 3)
            for row in (record.result or {}).get("summary", [])}  # fmt: skip


KIND = AnalysisKind(
    name="service_areas",
    label=N_("服务范围"),
    path="/service-areas",
    defaults=DEFAULTS,
    read_form=read_form,
    form_template="planner/service_areas_form.html",
    form_choices={"layers": FACILITY_LAYERS, "status_filters": STATUS_FILTERS, "profiles": PROFILES,
                  "shapes": SHAPES, "demands": DEMANDS},  # fmt: skip
    parameters=parameters,
    run=run,
    result_context=result_context,
    covered_points=covered_points,
    headline=headline,
    shown_form=shown_thresholds,
    summary_fields={"facilities": FACILITY_LAYERS, "thresholds": None, "profile": PROFILES,
                    "status_filter": STATUS_FILTERS, "shape": None, "demand": DEMANDS},  # fmt: skip
    layers=layers,
)
