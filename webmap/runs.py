"""The app's prepared road network for the analyses (``analyses.runs``): loaded once per app, shared.

The analyses import osmnx, scipy and shapely, so they are imported inside the functions: the app and
`accessplan --help` start without them.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, current_app

from webmap.store import get_district

if TYPE_CHECKING:
    from analyses.costs import Placer
    from analyses.runs.common import Network, PreparedRoads


_PLACER_KEY = "accessplan_placer"
_ROADS_VERSION_KEY = "accessplan_roads_version"
_PLACER_LOCK = threading.Lock()
logger = logging.getLogger(__name__)


def _cache_dir() -> Path:
    return Path(current_app.config["CACHE_DIR"]) / "networks"


def app_placer(unknown: str | None = None) -> Placer:
    """Return the current app's prepared district network with its snapping indexes, loaded once per app.

    For pages that route on every request (visit lists, a toilet's before/after coverage) and the
    analyses on the district's roads. Threads asking at the same time wait for one preparation
    (``accessplan serve`` starts it in the background, see `warm_app_placer`) instead of each
    preparing the network. ``unknown`` (``"strict"``/``"lenient"``) overrides the app's
    ``UNKNOWN_POLICY`` for this network (a caseworker's visit route); each is loaded once per app.
    """
    from dataclasses import replace

    from analyses.costs import CostSettings, Placer, load_district_network

    key = _PLACER_KEY if unknown is None else f"{_PLACER_KEY}.{unknown}"
    placer = current_app.extensions.get(key)
    if placer is not None:
        return placer
    with _PLACER_LOCK:
        placer = current_app.extensions.get(key)
        if placer is None:
            settings = CostSettings.from_config(current_app.config)
            if unknown is not None:
                settings = replace(settings, unknown=unknown)
            placer = Placer(load_district_network(get_district(), cache_dir=_cache_dir(), settings=settings))
            current_app.extensions[key] = placer
    return placer


def app_network() -> Network:
    """Return the ``analyses.runs`` network of the current app (call it inside the app's context).

    No road file: the app's shared district network (its road file hashed once per app for the data
    versions); a road file: that file's network, prepared and cached in ``CACHE_DIR/networks``.
    """
    from analyses.costs import CostSettings
    from analyses.runs.common import DistrictNetwork, PreparedRoads, roads_version

    settings = CostSettings.from_config(current_app.config)
    other = DistrictNetwork(get_district(), _cache_dir(), settings)

    def network(roads: str | None = None, *, flat: bool = False) -> PreparedRoads:
        if roads or flat:
            return other(roads, flat=flat)
        placer = app_placer()
        if _ROADS_VERSION_KEY not in current_app.extensions:
            district = get_district()
            current_app.extensions[_ROADS_VERSION_KEY] = {
                **roads_version(district.roads_path),
                **settings.version(district),
            }
        return PreparedRoads(placer, current_app.extensions[_ROADS_VERSION_KEY])

    return network


def warm_app_placer(app: Flask) -> threading.Thread:
    """Prepare ``app``'s district network in a daemon thread, so no request waits for it; return the thread."""

    def warm() -> None:
        with app.app_context():
            try:
                app_placer()
            except Exception:  # the request that needs the network will raise it again, with its page
                logger.exception("Preparing the district road network in the background failed")
            else:
                logger.info("The district road network is prepared for routing pages")

    thread = threading.Thread(target=warm, name="accessplan-warm-network", daemon=True)
    thread.start()
    return thread


def cost_config(profiles_file: str | None, unknown: str | None, *, flat: bool) -> dict[str, object]:
    """Return the app config that carries the CLI's ``--profiles``, ``--unknown`` and ``--flat``.

    The profile file is checked here, so a bad file stops the command before anything runs.

    Raises
    ------
    click.ClickException
        If the file is missing or invalid (the message, Chinese first, names the key and the fix).
    """
    import click

    from analyses.costs import CostSettings

    try:
        CostSettings(profiles_file, unknown, not flat).profiles()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    config: dict[str, object] = {}
    if profiles_file:
        config["PROFILES_FILE"] = str(Path(profiles_file).resolve())
    if unknown:
        config["UNKNOWN_POLICY"] = unknown
    if flat:
        config["SLOPES"] = False
    return config
