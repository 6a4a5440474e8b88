"""Benchmark the planner's result pages on Bishan: job time, page bytes, server time, layer requests.

Run from the repository root:  .venv/bin/python benchmarks/bench_result_pages.py [--label before|after]
Writes benchmarks/results/result_pages_<label>.json and benchmarks/results/result_pages.md (every label
found).

The app runs on a fresh SQLite store with the demo layers (the network cache of ``instance/cache`` is
reused). A planner submits each analysis through the real form (``/planner/<kind>``, CSRF and all), the
embedded worker runs it as a job (the job's status is polled meanwhile, so the stages and percents it
went through are recorded), then the result page is fetched with Flask's test client, and every layer
it asks for on demand (``data-layer-url`` attributes) too. Reported per analysis: the job's wall time,
the distinct progress percents seen, the page's bytes (as sent and gzip-compressed), its server time
and the same for its layer requests; and for each finer zoom level of a layer of hexagon counts (fetched
one map tile at a time as the page zooms in) its number of tiles and its ``TILES_PER_LEVEL`` fullest
tiles' responses (the largest reported).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench planner 123"
GOAL_BYTES = 600 * 1024
GOAL_SECONDS = 1.0
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_LAYER = re.compile(r'data-layer-url="([^"]+)"')
#: The fullest tiles fetched per zoom level (the largest response is reported).
TILES_PER_LEVEL = 3

#: The analyses measured: (name, path of the form, the form's values), each on the Bishan default.
CASES = (
    ("coverage, all households", "/planner/coverage",
     {"facilities": "service_centre", "demand": "household", "profile": "walk", "thresholds": "800m",
      "grid_spacing": "400"}),
    ("coverage, 50 m grid", "/planner/coverage",
     {"facilities": "service_centre", "demand": "grid", "profile": "walk", "thresholds": "800m",
      "grid_spacing": "50"}),
    ("gaps", "/planner/gaps",
     {"facilities": "service_centre", "demand": "household", "profile": "walk", "threshold": "800m",
      "hex_size": "500"}),
    ("service areas, 15 centres, 15 min by car", "/planner/service-areas",
     {"facilities": "service_centre", "status_filter": "all", "profile": "drive", "thresholds": "15min",
      "shape": "roads", "buffer_m": "50", "demand": "village"}),
    ("siting", "/planner/siting",
     {"layer": "service_centre", "model": "max_coverage", "p": "15", "per_town": "1", "keep_existing": "on",
      "demand": "household", "profile": "drive", "threshold": "15min", "candidate_radius": "2km",
      "candidates_per_town": "8", "method": "exact", "time_limit": "60"}),
)  # fmt: skip


def _token(client, path: str) -> str:
    return _CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def _fetch(client, url: str) -> dict:
    started = time.perf_counter()
    response = client.get(url)
    body = response.get_data()
    seconds = time.perf_counter() - started
    if response.headers.get("Content-Encoding") == "gzip":
        sent, raw = len(body), len(gzip.decompress(body))
    else:
        sent, raw = len(body), len(body)
    return {"url": url, "status": response.status_code, "bytes": raw, "sent_bytes": sent,
            "gzip_bytes": len(gzip.compress(gzip.decompress(body) if sent != raw else body, 6)),
            "seconds": round(seconds, 3)}  # fmt: skip


def _watch(client, job_id: str, seen: list, stop: threading.Event) -> None:
    started = time.perf_counter()
    while not stop.is_set():
        status = client.get(f"/planner/jobs/{job_id}.json").get_json() or {}
        point = (status.get("percent"), status.get("stage"))
        if not seen or seen[-1][1:] != point:
            seen.append((round(time.perf_counter() - started, 2), *point))
        stop.wait(0.25)


def _levels(client, app, job_id: str, urls: list[str]) -> list[dict]:
    """Fetch the fullest tiles of every finer level of the page's layers; report the largest per level."""
    from layers import jobs as job_store
    from webmap.maps.result_layers import level_tiles, read_index
    from webmap.store import get_store

    with app.app_context():
        folder = Path(job_store.get_job(get_store(), job_id).result_path)
    out = []
    for entry in read_index(folder) or []:
        url = next((u for u in urls if u.endswith(f"/layers/{entry['name']}.geojson")), None)
        for i, level in enumerate((entry.get("zoom") or {}).get("levels", [])):
            tiles = level_tiles(folder, entry["name"], i)
            fetched = [{**_fetch(client, f"{url}?level={i}&x={x}&y={y}"), "cells": n}
                       for x, y, n in tiles[:TILES_PER_LEVEL]]  # fmt: skip
            largest = max(fetched, key=lambda f: f["bytes"])
            out.append({"layer": entry["name"], "level": i, "edge_m": level["edge_m"], "min_zoom": level["min_zoom"],
                        "tiles": len(tiles), "cells": sum(n for _x, _y, n in tiles), "largest": largest,
                        "max_seconds": max(f["seconds"] for f in fetched)})  # fmt: skip
    return out


