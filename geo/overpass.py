"""Check a road download before osmnx is even imported: the target file name and the Overpass server."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from geo.errors import NetworkError

#: osmnx's default ``settings.overpass_url``.
DEFAULT_OVERPASS_URL = "https://overpass-api.de/api"
#: Seconds to wait for a connection (osmnx itself retries for about a minute before failing).
REACH_TIMEOUT_S = 5.0
#: File name endings a download may be written to (pyosmium's OSM XML writer).
DOWNLOAD_SUFFIXES = (".osm.bz2", ".osm")


def check_download_target(out_path: str | Path) -> Path:
    """Return ``out_path`` as a Path; raise ``ValueError`` unless it ends in one of ``DOWNLOAD_SUFFIXES``."""
    out_path = Path(out_path)
    if not out_path.name.lower().endswith(DOWNLOAD_SUFFIXES):
        msg = f"`out_path` must end in one of {list(DOWNLOAD_SUFFIXES)!r}; got {str(out_path)!r}."
        raise ValueError(msg)
    return out_path


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
