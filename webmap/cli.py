"""The `accessplan` command line: Flask's CLI group plus the project's own commands."""

from __future__ import annotations

import logging

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from layers.demo import load_demo_layers
from layers.district import District, load_district
from layers.errors import DistrictDataError, DistrictMismatchError
from synthetic.layers import generate_district_demo
from synthetic.reference import demo_town_areas, generate_reference_data
from webmap import create_app
from webmap.cli_analyses import (
    coverage_command,
    gaps_command,
    household_report_command,
    service_areas_command,
    targets_command,
)
from webmap.cli_geo import datum_group, roads_group
from webmap.cli_layers import export_command, history_command, import_command
from webmap.cli_siting import site_command
from webmap.runs import warm_app_placer
from webmap.security import secret_key_problem
from webmap.store import get_district, get_store


def _remember_district(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(ScriptInfo).data["district_dir"] = value


def _create_cli_app() -> Flask:
    """Create the app, then let ``--district DIR`` win over DISTRICT_DIR (config.py) and the environment."""
    app = create_app()
    info = click.get_current_context(silent=True)
    district_dir = info.find_object(ScriptInfo).data.get("district_dir") if info else None
    if district_dir:
        app.config["DISTRICT_DIR"] = district_dir
    return app


class _AccessplanGroup(FlaskGroup):
    """Flask's group, with a district folder's or the store's district refusal shown as one line (no traceback)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (DistrictDataError, DistrictMismatchError) as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_AccessplanGroup, create_app=_create_cli_app, add_version_option=False)
@click.option("--district", type=click.Path(file_okay=False), expose_value=False, is_eager=True,
              callback=_remember_district,
              help="District folder (wins over DISTRICT_DIR in config.py and ACCESSPLAN_DISTRICT_DIR).")  # fmt: skip
def main() -> None:
    """Plan disability-service facilities and accessibility in a Chinese district (default: Bishan)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def _load_demo_if_empty() -> None:
    store = get_store()
    if store.count() == 0:
        counts = load_demo_layers(store, get_district())
        click.echo(f"Loaded the embedded demo data: {counts}")


@main.command("load-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when the store already holds data.")
@with_appcontext
def load_demo_command(if_empty: bool) -> None:
    """Load the district's demo layers into the store."""
    store = get_store()
    if store.count() and if_empty:
        click.echo(f"The store already holds {store.count()} rows; nothing loaded.")
        return
    if store.count():
        msg = "The store is not empty; loading the demo data again would duplicate ids. Use --if-empty."
        raise click.ClickException(msg)
    _load_demo_if_empty()


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, help="Worker threads of the WSGI server.")
@with_appcontext
def serve_command(host: str, port: int, threads: int) -> None:
    """Serve the app with a production WSGI server (waitress), loading the demo data if the store is empty.

    Refuses to start with the development ``SECRET_KEY`` ``dev`` or a short one (see README).
    """
    import waitress

    problem = secret_key_problem(current_app.config["SECRET_KEY"])
    if problem:
        raise click.ClickException(problem)
    _load_demo_if_empty()
    warm_app_placer(current_app._get_current_object())  # routing pages find the network prepared
    click.echo(f"Serving {get_district().name} on http://{host}:{port}/  (Ctrl+C to stop)")
    waitress.serve(current_app._get_current_object(), host=host, port=port, threads=threads)


@main.group("district")
def district_group() -> None:
    """Work on the district data folder."""


@district_group.command("generate")
@with_appcontext
def district_generate_command() -> None:
    """Regenerate the SYNTHETIC villages, town areas, roads and demo layers of the district.

    The seed is `synthetic_seed` in district.toml: the same seed rewrites byte-identical files. The real
    boundary and towns are never touched; towns without seats keep their town areas unknown.
    """
    folder = current_app.config["DISTRICT_DIR"]
    generate_reference_data(load_district(folder))
    district = load_district(folder)  # fresh: reads the villages and town areas just written
    paths = generate_district_demo(district, town_areas=demo_town_areas(district))
    click.echo(f"Regenerated the synthetic data of {district.name} in {folder}: {sorted(paths)}")


_FILE_KEYS = click.Choice(("boundary", "towns", "villages", "roads", "dem"))


def _key_texts(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or key not in _FILE_KEYS.choices:
            msg = f"{option} takes KEY=TEXT with KEY one of {', '.join(_FILE_KEYS.choices)}; got {pair!r}."
            raise click.UsageError(msg)
        out[key] = text
    return out


@district_group.command("init")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--name", required=True, help="The district's Chinese name, e.g. 沙坪坝区.")
@click.option("--code", required=True, help="6-digit GB/T 2260 county code, e.g. 500106.")
@click.option("--boundary", required=True, help="The outline (GeoJSON, GeoPackage, Shapefile) with its CRS.")
@click.option("--roads", required=True, help="OSM XML (.osm, .osm.bz2), OSM PBF or osmnx GraphML.")
@click.option("--towns", help="CSV code,name[,seat_lon,seat_lat]; without seats the town areas are unknown.")
@click.option("--villages", help="CSV village_code,name,town_code,lon,lat[,urban_rural_code,…]; optional.")
@click.option("--dem", help="A GeoTIFF elevation model; optional.")
@click.option("--name-en", help="English name (default: the Chinese name).")
@click.option("--plan-year", type=int, help="Year of the plan's month windows (plan_year).")
@click.option("--source", "sources", multiple=True, metavar="KEY=TEXT", help="Where a file comes from (README).")
@click.option("--licence", "licences", multiple=True, metavar="KEY=TEXT", help="A file's licence (README).")
@click.option("--synthetic", "synthetic", multiple=True, type=_FILE_KEYS, help="Mark a file synthetic (README).")
@with_appcontext
def district_init_command(folder: str, **options: object) -> None:
    """Build a district folder from real files (checked first; nothing is overwritten) and prepare its roads."""
    from analyses.costs import load_district_network
    from layers.district_init import DistrictInitError, FileNote, init_district

    sources = _key_texts(options.pop("sources"), "--source")
    licences = _key_texts(options.pop("licences"), "--licence")
    synthetic = set(options.pop("synthetic"))
    notes = {k: FileNote(sources.get(k), licences.get(k), k in synthetic) for k in _FILE_KEYS.choices}
    cache_dir = current_app.config["CACHE_DIR"]

    def prepare(district: District) -> str:
        net = load_district_network(district, cache_dir=cache_dir)
        return f"{net.n_nodes:,} nodes, {net.n_pieces:,} road pieces, prepared in {district.crs}"

    try:
        district = init_district(folder, notes=notes, prepare=prepare, **options)
    except DistrictInitError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote the district folder of {district.name} ({district.code}, {district.crs}) to {folder}")


@district_group.command("show")
@with_appcontext
def district_show_command() -> None:
    """Print the chosen district folder, its code, name, CRS and what it holds."""
    district = get_district()
    areas = "approximate" if district.has_town_areas else "unknown"
    click.echo(f"{district.name} ({district.code}) in {district.folder}: CRS {district.crs}, "
               f"{len(district.towns)} towns, town areas {areas}, "
               f"{len(district.villages) if district.has_villages else 'no'} villages")  # fmt: skip


for _command in (
    import_command,
    export_command,
    history_command,
    datum_group,
    roads_group,
    coverage_command,
    gaps_command,
    household_report_command,
    service_areas_command,
    site_command,
    targets_command,
):
    main.add_command(_command)
