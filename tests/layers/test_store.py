from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from layers.store import Store


def _rows(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"RS-{i:02d}" for i in range(n)],
            "town_code": ["500120001"] * n,
            "village_code": ["500120001001"] * n,
            "name": [f"康复站{i}" for i in range(n)],
            "address": ["璧山区璧城街道"] * n,
            "lon": [106.22 + i / 1000 for i in range(n)],
            "lat": [29.59] * n,
            "datum": ["wgs84"] * n,
            "status": ["open"] * n,
            "beds": [2, 3, 4][:n],
            "note": [None, "x", float("nan")][:n],
        }
    )


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    yield s
    s.close()


def test_a_new_store_is_empty_and_uses_wal(store):
    assert store.count() == 0
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"


def test_inserted_rows_come_back_with_attributes_and_version_one(store):
    assert store.insert_features("rehab_station", _rows(), user="tester") == 3
    gdf = store.features("rehab_station")
    assert list(gdf["id"]) == ["RS-00", "RS-01", "RS-02"]
    assert list(gdf["beds"]) == [2, 3, 4]
    assert gdf["note"].isna().tolist() == [True, False, True] and gdf["note"].iloc[1] == "x"
    assert set(gdf["version"]) == {1} and set(gdf["updated_by"]) == {"tester"}
    assert gdf.crs.to_epsg() == 4326
    assert gdf.geometry.iloc[1].x == pytest.approx(106.221)
    assert store.count("rehab_station") == 3 and store.count("sports_site") == 0


def test_status_filter(store):
    rows = _rows()
    rows.loc[0, "status"] = "planned"
    store.insert_features("rehab_station", rows, user="tester")
    assert list(store.features("rehab_station", statuses=("planned",))["id"]) == ["RS-00"]


def test_an_empty_layer_is_an_empty_frame_with_the_columns(store):
    gdf = store.features("sports_site")
    assert len(gdf) == 0 and {"id", "lon", "lat", "status"} <= set(gdf.columns)


def test_an_insert_is_all_or_nothing(store):
    store.insert_features("rehab_station", _rows(1), user="tester")
    with pytest.raises(sa.exc.IntegrityError):
        store.insert_features("rehab_station", _rows(3), user="tester")  # RS-00 exists already
    assert store.count() == 1
