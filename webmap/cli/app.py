"""Commands that set up and serve the app: `load-demo`, `serve` and `district init|show|generate`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import with_appcontext

from webmap.cli.lang import _
from webmap.store import get_district, get_store

if TYPE_CHECKING:
    from layers.district import District

# The demo loader (pandas), the district (geopandas), the synthetic generators and the network warm-up
# are imported inside the commands: `accessplan --help` imports none of them.


def load_demo_if_empty() -> None:
    """Load the district's demo layers when the store holds no rows."""
    from layers.demo import load_demo_layers

    store = get_store()
    if store.count() == 0:
        counts = load_demo_layers(store, get_district())
        click.echo(_("已载入内置演示数据：%(counts)s", counts=counts))


@click.command("load-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when the store already holds data.")
@with_appcontext
def load_demo_command(if_empty: bool) -> None:
    """Load the district's demo layers into the store."""
    store = get_store()
    if store.count() and if_empty:
        click.echo(_("数据库中已有 %(n)s 行，未载入。", n=store.count()))
        return
    if store.count():
        msg = _("数据库不是空的；再次载入演示数据会产生重复编号。请加 --if-empty。")
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
    click.echo(
        _(
            "正在为%(district)s提供服务：http://%(host)s:%(port)s/（按 Ctrl+C 停止）",
            district=get_district().name,
            host=host,
            port=port,
        )
    )
    waitress.serve(current_app._get_current_object(), host=host, port=port, threads=threads)


@click.group("district")
def district_group() -> None:
    """Work on the district data folder."""


@district_group.command("generate")
@with_appcontext
def district_generate_command() -> None:
    """Regenerate the SYNTHETIC villages, town areas, roads and demo layers of the district.

    The seed is `synthetic_seed` in district.toml: the same seed rewrites byte-identical files. The real
    boundary and towns are never touched; towns without seats keep their town areas unknown.
    """
    from layers.district import load_district
    from synthetic.layers import generate_district_demo
    from synthetic.reference import demo_town_areas, generate_reference_data

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
