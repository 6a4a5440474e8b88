"""Commands that run the network analyses: coverage, gaps, service areas, targets (JSON keys stable)."""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import click
import pandas as pd
from flask.cli import with_appcontext

from layers import schema
from layers.spreadsheet import neutralise_formulas
from webmap.runs import prepare_placer, read_inputs, write_coverage, write_json
from webmap.store import get_district, get_store

# The analyses import osmnx, scipy and shapely; they are imported inside the commands so that
# `accessplan --help` and `accessplan serve` start quickly.

_PROFILE = click.Choice(("walk", "wheelchair", "drive"))
_DATUM = click.Choice(schema.DATUMS)
_OUT = click.Path(dir_okay=False)


class Progress:
    """Print the stages of a long run with elapsed seconds to stderr (stdout stays for results)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.perf_counter()

    def stage(self, text: str) -> None:
        """Announce the next stage."""
        self.done += 1
        elapsed = time.perf_counter() - self.started
        click.echo(f"[{self.done}/{self.total}] {text} … ({elapsed:.1f} s)", err=True)


@click.command("coverage")
@click.option("--facilities", required=True, help="Facility layer name or point file.")
@click.option("--demand", required=True, help="household, village, grid, another layer name or a point file.")
@click.option("--profile", type=_PROFILE, default="walk", show_default=True)
@click.option("--threshold", "thresholds", multiple=True, help="e.g. 800m, 1.5km, 15min (repeatable).")
@click.option("--urban-threshold", help="Threshold for urban demand (城乡分类代码 1xx), e.g. 800m.")
@click.option("--rural-threshold", help="Threshold for rural demand (2xx), e.g. 15min.")
@click.option("--status", "statuses", multiple=True, help="Only facilities with this status (e.g. accepted).")
@click.option("--scenario", help="Extra facilities (file or layer) for a before/after comparison.")
@click.option("--weight", "weight_column", help="Demand weight column, e.g. population (villages).")
@click.option("--datum", type=_DATUM, help="Datum of CSV/XLSX point files.")
@click.option("--grid-spacing", type=float, default=400.0, show_default=True, help="Metres, for --demand grid.")
@click.option("--roads", type=click.Path(exists=True, dir_okay=False), help="OSM XML/PBF/GraphML (default: district).")
@click.option("--out", "out_path", type=_OUT, required=True, help="Result file: .json, .csv, .gpkg or .xlsx.")
@with_appcontext
def coverage_command(**options: Any) -> None:
    """Find each demand point's nearest facility along the roads and whether it is covered."""
    from analyses.coverage import compare_scenarios, measure_coverage
    from analyses.inputs import load_points

    class_thresholds = {
        k: v for k, v in (("urban", options["urban_threshold"]), ("rural", options["rural_threshold"])) if v
    }
    if not options["thresholds"] and not class_thresholds:
        raise click.UsageError("Give at least one --threshold (or --urban-threshold/--rural-threshold).")
    if options["scenario"] and Path(options["out_path"]).suffix.lower() != ".json":
        raise click.UsageError("A --scenario comparison is written as .json.")
    progress = Progress(4 if not options["scenario"] else 5)
    placer, facilities, demand, parameters = _read_inputs(options, progress)
    store, district = get_store(), get_district()
    progress.stage(f"measuring coverage of {len(demand):,} points by {len(facilities):,} facilities")
    kwargs = {
        "profile": options["profile"],
        "thresholds": options["thresholds"],
        "class_thresholds": class_thresholds or None,
        "weight_column": options["weight_column"],
    }
    try:
        result = measure_coverage(placer, facilities, demand, parameters=parameters, **kwargs)
        if options["scenario"]:
            extra = load_points(options["scenario"], store=store, district=district, datum=options["datum"])
            progress.stage(f"measuring the scenario with {len(extra):,} more facilities")
            after = measure_coverage(
                placer, pd.concat([facilities, extra], ignore_index=True), demand, parameters=parameters, **kwargs
            )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    progress.stage(f"writing {options['out_path']}")
    if options["scenario"]:
        comparison = compare_scenarios(result, after)
        by_town = comparison.by_town_change.reset_index().to_dict("records")
        payload = {**result.to_dict(), "scenario": {
            "file": options["scenario"], "summary_change": comparison.summary_change, "by_town_change": by_town,
            "after": after.to_dict()["summary"]}}  # fmt: skip
        write_json(payload, options["out_path"])
    else:
        try:
            write_coverage(result, demand, options["out_path"])
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    for column in result.coverage_columns:
        click.echo(f"{column}: {result.summary[column]['covered']} of {len(demand)} points "
                   f"({result.summary[column]['weighted_share']:.1%} weighted)")  # fmt: skip
    click.echo(f"unreachable: {result.summary['unreachable']}; wrote {options['out_path']}")


