"""The `accessplan` command line: Flask's CLI group plus the project's own commands, all registered here.

Where a command goes
--------------------
- ``app``: set up and serve the app (``load-demo``, ``serve``, ``district init/show/generate``).
- ``users``: staff accounts (``users add/list/passwd/remove/activate/deactivate/demo``).
- ``layers``: layers in and out of the store (``import``, ``export``, ``history``).
- ``geo``: coordinates and road files (``datum convert``, ``roads download``).
- ``analyses``: the network analyses (``coverage``, ``gaps``, ``household-report``, ``service-areas``,
  ``targets``) and the helpers every analysis command uses (``run_and_write``, ``parsed``, ``Progress``).
- ``siting``: ``site``.

A new command is a ``click`` command in one of these modules (or a new one) and one entry in
``COMMANDS`` below. Building the group must stay cheap: ``accessplan --help`` imports Flask and click
but no geopandas, pandas, osmnx, scikit-learn, matplotlib or folium (``tests/webmap/test_cli.py`` checks),
so a command imports the libraries and the analyses it runs inside its function.
"""

from __future__ import annotations

import logging

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo

from webmap import create_app
from webmap.cli.analyses import (
    coverage_command,
    gaps_command,
    household_report_command,
    service_areas_command,
    targets_command,
)
from webmap.cli.app import district_group, load_demo_command, serve_command
from webmap.cli.geo import datum_group, roads_group
from webmap.cli.layers import export_command, history_command, import_command
from webmap.cli.siting import site_command
from webmap.cli.users import users_group

#: Every command of `accessplan`, in the order of its help.
COMMANDS: tuple[click.Command, ...] = (
    load_demo_command,
    serve_command,
    district_group,
    users_group,
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
)


class AccessplanGroup(FlaskGroup):
    """Flask's CLI group that lists its own commands without creating the app.

    ``FlaskGroup`` creates the app to list the commands an app adds; this app adds none (they are all in
    ``COMMANDS``), so ``accessplan --help`` needs neither the app nor its blueprints, store and maps.
    A command still runs inside the app (``with_appcontext``), created when it runs.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the names of the group's commands and Flask's plugin commands, without loading the app."""
        self._load_plugin_commands()
        return sorted(click.Group.list_commands(self, ctx))

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; a district folder's or the store's district refusal is one line, not a traceback."""
        from layers.errors import DistrictDataError, DistrictMismatchError

        try:
            return super().invoke(ctx)
        except (DistrictDataError, DistrictMismatchError) as exc:
            raise click.ClickException(str(exc)) from None


def _remember_district(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(ScriptInfo).data["district_dir"] = value


def create_cli_app() -> Flask:
    """Create the app, then let ``--district DIR`` win over DISTRICT_DIR (config.py) and the environment."""
    app = create_app()
    info = click.get_current_context(silent=True)
    district_dir = info.find_object(ScriptInfo).data.get("district_dir") if info else None
    if district_dir:
        app.config["DISTRICT_DIR"] = district_dir
    return app


@click.group(cls=AccessplanGroup, create_app=create_cli_app, add_version_option=False)
@click.option("--district", type=click.Path(file_okay=False), expose_value=False, is_eager=True,
              callback=_remember_district,
              help="District folder (wins over DISTRICT_DIR in config.py and ACCESSPLAN_DISTRICT_DIR).")  # fmt: skip
@click.option("--profiles", "profiles_file", type=click.Path(dir_okay=False),
              help="TOML laid over geo/profiles.toml (speeds, tag factors, slopes) for this run.")  # fmt: skip
@click.option("--unknown", type=click.Choice(["strict", "lenient"]),
              help="Unknown accessibility tags: strict (not passable) or lenient (passable, reported).")  # fmt: skip
@click.option("--flat", is_flag=True, help="Ignore the district DEM: flat travel costs.")
def main(profiles_file: str | None, unknown: str | None, flat: bool) -> None:
    """Plan disability-service facilities and accessibility in a Chinese district (default: Bishan)."""
    from webmap.runs import cost_config

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


for _command in COMMANDS:
    main.add_command(_command)
