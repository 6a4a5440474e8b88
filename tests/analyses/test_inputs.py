"""Analysis demand from the household layer: planning points only, and the read is logged with its reader."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
from cryptography.fernet import Fernet

from analyses.inputs import load_demand
from layers.crypto import BlindIndex, FieldCipher
from layers.privacy import Reader
from layers.store import Store


def _store(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}", cipher=FieldCipher(Fernet.generate_key()),
                  blind_index=BlindIndex(Fernet.generate_key()))  # fmt: skip
    households = pd.DataFrame(
        {"id": ["HH-1"], "town_code": ["500120001"], "village_code": ["500120001001"], "name": ["孙敏"],
         "address": ["璧山区璧城街道文星社区石家庄街268号"], "lon": [106.2234567], "lat": [29.5915],
         "datum": ["wgs84"], "status": ["surveyed"], "id_number": ["500227194401116803"],
         "certificate_number": ["50022719440111680312"], "disability_category": [1], "disability_grade": [2],
         "phone": ["13624947846"]}
    )  # fmt: skip
    store.upsert_features("household", households, user="loader")
    return store


def test_household_demand_becomes_planning_points_and_its_read_is_logged_with_the_reader(tmp_path, bishan):
    store = _store(tmp_path)
    try:
        out = load_demand("household", store=store, district=bishan, reader=Reader(user="p1", channel="web"))
        assert [c for c in out.columns if c != "urban"] == [
            "id", "town_code", "village_code", "status", "lon", "lat", "geometry"
        ]  # fmt: skip
        # 106.2234567 -> 106.223 and 29.5915 -> 29.592 on the 0.001° grid; the geometry agrees
        assert (out.loc[0, "lon"], out.loc[0, "lat"]) == (106.223, 29.592)
        assert (out.geometry.iloc[0].x, out.geometry.iloc[0].y) == (106.223, 29.592)
        (entry,) = store.access_log()
        assert (entry["actor"], entry["feature_id"], entry["channel"]) == ("p1", "*", "web")
        assert entry["reason"] == "bulk read of 1 rows: analysis demand (generalised points)"
    finally:
        store.close()


def test_other_demand_is_not_generalised_and_not_logged(tmp_path, bishan):
    store = _store(tmp_path)
    try:
        villages = load_demand("village", store=store, district=bishan, reader=Reader(user="p1", channel="cli"))
        assert len(villages) == len(bishan.villages) and store.access_log() == []
    finally:
        store.close()


def test_points_of_a_district_without_town_areas_get_no_town():
    from pathlib import Path

    from analyses.inputs import assign_towns
    from layers.district import load_district

    shapingba = load_district(Path(__file__).resolve().parents[2] / "data" / "shapingba")
    assert shapingba.town_areas.empty  # no seats: the town areas are unknown
    points = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=gpd.points_from_xy([106.4, 106.45], [29.6, 29.65]),
                              crs="EPSG:4326")  # fmt: skip
    assigned = assign_towns(points, shapingba.town_areas, crs=shapingba.crs)
    assert assigned["town_code"].isna().all() and list(assigned["id"]) == ["a", "b"]
