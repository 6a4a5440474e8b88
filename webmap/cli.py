"""The `accessplan` command line: Flask's CLI group plus the project's own commands."""

from __future__ import annotations

import logging

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from layers.demo import load_demo_layers
from layers.district import load_district
from synthetic.layers import generate_district_demo
from synthetic.reference import generate_reference_data
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
from webmap.runs import cost_config, warm_app_placer
from webmap.security import secret_key_problem
from webmap.store import get_district, get_store


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
@click.option(
    "--profiles",
    "profiles_file",
    type=click.Path(dir_okay=False),
    help="TOML laid over geo/profiles.toml (speeds, tag factors, slopes) for this run.",
)
@click.option(
    "--unknown",
    type=click.Choice(["strict", "lenient"]),
    help="Unknown accessibility tags: strict (not passable) or lenient (passable, reported).",
)
@click.option("--flat", is_flag=True, help="Ignore the district DEM: flat travel costs.")
def main(profiles_file: str | None, unknown: str | None, flat: bool) -> None:
    """Plan disability-service facilities and accessibility in a Chinese district (default: Bishan)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = cost_config(profiles_file, unknown, flat=flat)
    if config:  # the app is made later, by the command that needs it: configure it then
        info = click.get_current_context().ensure_object(ScriptInfo)
        make = info.create_app

        def create_configured_app() -> Flask:
            app = make()
            app.config.update(config)
            return app

        info.create_app = create_configured_app


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
    boundary and towns are never touched.
    """
    folder = current_app.config["DISTRICT_DIR"]
    generate_reference_data(load_district(folder))
    district = load_district(folder)  # fresh: reads the villages and town areas just written
    paths = generate_district_demo(district)
    click.echo(f"Regenerated the synthetic data of {district.name} in {folder}: {sorted(paths)}")


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
