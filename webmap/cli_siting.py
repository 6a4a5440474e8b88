"""The `site` command: choose facility sites by MCLP, p-median, set cover or p-center on the roads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import pandas as pd
from flask.cli import with_appcontext

from layers import schema
from layers.spreadsheet import neutralise_formulas
from webmap.cli_analyses import Progress
from webmap.runs import prepare_placer, site_pool, siting_candidates, siting_tables, write_json
from webmap.store import get_district, get_store

# The analyses import osmnx, scipy and shapely; they are imported inside the command (see cli_analyses).

_MODELS = {"mclp": "max_coverage", "pmedian": "p_median", "lscp": "set_cover", "pcenter": "p_center"}
_OUT_SUFFIXES = (".json", ".gpkg", ".xlsx")


@click.command("site")
@click.option("--layer", required=True, type=click.Choice(schema.PUBLIC_LAYERS), help="Facility layer to plan.")
@click.option("--demand", required=True, help="household, village, grid, another layer name or a point file.")
@click.option("--model", "model_key", type=click.Choice(tuple(_MODELS)), default="mclp", show_default=True,
              help="mclp: most demand within --threshold; pmedian: least total cost; lscp: fewest sites covering "
                   "all; pcenter: least worst cost.")  # fmt: skip
@click.option("--p", "p", type=int, help="Sites in total, kept ones included (implied by exact --per-town quotas).")
@click.option("--new", "n_new", type=int, help="New sites beyond today's facilities (p = today's + N).")
@click.option("--per-town", type=int, help="Exactly this many sites in every town (1: one per town).")
@click.option("--threshold", required=True,
              help="Coverage radius (mclp, lscp) or the cost beyond which demand is unserved, e.g. 15min.")  # fmt: skip
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
@click.option("--time-limit", type=float, default=60.0, show_default=True, help="Seconds for the exact solver.")
@click.option("--heuristic", is_flag=True, help="Greedy + swap instead of the exact solver (fast, no proof).")
@click.option("--datum", type=click.Choice(schema.DATUMS), help="Datum of CSV/XLSX point files.")
@click.option("--grid-spacing", type=float, default=400.0, show_default=True, help="Metres, for --demand grid.")
@click.option("--roads", type=click.Path(exists=True, dir_okay=False), help="OSM XML/PBF/GraphML (default: district).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help=".json, .gpkg or .xlsx")
@with_appcontext
def site_command(**options: Any) -> None:
    """Choose sites for a facility layer along the roads, with coverage per town before and after."""
    from analyses.costs import parse_threshold
    from analyses.inputs import layer_version, load_points
    from analyses.siting import InfeasibleSitingError, compare_with_current, model_from_network

    _check_options(options)
    threshold = parse_threshold(options["threshold"])
    progress = Progress(5)
    placer, roads_version = prepare_placer(options["roads"], progress)
    store, district = get_store(), get_district()
    progress.stage("reading the facilities and the demand points")
    try:
        layer = store.features(options["layer"])
        demand = load_points(options["demand"], store=store, district=district, datum=options["datum"],
                             grid_spacing_m=options["grid_spacing"])  # fmt: skip
        progress.stage("gathering the candidate sites")
        candidates = siting_candidates(placer, source=options["candidates_source"],
                                       radius=options["candidate_radius"],
                                       per_town=options["candidates_per_town"], datum=options["datum"])  # fmt: skip
        sites, current = site_pool(options["layer"], layer, candidates)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    excluded = [e.strip() for raw in options["excluded"] for e in raw.split(",") if e.strip()]
    unknown = sorted(set(excluded) - set(sites[schema.ID]))
    if unknown:
        msg = f"`--exclude` names ids that are not candidate sites: {unknown[:5]!r}."
        raise click.ClickException(msg)
    p = options["p"] if options["n_new"] is None else len(current) + options["n_new"]
    kwargs: dict[str, Any] = {
        "quota": options["per_town"],
        "existing": current if options["keep_existing"] else None,
        "excluded": excluded or None,
        "zone_labels": dict(zip(district.towns[schema.TOWN_CODE], district.towns[schema.NAME], strict=True)),
    }
    if options["model_key"] != "lscp":
        kwargs["p"] = p
    if options["capacity"] is not None:
        kwargs["capacity"] = options["capacity"]
    started = time.perf_counter()

    def report(stage: str, fraction: float) -> None:
        click.echo(f"      {stage} ({time.perf_counter() - started:.1f} s)", err=True)

    progress.stage(f"network costs from {len(demand):,} demand points to {len(sites):,} candidate sites and solving")
    try:
        model = model_from_network(_MODELS[options["model_key"]], placer, demand, sites, profile=options["profile"],
                                   cutoff=threshold, weight_column=options["weight_column"], progress=report,
                                   **kwargs)  # fmt: skip
        result = model.solve(method="heuristic" if options["heuristic"] else "exact",
                             time_limit_s=options["time_limit"])  # fmt: skip
    except (InfeasibleSitingError, TimeoutError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    comparable = [c for c in current if c not in set(excluded)]
    comparison = compare_with_current(model, result, comparable) if comparable else None
    parameters = {
        **result.parameters,
        "layer": options["layer"],
        "demand": options["demand"],
        "candidates": options["candidates_source"] or "generated near the town seats",
        "candidate_radius": None if options["candidates_source"] else options["candidate_radius"],
        "current_sites": current,
        "keep_existing": options["keep_existing"],
        "method": "heuristic" if options["heuristic"] else "exact",
        "time_limit_s": options["time_limit"],
        "data_versions": {**roads_version, "facilities": layer_version(layer), "demand": layer_version(demand)},
    }
    progress.stage(f"writing {options['out_path']}")
    _write(result, comparison, parameters, sites, demand, threshold.value, options["out_path"])
    share = "" if result.covered_share != result.covered_share else f", {result.covered_share:.1%} of demand covered"
    click.echo(f"{options['model_key']}: {len(result.selected)} sites{share}, objective {result.objective:,.6g}, "
               f"optimal={result.optimal}, gap={result.gap}; wrote {options['out_path']}")  # fmt: skip


def _check_options(options: dict[str, Any]) -> None:
    suffix = Path(options["out_path"]).suffix.lower()
    if suffix not in _OUT_SUFFIXES:
        msg = f"`--out` must end in {', '.join(_OUT_SUFFIXES)}; got {options['out_path']!r}."
        raise click.UsageError(msg)
    key = options["model_key"]
    if options["p"] is not None and options["n_new"] is not None:
        raise click.UsageError("Give --p (sites in total) or --new (sites added), not both.")
    if key == "lscp" and (options["p"] is not None or options["n_new"] is not None):
        raise click.UsageError("--model lscp finds the fewest sites itself; drop --p/--new.")
    if key != "lscp" and options["p"] is None and options["n_new"] is None and options["per_town"] is None:
        raise click.UsageError(f"--model {key} needs --p, --new or --per-town.")
    if options["capacity"] is not None and key not in ("pmedian", "lscp"):
        raise click.UsageError("--capacity works with --model pmedian or lscp.")
    if options["capacity"] is not None and options["heuristic"]:
        raise click.UsageError("--heuristic does not handle --capacity; drop one of them.")
    if options["n_new"] is not None and options["n_new"] < 1:
        raise click.UsageError("--new must be at least 1.")


def _write(result, comparison, parameters, sites, demand, threshold, path) -> None:
    from analyses.siting import jsonable as _plain

    suffix = Path(path).suffix.lower()
    table, points = siting_tables(result, sites, demand, threshold=threshold, kept=parameters.get("existing"))
    chosen_sites = table[table["selected"]]
    assign = pd.DataFrame(points.drop(columns="geometry"))
    if suffix == ".json":
        payload = result.to_dict()
        payload["parameters"] = {**payload["parameters"], **_plain(parameters)}
        payload["sites"] = chosen_sites.drop(columns="geometry").to_dict(orient="records")
        if comparison is not None:
            payload["comparison"] = {
                "summary": _plain(dict(comparison.summary)),
                "by_town": _plain(comparison.by_town.reset_index().to_dict(orient="records")),
            }
        write_json(payload, path)
    elif suffix == ".gpkg":
        from layers.io import write_features

        write_features(chosen_sites.astype({"current": bool}), path, layer_name="sites")
        write_features(points, path, layer_name="assignment", append=True)
        write_features(table.astype({"current": bool}), path, layer_name="candidates", append=True)
    else:
        with pd.ExcelWriter(path) as writer:
            neutralise_formulas(chosen_sites.drop(columns="geometry")).to_excel(writer, sheet_name="sites", index=False)
            neutralise_formulas(assign).to_excel(writer, sheet_name="assignment", index=False)
            neutralise_formulas(result.by_town).to_excel(writer, sheet_name="by_town")
            if comparison is not None:
                neutralise_formulas(comparison.by_town).to_excel(writer, sheet_name="before_after")
            summary = {k: v for k, v in result.to_dict().items() if k not in ("assignment", "by_town")}
            neutralise_formulas(pd.json_normalize(_plain(summary)).T).to_excel(
                writer, sheet_name="summary", header=False
            )
