"""Load-test the public map page and the public API under waitress on loopback.

Run from the repository root:  .venv/bin/python benchmarks/bench_load.py [--clients 50] [--duration 30]
The server runs in its own process (waitress, demo data in a temporary SQLite store); the clients
are threads in this process, each with one keep-alive connection, stopping at the deadline or when
the request budget is spent. Only 127.0.0.1 is contacted. Clients accept gzip, as browsers do.
Writes benchmarks/results/load.json and load.md.

Targets: p95 ≤ 300 ms at 50 clients for the public page (``/``) and list (``/list``), API p95 < 200 ms,
no errors.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
logger = logging.getLogger("bench_load")

#: What is measured: name → path. The API endpoint is helper N1's public layer GeoJSON.
TARGETS = {
    "public_page": "/",
    "public_list": "/list",
    "api_layer": "/api/layers/accessible_toilet",
}
P95_TARGET_API_MS = 200.0
P95_TARGET_PAGE_MS = 300.0
PAGE_TARGETS = ("public_page", "public_list")


def serve(port: int, db_dir: str, threads: int) -> None:
    """Serve the app with the demo data on 127.0.0.1:``port`` (the child process)."""
    sys.path.insert(0, str(ROOT))
    from cryptography.fernet import Fernet
    from waitress import serve as waitress_serve

    from layers.demo import load_demo_layers
    from webmap import create_app
    from webmap.store import get_district, get_store

    app = create_app(
        {
            "SECRET_KEY": os.urandom(16).hex(),
            "DATABASE_URL": f"sqlite:///{db_dir}/load.sqlite",
            "CACHE_DIR": f"{db_dir}/cache",
            "ENCRYPTION_KEY": Fernet.generate_key(),
            "API_ANON_RATE_PER_S": None,  # 50 clients share one address: measure the server, not the limiter
        }
    )
    with app.app_context():
        load_demo_layers(get_store(), get_district())
    print("ready", flush=True)
    waitress_serve(app, host="127.0.0.1", port=port, threads=threads, connection_limit=200, _quiet=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def run_phase(base: str, path: str, *, clients: int, duration_s: float, max_requests: int) -> dict:
    """Run ``clients`` threads against ``base + path`` until the deadline or the request budget."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    budget = [max_requests]
    start_gate = threading.Event()

    def client() -> None:
        local_lat, local_err = [], []
        with httpx.Client(base_url=base, timeout=30.0, trust_env=False) as http:
            start_gate.wait()
            deadline = started + duration_s
            while time.perf_counter() < deadline:
                with lock:
                    if budget[0] <= 0:
                        break
                    budget[0] -= 1
                t0 = time.perf_counter()
                try:
                    response = http.get(path)
                    response.read()
                    if response.status_code != 200:
                        local_err.append(f"HTTP {response.status_code}")
                except httpx.HTTPError as error:
                    local_err.append(type(error).__name__)
                local_lat.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(local_lat)
            errors.extend(local_err)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    start_gate.set()
    for t in threads:
        t.join(timeout=duration_s + 60)
    elapsed = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies)
    return {
        "path": path,
        "clients": clients,
        "duration_s": round(elapsed, 2),
        "requests": len(ms),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "requests_per_s": round(len(ms) / elapsed, 1),
        "p50_ms": round(_percentile(ms, 50), 1),
        "p95_ms": round(_percentile(ms, 95), 1),
        "p99_ms": round(_percentile(ms, 99), 1),
        "max_ms": round(ms[-1], 1) if ms else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per target")
    parser.add_argument("--max-requests", type=int, default=50_000, help="request budget per target")
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    parser.add_argument("--targets", nargs="*", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.db_dir, args.threads)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-load-") as db_dir:
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), "--db-dir", db_dir, "--threads", str(args.threads)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            for _ in range(100):  # wait until the port accepts connections (at most 10 s)
                try:
                    httpx.get(base + "/api/layers", timeout=1.0, trust_env=False)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            results = {}
            for name in args.targets:
                path = TARGETS[name]
                warm = httpx.get(base + path, timeout=30.0, trust_env=False)  # fills the caches once
                logger.info("%s %s: warm-up HTTP %d, %d bytes", name, path, warm.status_code, len(warm.content))
                results[name] = run_phase(
                    base, path, clients=args.clients, duration_s=args.duration, max_requests=args.max_requests
                )
                results[name]["bytes"] = len(warm.content)
                results[name]["bytes_sent"] = warm.num_bytes_downloaded  # compressed, as on the wire
                results[name]["content_encoding"] = warm.headers.get("Content-Encoding", "identity")
                logger.info("%s: %s", name, results[name])
        finally:
            server.terminate()
            server.wait(timeout=30)

    api = results.get("api_layer")
    met = [r["errors"] == 0 for r in results.values()]
    if api is not None:
        met.append(api["p95_ms"] < P95_TARGET_API_MS)
    met += [results[name]["p95_ms"] <= P95_TARGET_PAGE_MS for name in PAGE_TARGETS if name in results]
    payload = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "server": {"wsgi": "waitress", "threads": args.threads, "host": "127.0.0.1", "data": "demo (data/bishan)"},
        "load": {"clients": args.clients, "duration_s_per_target": args.duration, "max_requests": args.max_requests},
        "results": results,
        "target": {"api_p95_ms": P95_TARGET_API_MS, "page_p95_ms": P95_TARGET_PAGE_MS, "errors": 0},
        "target_met": all(met),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [
        "# Load test: public page and public API (waitress, loopback)",
        "",
        f"{args.clients} concurrent clients (threads, keep-alive) for {args.duration:g} s per target, at most "
        f"{args.max_requests} requests; waitress with {args.threads} threads; demo data; "
        f"{os.cpu_count()} CPUs shared by server and clients (and by other work on the machine); the API's "
        "per-address rate limit is off (all clients share 127.0.0.1). Clients accept gzip. "
        "Run: `.venv/bin/python benchmarks/bench_load.py`.",
        "",
        "| target | path | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | bytes | bytes sent |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | `{r['path']}` | {r['requests']} | {r['requests_per_s']} | {r['p50_ms']} | {r['p95_ms']} "
            f"| {r['p99_ms']} | {r['max_ms']} | {r['errors']} | {r['bytes']} "
            f"| {r['bytes_sent']} ({r['content_encoding']}) |"
        )
    lines += [
        "",
        f"Target: zero errors, p95 ≤ {P95_TARGET_PAGE_MS:g} ms for `/` and `/list`, API p95 < "
        f"{P95_TARGET_API_MS:g} ms. Met: {payload['target_met']}. The machine is shared with other work, "
        "so latencies vary between runs.",
        "",
    ]
    (RESULTS / "load.md").write_text("\n".join(lines), encoding="utf-8")
    logger.info("Wrote %s and load.md", RESULTS / "load.json")


if __name__ == "__main__":
    main()
