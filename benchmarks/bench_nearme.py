"""Time "Near me" (webmap.views.nearme) as the server spends it: one located POST, on Bishan demo data.

Run from the repository root:  .venv/bin/python benchmarks/bench_nearme.py [CACHE_DIR]

A fresh SQLite store with the demo layers; the road network prepared (or read) in ``CACHE_DIR``
(default: a temporary folder, ~10 s to prepare). After one warm-up query (network and facility index
loaded), every 12th village of the district is an origin; each POST is timed end to end through the
Flask test client (routing for walk and wheelchair, JSON answer).
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(cache_dir: str | None = None) -> None:
    """Print the median and largest server time per query."""
    from layers.demo import load_demo_layers
    from webmap import create_app
    from webmap.store import get_district, get_store

    folder = Path(tempfile.mkdtemp())
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "DATABASE_URL": f"sqlite:///{folder / 'demo.sqlite'}",
            "CACHE_DIR": cache_dir or str(folder / "cache"),
            "ENCRYPTION_KEY": Fernet.generate_key(),
        }
    )
    with app.app_context():
        load_demo_layers(get_store(), get_district())
        villages = get_district().villages
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/near-me").get_data(as_text=True)).group(1)
    origins = [(f"{g.x:.5f}", f"{g.y:.5f}") for g in villages.geometry.iloc[::12]]

    def post(lon: str, lat: str) -> int:
        data = {"csrf_token": token, "lon": lon, "lat": lat}
        return client.post("/near-me", data=data, headers={"Accept": "application/json"}).status_code

    post(*origins[0])  # warm-up: network, snapping indexes, facility index
    times = []
    for lon, lat in origins:
        start = time.perf_counter()
        status = post(lon, lat)
        times.append((time.perf_counter() - start) * 1000)
        assert status in (200, 400), status
    print(f"{len(times)} origins: median {statistics.median(times):.0f} ms, max {max(times):.0f} ms per query")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
