"""Commands that run the network analyses: coverage, gaps, service areas, targets (JSON keys stable)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from layers import schema
from webmap.cli.lang import _
from webmap.runs import app_network
from webmap.store import get_district, get_store

# The analyses import osmnx, scipy and shapely; they are imported inside the commands so that
# `accessplan --help` and `accessplan serve` start quickly.

_PROFILE = click.Choice(("walk", "wheelchair", "drive"))
_DATUM = click.Choice(schema.DATUMS)
_OUT = click.Path(dir_okay=False)
_STATUS_HELP = ("Only facilities with this status (repeatable). Default: a layer's facilities in service "
                "(open; toilets accepted), as the planner counts them; 'all' counts every status.")  # fmt: skip


class Progress:
    """Print the stages of a long run with elapsed seconds to stderr (stdout stays for results).

    The ``analyses.runs.stages.Stages`` of the commands: ``expect(total)``, ``stage(text)`` and, for
    the siting models' fractions, ``progress(text, fraction)``.
    """

    def __init__(self, total: int = 0) -> None:
        self.total, self.done, self.started = total, 0, time.perf_counter()

    def expect(self, total: int) -> None:
        """Set the number of stages."""
        self.total = total

    def stage(self, text: str) -> None:
        """Announce the next stage."""
        self.done += 1
        elapsed = time.perf_counter() - self.started
        click.echo(f"[{self.done}/{self.total}] {text} … ({elapsed:.1f} s)", err=True)

    def __call__(self, text: str, fraction: float) -> None:
        """Print a step inside the current stage."""
        click.echo(f"      {text} ({time.perf_counter() - self.started:.1f} s)", err=True)


def run_and_write(run: Callable[..., Any], parameters: Any, out_path: str) -> Any:
    """Run an ``analyses.runs`` function on the app's store, district and network, write ``out_path``.

    Raises
    ------
    click.ClickException
        If the run or the writing refuses its input (the message names it and the fix).
    """
    from analyses.runs.stages import STAGE_WRITING
    from layers.privacy import CLI_READER

    progress = Progress()
    try:
        result = run(parameters, store=get_store(), district=get_district(), network=app_network(),
                     reader=CLI_READER, progress=progress)  # fmt: skip
        progress.stage(f"{STAGE_WRITING}: {out_path}")
        result.to_file(out_path)
    except (ValueError, TimeoutError) as exc:
        raise click.ClickException(str(exc)) from None
    return result


def parsed(read: Callable[[dict[str, Any]], Any], options: dict[str, Any], suffixes: tuple[str, ...]) -> Any:
    """Return the run's parameters read from ``options`` after checking ``--out``'s extension.

    Raises
    ------
    click.UsageError
        If the options contradict each other or ``--out`` has an extension the result cannot be written as.
    """
    suffix = Path(options["out_path"]).suffix.lower()
    if suffix not in suffixes:
        msg = _(
            "--out 必须以 %(suffixes)s 结尾；收到 %(value)s。",
            suffixes=", ".join(suffixes),
            value=repr(options["out_path"]),
        )
        raise click.UsageError(msg)
    try:
        return read(options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@click.command("coverage")
@click.option("--facilities", required=True, help="Facility layer name or point file.")
@click.option("--demand", required=True, help="household, village, grid, another layer name or a point file.")
@click.option("--profile", type=_PROFILE, default="walk", show_default=True)
@click.option("--threshold", "thresholds", multiple=True, help="e.g. 800m, 1.5km, 15min (repeatable).")
@click.option("--urban-threshold", help="Threshold for urban demand (城乡分类代码 1xx), e.g. 800m.")
@click.option("--rural-threshold", help="Threshold for rural demand (2xx), e.g. 15min.")
@click.option("--status", "statuses", multiple=True, help=_STATUS_HELP)
@click.option("--scenario", help="Extra facilities (file or layer) for a before/after comparison.")
@click.option("--scenario-status", "scenario_statuses", multiple=True,
              help="Only scenario facilities with this status. Default: a layer's planned ones; 'all' for every "
                   "status.")  # fmt: skip
@click.option("--weight", "weight_column", help="Demand weight column, e.g. population (villages).")
@click.option("--datum", type=_DATUM, help="Datum of CSV/XLSX point files.")
@click.option("--grid-spacing", type=float, default=400.0, show_default=True, help="Metres, for --demand grid.")
@click.option("--roads", type=click.Path(exists=True, dir_okay=False), help="OSM XML/PBF/GraphML (default: district).")
@click.option("--compare-flat", is_flag=True,
              help="Also measure on flat costs and show what slopes change per town (needs the district's DEM).")
@click.option("--out", "out_path", type=_OUT, required=True, help="Result file: .json, .csv, .gpkg, .xlsx or .geojson.")
@with_appcontext
def coverage_command(**options: Any) -> None:
    """Find each demand point's nearest facility along the roads and whether it is covered."""
    from analyses.runs.coverage import CoverageParameters, CoverageRun, run_coverage

    parameters = parsed(CoverageParameters.from_options, options, CoverageRun.SUFFIXES)
    result = run_and_write(run_coverage, parameters, options["out_path"])
    for column in result.coverage_columns:
        click.echo(f"{column}: {result.summary[column]['covered']} of {result.summary['points']} points "
                   f"({result.summary[column]['weighted_share']:.1%} weighted)")  # fmt: skip
    if result.slopes is not None:
        for column, change in result.slopes.summary.items():
            click.echo(_("%(column)s：平地 %(flat)s，计坡度 %(slopes)s（减少 %(lost)s，增加 %(gained)s）",
                         column=column, flat=change["flat"], slopes=change["slopes"], lost=change["lost"],
                         gained=change["gained"]))
        steep = result.slopes_dict()["steep_pieces"]
        click.echo(_("陡坡路段（≥ 1:20 或因坡度封闭）：%(n)s 段", n=sum(v["pieces"] for v in steep.values())))
    click.echo(_("不可达：%(n)s；已写入 %(path)s", n=result.summary["unreachable"], path=options["out_path"]))


