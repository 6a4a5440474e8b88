"""Load the district's demo layers (synthetic CSVs) into the store through the ordinary import path."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from layers import schema
from layers.importer import import_layer

if TYPE_CHECKING:
    from layers.district import District
    from layers.store import Store

logger = logging.getLogger(__name__)

#: Demo layers loaded into the store; households' personal fields are encrypted by the store.
DEMO_LAYERS = schema.ALL_LAYERS


def load_demo_layers(store: Store, district: District, *, user: str = "demo-loader") -> dict[str, int]:
    """Import every demo layer of ``district`` into ``store``; return the rows inserted per layer.

    Raises
    ------
    layers.errors.ValidationError
        If a demo file breaks a rule (the report names every row); nothing of that layer is written.
    """
    counts = {}
    for layer in DEMO_LAYERS:
        outcome = import_layer(store, layer, district.demo_dir / f"{layer}.csv", district=district, user=user)
        outcome.validation.raise_for_problems()
        counts[layer] = outcome.counts.inserted
    logger.info("Loaded the demo layers of %s: %s", district.name, counts)
    return counts