@click.command("targets")
@click.option("--date", "on", type=click.DateTime(formats=["%Y-%m-%d"]), default=str(date.today()), show_default=True)
@click.option("--out", "out_path", type=_OUT, help="Write JSON here instead of standard output.")
@with_appcontext
def targets_command(on: Any, out_path: str | None) -> None:
    """Compare the plan's targets and task windows with what the layers show on a date."""
    from analyses.targets import targets_report_from_store

    district = get_district()
    report = targets_report_from_store(get_store(), district.plan_dir, district.towns, on=on.date())
    payload = report.to_dict()
    if out_path:
        write_json(payload, out_path)
        click.echo(f"Wrote {out_path}")
    else:
        json.dump(payload, sys.stdout, ensure_ascii=False, indent=2, default=str)
        click.echo()


def _read_inputs(options: dict[str, Any], progress: Progress) -> tuple[Any, Any, Any, dict[str, Any]]:
    try:
        return read_inputs(options, progress)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("gaps")
@click.option("--facilities", required=True, help="Facility layer name or point file.")
@click.option("--demand", required=True, help="household, village, grid, another layer name or a point file.")
@click.option("--profile", type=_PROFILE, default="walk", show_default=True)
@click.option("--threshold", required=True, help="e.g. 300m or 15min.")
@click.option("--status", "statuses", multiple=True, help="Only facilities with this status.")
@click.option("--hex-size", type=float, default=500.0, show_default=True, help="Hexagon size (m) of the summary.")
@click.option("--no-roads", "skip_roads", is_flag=True, help="Skip the road stretches beyond the threshold.")
@click.option("--datum", type=_DATUM, help="Datum of CSV/XLSX point files.")
@click.option("--grid-spacing", type=float, default=400.0, show_default=True, help="Metres, for --demand grid.")
@click.option("--roads", type=click.Path(exists=True, dir_okay=False), help="OSM XML/PBF/GraphML (default: district).")
@click.option("--out", "out_path", type=_OUT, required=True, help=".gpkg (all map layers) or .json (summary).")
@with_appcontext
def gaps_command(**options: Any) -> None:
    """Map uncovered demand: points, road stretches beyond the threshold and a hexagon summary."""
    from analyses.coverage import measure_coverage
    from analyses.gaps import find_gaps
    from layers.io import write_features

    suffix = Path(options["out_path"]).suffix.lower()
    if suffix not in (".gpkg", ".json"):
        raise click.UsageError("`--out` must end in .gpkg or .json.")
    progress = Progress(5)
    placer, facilities, demand, parameters = _read_inputs(options, progress)
    progress.stage("measuring coverage")
    coverage = measure_coverage(placer, facilities, demand, profile=options["profile"],
                                thresholds=[options["threshold"]], parameters=parameters)  # fmt: skip
    progress.stage("finding the gaps" + ("" if options["skip_roads"] else " and the road stretches beyond"))
    gaps = find_gaps(coverage, demand, threshold=options["threshold"], hex_size_m=options["hex_size"],
                     placer=None if options["skip_roads"] else placer,
                     facilities=None if options["skip_roads"] else facilities, crs=placer.net.crs)  # fmt: skip
    progress.stage(f"writing {options['out_path']}")
    layers = gaps.layers()
    if suffix == ".gpkg":
        for i, (name, gdf) in enumerate(layers.items()):
            write_features(gdf, options["out_path"], layer_name=name, append=i > 0)
    else:
        payload = {
            "parameters": {**coverage.parameters, **gaps.parameters},
            "summary": {name: len(gdf) for name, gdf in layers.items()},
            "uncovered": gaps.uncovered.drop(columns="geometry").reset_index().to_dict("records"),
            "unreachable": gaps.unreachable.index.tolist(),
            "too_far_from_road": gaps.too_far_from_road.index.tolist(),
            "hexagons": gaps.hexagons.drop(columns="geometry").to_dict("records"),
        }
        write_json(payload, options["out_path"])
    click.echo(f"uncovered {len(gaps.uncovered)}, unreachable {len(gaps.unreachable)}, "
               f"too far from a road {len(gaps.too_far_from_road)}; wrote {options['out_path']}")  # fmt: skip


@click.command("household-report")
@click.option("--demand", default="household", show_default=True, help="Households (layer) or a point file.")
@click.option("--profile", type=_PROFILE, default="wheelchair", show_default=True)
@click.option("--threshold", "thresholds", multiple=True, required=True,
              help="LAYER=THRESHOLD per service, e.g. accessible_toilet=500m (repeatable).")  # fmt: skip