@click.command("targets")
@click.option("--date", "on", type=click.DateTime(formats=["%Y-%m-%d"]), default=str(date.today()), show_default=True)
@click.option("--out", "out_path", type=_OUT, help="Write JSON here instead of standard output.")
@with_appcontext
def targets_command(on: Any, out_path: str | None) -> None:
    """Compare the plan's targets and task windows with what the layers show on a date."""
    from analyses.targets import targets_report_from_store

    district = get_district()
    report = targets_report_from_store(
        get_store(), district.plan_dir, district.towns, on=on.date(), plan_year=district.plan_year
    )
    payload = report.to_dict()
    if out_path:
        from analyses.runs.common import write_json

        write_json(payload, out_path)
        click.echo(_("已写入 %(path)s", path=out_path))
    else:
        json.dump(payload, sys.stdout, ensure_ascii=False, indent=2, default=str)
        click.echo()


@click.command("gaps")
@click.option("--facilities", required=True, help="Facility layer name or point file.")
@click.option("--demand", required=True, help="household, village, grid, another layer name or a point file.")
@click.option("--profile", type=_PROFILE, default="walk", show_default=True)
@click.option("--threshold", required=True, help="e.g. 300m or 15min.")
@click.option("--status", "statuses", multiple=True, help=_STATUS_HELP)
@click.option("--hex-size", type=float, default=500.0, show_default=True, help="Hexagon size (m) of the summary.")
@click.option("--no-roads", "skip_roads", is_flag=True, help="Skip the road stretches beyond the threshold.")
@click.option("--datum", type=_DATUM, help="Datum of CSV/XLSX point files.")
@click.option("--grid-spacing", type=float, default=400.0, show_default=True, help="Metres, for --demand grid.")
@click.option("--roads", type=click.Path(exists=True, dir_okay=False), help="OSM XML/PBF/GraphML (default: district).")
@click.option("--out", "out_path", type=_OUT, required=True, help=".gpkg (map layers), .json, .geojson, .csv, .xlsx")
@with_appcontext
def gaps_command(**options: Any) -> None:
    """Map uncovered demand: points, road stretches beyond the threshold and a hexagon summary."""
    from analyses.runs.coverage import GapsParameters, GapsRun, run_gaps

    parameters = parsed(GapsParameters.from_options, options, GapsRun.SUFFIXES)
    result = run_and_write(run_gaps, parameters, options["out_path"])
    gaps = result.gaps
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
def household_report_command(**options: Any) -> None:
    """List households with the services they lack: nearest facility, cost and failed thresholds, worst first."""
    from analyses.runs.coverage import HouseholdReportParameters, HouseholdReportRun, run_household_report

    parameters = parsed(HouseholdReportParameters.from_options, options, HouseholdReportRun.SUFFIXES)
    result = run_and_write(run_household_report, parameters, options["out_path"])
    summary = result.summary
    click.echo(f"{summary['missing_any']} of {summary['households']} households miss at least one service; "
               f"wrote {options['out_path']}")  # fmt: skip


@click.command("service-areas")
@click.option("--facilities", required=True, help="Facility layer name or point file.")
@click.option("--profile", type=_PROFILE, default="walk", show_default=True)
@click.option("--threshold", "thresholds", multiple=True, required=True, help="e.g. 800m or 15min (repeatable).")
@click.option("--status", "statuses", multiple=True, help=_STATUS_HELP)
@click.option("--shape", type=click.Choice(("roads", "hull")), default="roads", show_default=True,
              help="roads: follow the reached roads; hull: the hull of the reached network (faster).")  # fmt: skip
@click.option("--buffer", "buffer_m", type=float, default=50.0, show_default=True, help="Metres around roads.")
@click.option("--datum", type=_DATUM, help="Datum of CSV/XLSX point files.")
@click.option("--roads", type=click.Path(exists=True, dir_okay=False), help="OSM XML/PBF/GraphML (default: district).")
@click.option("--demand", help="Demand points counted inside the areas: household, village, grid, a layer or a file.")
@click.option("--out", "out_path", type=_OUT, required=True,
              help=".gpkg (per facility, dissolved, facilities, points), .geojson, .csv, .xlsx or .json")  # fmt: skip
@with_appcontext
def service_areas_command(**options: Any) -> None:
    """Draw each facility's catchment along the roads (one per facility, and dissolved)."""
    from analyses.runs.service_areas import ServiceAreasParameters, ServiceAreasRun, run_service_areas

    parameters = parsed(ServiceAreasParameters.from_options, options, ServiceAreasRun.SUFFIXES)
    result = run_and_write(run_service_areas, parameters, options["out_path"])
    click.echo(f"{len(result.areas.areas)} service areas of {len(result.facilities)} facilities; "
               f"wrote {options['out_path']}")  # fmt: skip
