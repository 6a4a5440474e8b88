"""Load the district's demo layers (synthetic CSVs) into the store."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from geo.datums import convert
from layers import schema
from layers.store import Store

logger = logging.getLogger(__name__)

#: Demo layers loaded into the store; households' personal fields are encrypted by the store.
DEMO_LAYERS = schema.ALL_LAYERS

_TEXT_COLUMNS = dict.fromkeys(
    (schema.ID, schema.TOWN_CODE, schema.VILLAGE_CODE, "id_number", "certificate_number", "phone"), str
)


def read_demo_layer(demo_dir: Path, layer: str) -> pd.DataFrame:
    """Read ``demo_dir/<layer>.csv`` with lon/lat converted to WGS-84.

    The ``datum`` column keeps the datum each row was recorded in.
    """
    df = pd.read_csv(demo_dir / f"{layer}.csv", dtype=_TEXT_COLUMNS, encoding="utf-8")
    lon = df[schema.LON].to_numpy(dtype=np.float64).copy()
    lat = df[schema.LAT].to_numpy(dtype=np.float64).copy()
    for datum in df[schema.DATUM].unique():
        if datum == "wgs84":
            continue
        rows = (df[schema.DATUM] == datum).to_numpy()
        lon[rows], lat[rows] = convert(lon[rows], lat[rows], datum, "wgs84")
    return df.assign(**{schema.LON: lon, schema.LAT: lat})


def load_demo_layers(store: Store, demo_dir: Path, *, user: str = "demo-loader") -> dict[str, int]:
    """Insert every demo layer into ``store`` and return the row count per layer."""
    counts = {}
    for layer in DEMO_LAYERS:
        counts[layer] = store.upsert_features(layer, read_demo_layer(demo_dir, layer), user=user).inserted
    logger.info("Loaded demo layers from %s: %s", demo_dir, counts)
    return counts