def run(only: str | None) -> list[dict]:
    from cryptography.fernet import Fernet

    from layers import users
    from layers.demo import load_demo_layers
    from webmap import create_app, jobs
    from webmap.store import get_district, get_store

    folder = Path(tempfile.mkdtemp(prefix="bench-result-pages-"))
    app = create_app({"TESTING": True, "SECRET_KEY": "bench-" + "k" * 32,
                      "DATABASE_URL": f"sqlite:///{folder / 'b.sqlite'}", "CACHE_DIR": str(ROOT / "instance" / "cache"),
                      "ENCRYPTION_KEY": Fernet.generate_key(), "JOBS_DIR": str(folder / "jobs")})  # fmt: skip
    with app.app_context():
        load_demo_layers(get_store(), get_district())
        users.add_user(get_store(), "bench-planner", role="planner", password=PASSWORD)
    client, watcher = app.test_client(), app.test_client()
    for c in (client, watcher):
        c.post("/login", data={"name": "bench-planner", "password": PASSWORD, "csrf_token": _token(c, "/login")})
    rows = []
    for name, path, form in CASES:
        if only and only not in name:
            continue
        response = client.post(path, data={**form, "csrf_token": _token(client, path)})
        assert response.status_code == 303, response.get_data(as_text=True)[:2000]
        job_id = response.headers["Location"].rsplit("/", 1)[-1]
        seen: list = []
        stop = threading.Event()
        thread = threading.Thread(target=_watch, args=(watcher, job_id, seen, stop))
        started = time.perf_counter()
        thread.start()
        jobs.wait_for_job(app, job_id, timeout_s=1800)
        job_seconds = time.perf_counter() - started
        stop.set()
        thread.join()
        status = client.get(f"/planner/jobs/{job_id}.json").get_json()
        assert status["status"] == "done", status
        page = _fetch(client, f"/planner/jobs/{job_id}")
        html = client.get(f"/planner/jobs/{job_id}").get_data(as_text=True)
        urls = [url.replace("&amp;", "&") for url in _LAYER.findall(html)]
        layers = [_fetch(client, url) for url in urls]
        levels = _levels(client, app, job_id, urls)
        row = {"analysis": name, "job_seconds": round(job_seconds, 2), "progress": seen, "page": page,
               "layers": layers, "levels": levels,
               "total_bytes": page["bytes"] + sum(x["bytes"] for x in layers),
               "total_gzip_bytes": page["gzip_bytes"] + sum(x["gzip_bytes"] for x in layers),
               "total_seconds": round(page["seconds"] + sum(x["seconds"] for x in layers), 3)}  # fmt: skip
        print(json.dumps({k: v for k, v in row.items() if k != "progress"}, ensure_ascii=False), flush=True)
        rows.append(row)
    jobs.shutdown_worker(app)
    return rows


def _kb(n: int) -> str:
    return f"{n / 1024:,.0f} KB"


def write_markdown(out: Path) -> None:
    parts = ["# Planner result pages on Bishan", "",
             "`python benchmarks/bench_result_pages.py --label <label>`: each analysis submitted through its form "
             "and run as a job by the embedded worker on the demo store; then its result page and the layers the "
             "page fetches on demand, through Flask's test client. Page and layer bytes as produced and gzip-"
             f"compressed; server time per request. Goal: page plus layers ≤ {_kb(GOAL_BYTES)} and ≤ "
             f"{GOAL_SECONDS:.0f} s; service areas (15 centres, 15 min by car) job ≤ 10 s.", ""]  # fmt: skip
    for path in sorted(out.glob("result_pages_*.json")):
        data = json.loads(path.read_text())
        code = f" Code: {data['code']}." if data.get("code") else ""
        parts += [f"## {data['label']}", "", f"Machine: {data['machine']}; run {data['when']}.{code}", "",
                  "| analysis | job (s) | progress steps | page | page gzip | page (s) | layers | layers gzip | "
                  "layers (s) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in data["rows"]:
            if r.get("page") is None:
                parts.append(f"| {r['analysis']} ({r.get('note', 'not measured')}) | – | – | – | – | – | – | – | – |")
                continue
            lb = sum(x["bytes"] for x in r["layers"])
            lg = sum(x["gzip_bytes"] for x in r["layers"])
            ls = sum(x["seconds"] for x in r["layers"])
            percents = sorted({p[1] for p in r["progress"] if p[1] is not None})
            parts.append(f"| {r['analysis']} | {r['job_seconds']:.1f} | {len(percents)} | {_kb(r['page']['bytes'])} | "
                         f"{_kb(r['page']['gzip_bytes'])} | {r['page']['seconds']:.2f} | "
                         f"{len(r['layers'])}: {_kb(lb)} | {_kb(lg)} | {ls:.2f} |")  # fmt: skip
        parts.append("")
        for r in data["rows"]:
            steps = ", ".join(f"{t:.1f}s→{p:.0f}%" for t, p, _s in r["progress"] if p is not None)
            parts.append(f"- {r['analysis']}: progress {steps or 'not recorded'}")
        parts.append("")
        zoomed = [(r["analysis"], lv) for r in data["rows"] for lv in r.get("levels") or []]
        if zoomed:
            parts += ["Finer zoom levels (one request per map tile in view; the largest of the "
                      f"{TILES_PER_LEVEL} fullest tiles):", "",
                      "| analysis | layer | level (edge, from zoom) | tiles | cells | largest tile | gzip | "
                      "slowest (s) |", "|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
            for name, lv in zoomed:
                big = lv["largest"]
                parts.append(f"| {name} | {lv['layer']} | {lv['level']} ({lv['edge_m']:g} m, ≥ {lv['min_zoom']}) | "
                             f"{lv['tiles']:,} | {lv['cells']:,} | {_kb(big['bytes'])} ({big['cells']} cells) | "
                             f"{_kb(big['gzip_bytes'])} | {lv['max_seconds']:.3f} |")  # fmt: skip
            parts.append("")
    (out / "result_pages.md").write_text("\n".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="name of this run (before, after)")
    parser.add_argument("--only", default=None, help="run only the analyses whose name holds this text")
    args = parser.parse_args()
    rows = run(args.only)
    out = ROOT / "benchmarks" / "results"
    payload = {"label": args.label, "machine": f"{platform.machine()}, {platform.python_version()}",
               "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}  # fmt: skip
    (out / f"result_pages_{args.label}.json").write_text(json.dumps(payload, ensure_ascii=False, indent=1))
    write_markdown(out)


if __name__ == "__main__":
    main()
