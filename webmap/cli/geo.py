"""Commands on coordinates and road files: datum conversion and the online OSM download."""

from __future__ import annotations

import click

from layers import schema
from webmap.cli.lang import _

# geopandas and the file readers are imported inside the commands: `accessplan --help` stays quick.

_DATUM = click.Choice(schema.DATUMS)


@click.group("datum")
def datum_group() -> None:
    """Convert coordinates between WGS-84, GCJ-02 (Amap/Tencent) and BD-09 (Baidu)."""


@datum_group.command("convert")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.argument("target", type=click.Path(dir_okay=False))
@click.option("--from", "src", type=_DATUM, required=True, help="Datum of SOURCE.")
@click.option("--to", "dst", type=_DATUM, required=True, help="Datum to write.")
@click.option("--lon-col", help="Longitude column of a CSV/XLSX (default: found by header, e.g. 经度/lon).")
@click.option("--lat-col", help="Latitude column of a CSV/XLSX (default: found by header, e.g. 纬度/lat).")
def datum_convert_command(
    source: str, target: str, src: str, dst: str, lon_col: str | None, lat_col: str | None
) -> None:
    """Convert the coordinates of a CSV, XLSX or GeoJSON file (exact iterative inverse for GCJ-02)."""
    from layers.io import convert_datum_file

    try:
        n = convert_datum_file(source, target, src=src, dst=dst, lon_column=lon_col, lat_column=lat_col)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(_("已把 %(n)s 行从 %(src)s 转换为 %(dst)s：%(path)s", n=n, src=src, dst=dst, path=target))


@click.group("roads")
def roads_group() -> None:
    """Road network files."""


@roads_group.command("download")
@click.option("--boundary", type=click.Path(exists=True, dir_okay=False), required=True, help="Polygon file.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help="Target .osm.bz2 file.")
def roads_download_command(boundary: str, out_path: str) -> None:
    """Download OpenStreetMap roads inside a boundary (needs the internet; never used by default).

    Without a connection it stops within seconds with one line (osmnx alone retries for a minute).
    """
    import geopandas as gpd

    from geo.overpass import check_download_target, check_reachable

    try:
        check_download_target(out_path)
        check_reachable()  # before importing osmnx, which alone takes seconds
        from geo.network import download_osm  # imports osmnx: only when needed

        outline = gpd.read_file(boundary).to_crs(schema.WGS84).union_all()
        path = download_osm(outline, out_path)
    except ValueError as exc:  # NetworkError included
        raise click.ClickException(str(exc)) from None
    click.echo(_("已写入 %(path)s；用 --roads 或在 district.toml 的 roads 中使用它。", path=path))
