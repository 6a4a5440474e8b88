from __future__ import annotations

import pandas as pd
import pytest
from cryptography.fernet import Fernet

from geo.datums import convert
from layers import schema
from layers.crypto import BlindIndex, FieldCipher
from layers.demo import DEMO_LAYERS, load_demo_layers
from layers.district import load_district
from layers.importer import import_layer
from layers.store import ImportCounts, Store


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    district = load_district()
    store = Store(
        f"sqlite:///{tmp_path_factory.mktemp('demo') / 's.sqlite'}", cipher=FieldCipher(Fernet.generate_key()),
        blind_index=BlindIndex(Fernet.generate_key()),
    )
    counts = load_demo_layers(store, district)
    yield district, store, counts
    store.close()


def test_every_demo_layer_loads_with_every_row(loaded):
    district, store, counts = loaded
    assert set(counts) == set(DEMO_LAYERS) == set(schema.ALL_LAYERS)
    for layer, n in counts.items():
        assert n == len(pd.read_csv(district.demo_dir / f"{layer}.csv")) > 0
        assert store.count(layer) == n


def test_gcj02_households_are_stored_in_wgs84_and_keep_their_source_datum(loaded):
    district, store, _ = loaded
    raw = pd.read_csv(district.demo_dir / "household.csv", dtype=str)
    row = raw[raw["datum"] == "gcj02"].iloc[0]
    stored = store.feature(schema.HOUSEHOLD, row["id"])
    lon, lat = convert(float(row["lon"]), float(row["lat"]), "gcj02", "wgs84")
    assert (stored["lon"], stored["lat"]) == pytest.approx((lon, lat), abs=1e-9)
    assert stored["source_datum"] == "gcj02"
    assert abs(stored["lon"] - float(row["lon"])) > 0.003  # ≈ 470 m moved, not stored as recorded


def test_personal_fields_decrypt_to_the_file_values(loaded):
    district, store, _ = loaded
    first = pd.read_csv(district.demo_dir / "household.csv", dtype=str).iloc[0]
    token = store.personal_tokens(schema.HOUSEHOLD)[first["id"]]
    assert store.decrypt_personal(token)["id_number"] == first["id_number"]  # leading zeros, X kept
    assert store.feature(schema.HOUSEHOLD, first["id"])["name"] is None


def test_reimporting_a_demo_file_changes_nothing(loaded):
    district, store, counts = loaded
    outcome = import_layer(store, "sports_site", district.demo_dir / "sports_site.csv", district=district, user="x")
    assert outcome.counts == ImportCounts(0, 0, counts["sports_site"])
