"""Commands that set up and serve the app: `load-demo`, `serve` and `district generate`."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from webmap.store import get_district, get_store

# The demo loader (pandas), the district (geopandas), the synthetic generators and the network warm-up
# are imported inside the commands: `accessplan --help` imports none of them.


def load_demo_if_empty() -> None:
    """Load the district's demo layers when the store holds no rows."""
    from layers.demo import load_demo_layers

    store = get_store()
    if store.count() == 0:
        counts = load_demo_layers(store, get_district())
        click.echo(f"Loaded the embedded demo data: {counts}")


@click.command("load-demo")
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
    load_demo_if_empty()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, help="Worker threads of the WSGI server.")
@with_appcontext
def serve_command(host: str, port: int, threads: int) -> None:
    """Serve the app with a production WSGI server (waitress), loading the demo data if the store is empty.

    Refuses to start with the development ``SECRET_KEY`` ``dev`` or a short one (see README).
    """
    import waitress

    from webmap.runs import warm_app_placer
    from webmap.security import secret_key_problem

    problem = secret_key_problem(current_app.config["SECRET_KEY"])
    if problem:
        raise click.ClickException(problem)
    load_demo_if_empty()
    warm_app_placer(current_app._get_current_object())  # routing pages find the network prepared
    click.echo(f"Serving {get_district().name} on http://{host}:{port}/  (Ctrl+C to stop)")
    waitress.serve(current_app._get_current_object(), host=host, port=port, threads=threads)


@click.group("district")
def district_group() -> None:
    """Work on the district data folder."""


@district_group.command("generate")
@with_appcontext
def district_generate_command() -> None:
    """Regenerate the SYNTHETIC villages, town areas, roads and demo layers of the district.

    The seed is `synthetic_seed` in district.toml: the same seed rewrites byte-identical files. The real
    boundary and towns are never touched.
    """
    from layers.district import load_district
    from synthetic.layers import generate_district_demo
    from synthetic.reference import generate_reference_data

    folder = current_app.config["DISTRICT_DIR"]
    generate_reference_data(load_district(folder))
    district = load_district(folder)  # fresh: reads the villages and town areas just written
    paths = generate_district_demo(district)
    click.echo(f"Regenerated the synthetic data of {district.name} in {folder}: {sorted(paths)}")
