"""Serve the planning tool: the Flask app factory (``create_app``, the only entry point).

Pages and the API are in ``views/``, every map in ``maps/``, every command in ``cli/``; the modules
here serve them all (store and district, jobs, the prepared network, auth, security, languages, rate
limits, times). README's "Layout" says where a new page, command, map or analysis goes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

#: Environment variable that moves the Flask instance folder (config.py, keys, SQLite store, cache).
INSTANCE_PATH_ENV_VAR = "ACCESSPLAN_INSTANCE_PATH"

def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the app (flaskr style).

    Parameters
    ----------
    test_config
        Settings that replace the instance ``config.py`` (tests pass ``TESTING`` and paths here).

    Returns
    -------
    Flask
        The configured application with its blueprints registered.
    """
    from layers.district import DEFAULT_DISTRICT_DIR, DISTRICT_DIR_ENV_VAR  # geopandas: not for `accessplan --help`

    instance_path = os.environ.get(INSTANCE_PATH_ENV_VAR)
    app = Flask(
        __name__, instance_path=str(Path(instance_path).resolve()) if instance_path else None,
        instance_relative_config=True,
    )  # fmt: skip
    app.config.from_mapping(
        # None: generated into <instance>/secret.key (0600) on first run; `serve` refuses "dev" and short keys
        SECRET_KEY=os.environ.get("ACCESSPLAN_SECRET_KEY") or None,
        # the district folder: ACCESSPLAN_DISTRICT_DIR, below config.py's DISTRICT_DIR, below `--district DIR`
        DISTRICT_DIR=os.environ.get(DISTRICT_DIR_ENV_VAR) or str(DEFAULT_DISTRICT_DIR),
        DATABASE_URL=os.environ.get("ACCESSPLAN_DATABASE_URL")
        or f"sqlite:///{Path(app.instance_path) / 'accessplan.sqlite'}",
        # derived data: prepared road networks, the map's main roads
        CACHE_DIR=os.environ.get("ACCESSPLAN_CACHE_DIR") or str(Path(app.instance_path) / "cache"),
        # the owner role's URL, used only to migrate the schema (None: DATABASE_URL migrates it)
        MIGRATION_DATABASE_URL=os.environ.get("ACCESSPLAN_MIGRATION_DATABASE_URL"),
        ENCRYPTION_KEY=None,  # None: ACCESSPLAN_ENCRYPTION_KEY, else <instance>/encryption.key (made on first run)
        BLIND_INDEX_KEY=None,  # None: ACCESSPLAN_BLIND_INDEX_KEY, else <instance>/blind_index.key (made on first run)
        TILE_URL=None,  # none by default: the district and its roads are the base map
        TILE_ATTR=None,
        SESSION_COOKIE_SECURE=True,  # HTTPS only; set False in config.py for a plain-HTTP intranet server
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        TIANDITU_KEY=None,  # a Tianditu `tk` key: vec_w + cva_w tiles (wins over TILE_URL)
        TILE_DATUM="wgs84",  # "gcj02" for Amap-like tiles: geometries converted for display only
        # travel costs (analyses.costs.CostSettings): a profile file laid over geo/profiles.toml, the policy
        # for unknown accessibility tags (strict | lenient; None: the file's), the district DEM's slopes
        PROFILES_FILE=os.environ.get("ACCESSPLAN_PROFILES_FILE") or None,
        UNKNOWN_POLICY=os.environ.get("ACCESSPLAN_UNKNOWN_POLICY") or None,
        SLOPES=os.environ.get("ACCESSPLAN_SLOPES", "1"),
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from webmap import auth, compress, fieldnames, i18n, numfmt, ratelimit, security, store, timefmt
    from webmap.views import admin, api, caseworker, household_import, nearme, planner, public, toilets

    store.init_app(app)
    compress.init_app(app)  # first registered: runs after every other after_request step
    i18n.init_app(app)
    app.add_template_filter(timefmt.format_local_time, "local_time")
    numfmt.init_app(app)  # count, number, percent, percent_value
    fieldnames.init_app(app)  # field_label
    app.register_blueprint(public.bp)
    app.register_blueprint(nearme.bp)
    security.init_app(app)
    auth.init_app(app)
    app.register_blueprint(auth.bp)
    ratelimit.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(caseworker.bp)
    app.register_blueprint(toilets.bp)
    app.register_blueprint(household_import.bp)
    planner.init_app(app)
    return app
