"""The `site` command: choose facility sites by MCLP, p-median, set cover or p-center on the roads."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from layers import schema
from webmap.cli.analyses import parsed, run_and_write

# The analyses import osmnx, scipy and shapely; they are imported inside the command (see webmap.cli.analyses).

_MODEL_KEYS = ("mclp", "pmedian", "lscp", "pcenter")


@click.command("site")
@click.option("--layer", type=click.Choice(schema.PUBLIC_LAYERS),
              help="Facility layer to plan (its facilities today are kept or compared); optional with "
                   "--candidates FILE.")  # fmt: skip
@click.option("--demand", required=True, help="household, village, grid, another layer name or a point file.")
@click.option("--model", "model_key", type=click.Choice(_MODEL_KEYS), default="mclp", show_default=True,
              help="mclp: most demand within --threshold; pmedian: least total cost; lscp: fewest sites covering "
                   "all; pcenter: least worst cost.")  # fmt: skip
@click.option("--p", "p", type=int, help="Sites in total, kept ones included (implied by exact --per-town quotas).")
@click.option("--new", "n_new", type=int, help="New sites beyond today's facilities (p = today's + N).")
@click.option("--per-town", type=int, help="Exactly this many sites in every town (1: one per town).")
@click.option("--threshold",
              help="Coverage radius (mclp, lscp: required), or the cost beyond which demand is unserved "
                   "(pmedian, pcenter: optional, no cap by default), e.g. 15min.")  # fmt: skip
@click.option("--profile", type=click.Choice(("walk", "wheelchair", "drive")), default="drive", show_default=True)
@click.option("--weight", "weight_column", help="Demand weight column, e.g. population (villages).")
@click.option("--candidates", "candidates_source", help="Candidate sites: a layer name or point file "
              "(default: road nodes near the town seats).")  # fmt: skip
@click.option(
    "--candidate-radius", default="2km", show_default=True, help="Generated candidates: distance from a seat."
)
@click.option("--candidates-per-town", type=int, default=20, show_default=True,
              help="Generated candidates: at most this many per town (0: all).")  # fmt: skip
@click.option("--keep-existing", is_flag=True, help="Keep today's facilities open (toilets: accepted, existing, "
              "rebuilt).")  # fmt: skip
@click.option("--exclude", "excluded", multiple=True, help="Candidate id that may not be chosen (repeatable, or a,b).")
@click.option("--capacity", type=float, help="Demand weight one site may serve (pmedian, lscp).")
@click.option("--time-limit", type=float, default=60.0, show_default=True, help="Seconds for the whole solve.")
@click.option("--heuristic", is_flag=True, help="Greedy + swap instead of the exact solver (fast, no proof).")
@click.option("--datum", type=click.Choice(schema.DATUMS), help="Datum of CSV/XLSX point files.")
@click.option("--grid-spacing", type=float, default=400.0, show_default=True, help="Metres, for --demand grid.")
@click.option("--roads", type=click.Path(exists=True, dir_okay=False), help="OSM XML/PBF/GraphML (default: district).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help=".json, .gpkg, .xlsx, .csv or .geojson")  # fmt: skip
@with_appcontext
def site_command(**options: Any) -> None:
    """Choose sites for a facility layer along the roads, with coverage per town before and after."""
    from analyses.runs.siting import SitingParameters, SitingRun, run_siting

    parameters = parsed(SitingParameters.from_options, options, SitingRun.SUFFIXES)
    result = run_and_write(run_siting, parameters, options["out_path"]).result
    share = "" if result.covered_share != result.covered_share else f", {result.covered_share:.1%} of demand covered"
    click.echo(f"{options['model_key']}: {len(result.selected)} sites{share}, objective {result.objective:,.6g}, "
               f"optimal={result.optimal}, gap={result.gap}; wrote {options['out_path']}")  # fmt: skip
