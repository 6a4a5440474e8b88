from __future__ import annotations

import pandas as pd
import pytest
from cryptography.fernet import Fernet

from geo.datums import convert
from layers import schema
from layers.crypto import FieldCipher
from layers.demo import DEMO_LAYERS, load_demo_layers, read_demo_layer
from layers.district import load_district
from layers.store import Store


def test_gcj02_rows_are_stored_in_wgs84_and_keep_their_source_datum(tmp_path):
    wgs = (106.22476, 29.59491)
    gcj = convert(*wgs, "wgs84", "gcj02")
    pd.DataFrame(
        {"id": ["A", "B"], "lon": [wgs[0], gcj[0]], "lat": [wgs[1], gcj[1]], "datum": ["wgs84", "gcj02"]}
    ).to_csv(tmp_path / "sports_site.csv", index=False)
    df = read_demo_layer(tmp_path, "sports_site")
    assert df["lon"].tolist() == pytest.approx([wgs[0]] * 2, abs=1e-8)
    assert df["lat"].tolist() == pytest.approx([wgs[1]] * 2, abs=1e-8)
    assert df["datum"].tolist() == ["wgs84", "gcj02"]


def test_the_embedded_demo_layers_load_into_a_store(tmp_path):
    demo_dir = load_district().demo_dir
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}", cipher=FieldCipher(Fernet.generate_key()))
    counts = load_demo_layers(store, demo_dir)
    assert set(counts) == set(DEMO_LAYERS) == set(schema.ALL_LAYERS)
    for layer, n in counts.items():
        assert n == len(pd.read_csv(demo_dir / f"{layer}.csv")) > 0
        assert store.count(layer) == n
    first = pd.read_csv(demo_dir / "household.csv", dtype=str).iloc[0]
    token = store.personal_tokens(schema.HOUSEHOLD)[first["id"]]
    assert store.decrypt_personal(token)["id_number"] == first["id_number"]  # leading zeros, X kept
    store.close()
