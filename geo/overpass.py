"""Check, before osmnx is even imported, that the OpenStreetMap Overpass server can be reached."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from geo.errors import NetworkError

#: osmnx's default ``settings.overpass_url``.
DEFAULT_OVERPASS_URL = "https://overpass-api.de/api"
#: Seconds to wait for a connection (osmnx itself retries for about a minute before failing).
REACH_TIMEOUT_S = 5.0


def check_reachable(url: str | None = None, *, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """Open (and close) one TCP connection to the server of ``url``.

    Parameters
    ----------
    url
        Overpass API base URL, e.g. ``osmnx.settings.overpass_url``; ``DEFAULT_OVERPASS_URL`` when None.
    timeout_s
        Seconds to wait for the connection.

    Raises
    ------
    NetworkError
        If the host name does not resolve or the server does not accept the connection in time.
    """
    parts = urlsplit(url or DEFAULT_OVERPASS_URL)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as exc:
        msg = (
            f"Cannot reach the OpenStreetMap Overpass server {parts.hostname}:{port} ({exc}); "
            "`roads download` needs the internet. Without it, use an OSM extract file "
            "(.osm.pbf, .osm or .osm.bz2) as `roads` in district.toml or with --roads."
        )
        raise NetworkError(msg) from None
