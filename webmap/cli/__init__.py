"""The `accessplan` command line: Flask's CLI group plus the project's own commands, all registered here.

Where a command goes
--------------------
- ``app``: set up and serve the app (``load-demo``, ``serve``, ``district generate``).
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
from flask.cli import FlaskGroup

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


@click.group(cls=AccessplanGroup, create_app=create_app, add_version_option=False)
def main() -> None:
    """Plan disability-service facilities and accessibility in a Chinese district (default: Bishan)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


for _command in COMMANDS:
    main.add_command(_command)