@click.option("--roads", type=click.Path(exists=True, dir_okay=False), help="OSM XML/PBF/GraphML (default: district).")
@click.option("--out", "out_path", type=_OUT, required=True, help=".csv, .xlsx or .json")
@with_appcontext
def household_report_command(demand: str, profile: str, thresholds: tuple[str, ...], roads: str | None,
                             out_path: str) -> None:  # fmt: skip
    """List households with the services they lack: nearest facility, cost and failed thresholds, worst first."""
    from analyses.gaps import multi_service_report
    from analyses.inputs import load_points

    pairs = dict(t.split("=", 1) for t in thresholds if "=" in t)
    if len(pairs) != len(thresholds) or not set(pairs) <= set(schema.PUBLIC_LAYERS):
        msg = f"Each --threshold is LAYER=THRESHOLD with LAYER one of {schema.PUBLIC_LAYERS!r}; got {thresholds!r}."
        raise click.UsageError(msg)
    progress = Progress(4)
    placer, _ = prepare_placer(roads, progress)
    progress.stage("reading households and facilities")
    store, district = get_store(), get_district()
    households = load_points(demand, store=store, district=district)
    services = {layer: store.features(layer, statuses=schema.IN_SERVICE_STATUSES[layer]) for layer in pairs}
    progress.stage("finding each household's nearest facility of every service")
    report = multi_service_report(placer, services, households, profile=profile, thresholds=pairs)
    progress.stage(f"writing {out_path}")
    table = report.households.reset_index()
    suffix = Path(out_path).suffix.lower()
    if suffix == ".json":
        write_json({"parameters": report.parameters, "households": table.to_dict("records"),
                     "by_service": report.by_service.reset_index().to_dict("records")}, out_path)  # fmt: skip
    elif suffix == ".xlsx":
        with pd.ExcelWriter(out_path) as writer:
            neutralise_formulas(table).to_excel(writer, sheet_name="households", index=False)
            neutralise_formulas(report.by_service).to_excel(writer, sheet_name="by_service")
    elif suffix == ".csv":
        neutralise_formulas(table).to_csv(out_path, index=False, encoding="utf-8-sig")
    else:
        raise click.UsageError("`--out` must end in .csv, .xlsx or .json.")
    failing = int((table["n_failed"] > 0).sum())
    click.echo(f"{failing} of {len(table)} households miss at least one service; wrote {out_path}")


@click.command("service-areas")
@click.option("--facilities", required=True, help="Facility layer name or point file.")
@click.option("--profile", type=_PROFILE, default="walk", show_default=True)
@click.option("--threshold", "thresholds", multiple=True, required=True, help="e.g. 800m or 15min (repeatable).")
@click.option("--status", "statuses", multiple=True, help="Only facilities with this status.")
@click.option("--shape", type=click.Choice(("roads", "hull")), default="roads", show_default=True,
              help="roads: follow the reached roads; hull: the hull of the reached network (faster).")  # fmt: skip
@click.option("--buffer", "buffer_m", type=float, default=50.0, show_default=True, help="Metres around roads.")
@click.option("--datum", type=_DATUM, help="Datum of CSV/XLSX point files.")
@click.option("--roads", type=click.Path(exists=True, dir_okay=False), help="OSM XML/PBF/GraphML (default: district).")
@click.option("--out", "out_path", type=_OUT, required=True, help=".gpkg (per facility and dissolved) or .geojson")
@with_appcontext
def service_areas_command(**options: Any) -> None:
    """Draw each facility's catchment along the roads (one per facility, and dissolved)."""
    from analyses.inputs import load_points
    from analyses.service_areas import service_areas

    progress = Progress(4)
    placer, _ = prepare_placer(options["roads"], progress)
    progress.stage("reading the facilities")
    statuses = tuple(options["statuses"]) or None
    try:
        facilities = load_points(options["facilities"], store=get_store(), district=get_district(),
                                 statuses=statuses, datum=options["datum"])  # fmt: skip
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    progress.stage(f"drawing {options['shape']} service areas of {len(facilities):,} facilities")
    result = service_areas(placer, facilities, profile=options["profile"], thresholds=options["thresholds"],
                           shape=options["shape"], buffer_m=options["buffer_m"])  # fmt: skip
    progress.stage(f"writing {options['out_path']}")
    layer = None if Path(options["out_path"]).suffix.lower() == ".gpkg" else "areas"
    result.to_file(options["out_path"], layer=layer)
    click.echo(f"{len(result.areas)} service areas of {len(facilities)} facilities; wrote {options['out_path']}")
