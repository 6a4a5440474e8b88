from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner
from shapely.geometry import LineString, Point

from geo.datums import convert
from webmap.cli import main

WGS = (106.22476, 29.59491)


def test_csv_round_trip_through_gcj02(tmp_path):
    src = tmp_path / "in.csv"
    pd.DataFrame({"名称": ["a"], "经度": [WGS[0]], "纬度": [WGS[1]]}).to_csv(src, index=False)
    runner = CliRunner()
    r1 = runner.invoke(
        main, ["datum", "convert", str(src), str(tmp_path / "g.csv"), "--from", "wgs84", "--to", "gcj02"]
    )
    assert r1.exit_code == 0, r1.output
    gcj = pd.read_csv(tmp_path / "g.csv", encoding="utf-8-sig")
    assert (gcj.loc[0, "经度"], gcj.loc[0, "纬度"]) == pytest.approx(convert(*WGS, "wgs84", "gcj02"), abs=1e-7)
    r2 = runner.invoke(
        main,
        ["datum", "convert", str(tmp_path / "g.csv"), str(tmp_path / "w.xlsx"), "--from", "gcj02", "--to", "wgs84"],
    )
    assert r2.exit_code == 0, r2.output
    back = pd.read_excel(tmp_path / "w.xlsx", engine="calamine")
    assert (float(back.loc[0, "经度"]), float(back.loc[0, "纬度"])) == pytest.approx(WGS, abs=2e-7)
    assert back.loc[0, "名称"] == "a"


def test_geojson_converts_every_vertex(tmp_path):
    src = tmp_path / "in.geojson"
    gpd.GeoDataFrame({"n": [1, 2]}, geometry=[Point(WGS), LineString([WGS, (106.3, 29.6)])], crs=4326).to_file(src)
    result = CliRunner().invoke(
        main, ["datum", "convert", str(src), str(tmp_path / "out.geojson"), "--from", "wgs84", "--to", "bd09"]
    )
    assert result.exit_code == 0, result.output
    out = gpd.read_file(tmp_path / "out.geojson")
    assert out.geometry.iloc[0].coords[0] == pytest.approx(convert(*WGS, "wgs84", "bd09"), abs=1e-9)
    assert out.geometry.iloc[1].coords[1] == pytest.approx(convert(106.3, 29.6, "wgs84", "bd09"), abs=1e-9)


def test_unknown_coordinate_columns_name_the_option(tmp_path):
    src = tmp_path / "in.csv"
    pd.DataFrame({"c1": [WGS[0]], "c2": [WGS[1]]}).to_csv(src, index=False)
    result = CliRunner().invoke(
        main, ["datum", "convert", str(src), str(tmp_path / "o.csv"), "--from", "gcj02", "--to", "wgs84"]
    )
    assert result.exit_code != 0 and "--lon-col" in result.output
    ok = CliRunner().invoke(
        main,
        [
            "datum",
            "convert",
            str(src),
            str(tmp_path / "o.csv"),
            "--from",
            "gcj02",
            "--to",
            "wgs84",
            "--lon-col",
            "c1",
            "--lat-col",
            "c2",
        ],
    )
    assert ok.exit_code == 0, ok.output


def test_roads_download_refuses_a_wrong_extension_before_any_network_use(tmp_path):
    boundary = tmp_path / "b.geojson"
    gpd.GeoDataFrame(geometry=[Point(WGS).buffer(0.01)], crs=4326).to_file(boundary)
    result = CliRunner().invoke(
        main, ["roads", "download", "--boundary", str(boundary), "--out", str(tmp_path / "r.txt")]
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: `out_path` must end in one of ['.osm.bz2', '.osm']")
