"""Benchmark importing households: read, validate, store and end to end, CSV and XLSX, SQLite and PostgreSQL.

Run from the repository root:  .venv/bin/python benchmarks/bench_import.py [--sizes 20000,100000] [--quick]
Writes benchmarks/results/import.json and import.md.

For each size (20,000 and 100,000 rows by default):

The household ledger is `synthetic.layers.household_ledger` of each size (distinct ids, valid ID
numbers with their GB 11643 check digit, distinct phone numbers), written three ways (`FILE_KINDS`):

- ``csv``: UTF-8 with BOM, as Excel's "CSV UTF-8" saves it;
- ``xlsx``: as Excel and WPS save a workbook: strings in the shared-strings table, coordinates and the
  disability category/grade as numbers, codes, ID and phone numbers as text (XlsxWriter, whose output
  is tested against files saved by Excel);
- ``xlsx-inline``: every cell an inline string (``t="inlineStr"``), as openpyxl's write-only mode and
  some export tools write it: a larger sheet XML for the same rows.

Each (file, backend) pair runs in its own process, so that ``ru_maxrss`` is that scenario's peak:

1. phases on an empty store: `read_table`, `validate_layer`, store (`Store.upsert_features` of the clean frame);
2. `import_layer` end to end into another empty store, then the same file again (all rows unchanged);
3. `import_layer` end to end once more under tracemalloc (peak of Python allocations; slower);
4. each XLSX read side by side: `read_table` (python-calamine, after the zip and used-range checks) and
   openpyxl (``load_workbook(read_only=True)``, every row's values), each in a fresh process: rows/s
   and peak RSS;
5. for the target, each file into SQLite end to end ``--target-runs`` times (5), each in a fresh
   process into an empty store; the median counts.

PostgreSQL runs against ``--postgres-url`` (default: ``ACCESSPLAN_BENCH_POSTGRES_URL`` or the
``accessplan_bench`` database of the local test server); its public schema is dropped between runs.
Create it once:  ``createdb -h 127.0.0.1 -U accessplan accessplan_bench`` (after ``source .ci/postgres.sh``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import openpyxl  # noqa: E402
import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import xlsxwriter  # noqa: E402

from layers.crypto import BlindIndex, FieldCipher  # noqa: E402
from layers.district import load_district  # noqa: E402
from layers.importer import import_layer  # noqa: E402
from layers.io import read_table  # noqa: E402
from layers.store import Store  # noqa: E402
from layers.validate import validate_layer  # noqa: E402
from synthetic.layers import household_ledger  # noqa: E402

logger = logging.getLogger("bench_import")
LAYER = "household"
TARGET_ROWS_PER_S = 20_000
DEFAULT_PG_URL = "postgresql+psycopg://accessplan:accessplan@127.0.0.1:5432/accessplan_bench"
RESULTS = ROOT / "benchmarks" / "results"


#: The files each ledger is written as (see the module docstring): kind -> file name.
FILE_KINDS = {"csv": "household.csv", "xlsx": "household.xlsx", "xlsx-inline": "household-inline.xlsx"}
#: Columns a clerk's workbook holds as numbers (the others as text, as ID numbers must be).
NUMBER_COLUMNS = {"lon": float, "lat": float, "disability_category": int, "disability_grade": int}


def write_ledger(ledger: pd.DataFrame, path: Path, kind: str) -> Path:
    """Write the ledger as `FILE_KINDS` ``kind``, header in row 1."""
    if kind == "csv":
        ledger.to_csv(path, index=False, encoding="utf-8-sig")
    elif kind == "xlsx":
        convert = [NUMBER_COLUMNS.get(c) for c in ledger.columns]
        wb = xlsxwriter.Workbook(path, {"strings_to_numbers": False})
        ws = wb.add_worksheet("household")
        ws.write_row(0, 0, list(ledger.columns))
        for i, row in enumerate(ledger.itertuples(index=False), start=1):
            ws.write_row(i, 0, [v if f is None or v is None else f(v) for f, v in zip(convert, row, strict=True)])
        wb.close()
    else:
        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet("household")
        ws.append(list(ledger.columns))
        for row in ledger.itertuples(index=False):
            ws.append(list(row))
        wb.save(path)
    return path


def _reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def _new_store(backend: str, workdir: Path, pg_url: str, key: bytes, tag: str) -> Store:
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'{tag}.sqlite'}"
    else:
        _reset_postgres(pg_url)
        url = pg_url
    return Store(url, cipher=FieldCipher(key), blind_index=BlindIndex(FieldCipher.generate_key()))


class _Clock:
    """Wall and CPU seconds since creation (after a garbage collection)."""

    def __init__(self) -> None:
        gc.collect()
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def _child_district():
    """Set up a benchmark child process: quiet logging, the district loaded once (as in the app)."""
    logging.basicConfig(level=logging.WARNING)
    district = load_district()
    _ = district.boundary, district.towns, district.villages
    return district


def run_scenario(kind: str, path: str, backend: str, pg_url: str, n_rows: int, with_tracemalloc: bool) -> dict:
    """Measure one file (`FILE_KINDS` ``kind``) on one backend (in a fresh process); return seconds, rates, peaks."""
    district = _child_district()
    key = FieldCipher.generate_key()
    out: dict[str, object] = {"format": kind, "backend": backend, "rows": n_rows}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)

        # 1. phases
        store = _new_store(backend, workdir, pg_url, key, "phases")
        clock = _Clock()
        table = read_table(path)
        out["read_s"], out["read_cpu_s"] = clock.stop()
        clock = _Clock()
        validation = validate_layer(LAYER, table, district=district, existing=store.statuses(LAYER))
        out["validate_s"], out["validate_cpu_s"] = clock.stop()
        assert validation.ok, validation.report()[:2000]
        clock = _Clock()
        counts = store.upsert_features(LAYER, validation.frame, user="bench")
        out["store_s"], out["store_cpu_s"] = clock.stop()
        assert (counts.inserted, counts.updated, counts.unchanged) == (n_rows, 0, 0), counts
        store.close()
        table = validation = None

        # 2. end to end, then the same file again
        store = _new_store(backend, workdir, pg_url, key, "e2e")
        clock = _Clock()
        outcome = import_layer(store, LAYER, path, district=district, user="bench")
        out["import_s"], out["import_cpu_s"] = clock.stop()
        assert outcome.counts is not None and outcome.counts.inserted == n_rows, outcome.validation.report()[:2000]
        clock = _Clock()
        outcome = import_layer(store, LAYER, path, district=district, user="bench")
        out["reimport_s"], out["reimport_cpu_s"] = clock.stop()
        assert outcome.counts is not None and outcome.counts.unchanged == n_rows, outcome.counts
        store.close()
        outcome = None
        out["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        # 3. end to end under tracemalloc
        if with_tracemalloc:
            store = _new_store(backend, workdir, pg_url, key, "traced")
            gc.collect()
            tracemalloc.start()
            import_layer(store, LAYER, path, district=district, user="bench")
            out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            store.close()
    for phase in ("read", "validate", "store", "import", "reimport"):
        out[f"{phase}_rows_per_s"] = n_rows / out[f"{phase}_s"]
    return out


def _scenario_in_child(args: tuple) -> dict:
    return run_scenario(*args)


def import_once(path: str, n_rows: int) -> dict:
    """Time one `import_layer` of ``path`` into an empty SQLite store (in a fresh process); return seconds."""
    district = _child_district()
    with tempfile.TemporaryDirectory() as tmp:
        store = _new_store("sqlite", Path(tmp), "", FieldCipher.generate_key(), "target")
        clock = _Clock()
        outcome = import_layer(store, LAYER, path, district=district, user="bench")
        wall, cpu = clock.stop()
        assert outcome.counts is not None and outcome.counts.inserted == n_rows, outcome.validation.report()[:2000]
        store.close()
    return {"import_s": wall, "import_cpu_s": cpu, "rows_per_s": n_rows / wall}


def _import_once_in_child(args: tuple) -> dict:
    return import_once(*args)


def read_once(path: str, reader: str, n_rows: int) -> dict:
    """Read ``path`` with ``reader`` (``calamine``: `read_table`; ``openpyxl``) in a fresh process; seconds and peak."""
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    clock = _Clock()
    if reader == "calamine":
        rows = len(read_table(path))
    else:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        rows = sum(1 for _ in wb.worksheets[0].iter_rows(min_row=2, values_only=True))
        wb.close()
    wall, cpu = clock.stop()
    assert rows == n_rows, (reader, rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"reader": reader, "read_s": wall, "read_cpu_s": cpu, "rows_per_s": n_rows / wall,
            "peak_rss_mb": peak, "rss_before_mb": base}  # fmt: skip


def _read_once_in_child(args: tuple) -> dict:
    return read_once(*args)


def cpu_reference_s(steps: int = 10_000_000) -> float:
    """Return the best of three timings of a ``steps``-step pure-Python loop (this VM's speed of the moment).

    The shared VM runs the same code 20-30 % faster or slower from one hour to the next; the reference
    says which state a run was in. It gauges plain interpretation only: when the host's memory is the
    slow part (it has been), openpyxl's read of the same file tracks the import better.
    """
    best = float("inf")
    for _ in range(3):
        start, total = time.perf_counter(), 0
        for i in range(steps):
            total += i
        best = min(best, time.perf_counter() - start)
    return best


def machine_info() -> dict:
    """Return what the numbers depend on: CPU, cores, memory, load, speed of the moment, versions."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import cryptography
    import psycopg

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_reference_s": round(cpu_reference_s(), 3),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pandas": pd.__version__,
        "sqlalchemy": sa.__version__,
        "cryptography": cryptography.__version__,
        "psycopg": psycopg.__version__,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _postgres_available(url: str) -> str | None:
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
        engine.dispose()
    except sa.exc.OperationalError as exc:
        logger.warning("PostgreSQL at %s not reachable (%s); skipping it", url.split("@")[-1], exc.orig)
        return None
    return str(version)


def write_markdown(result: dict, path: Path) -> None:
    """Write the results tables for people: one section per ledger size."""
    m = result["machine"]
    lines = [
        "# Import benchmark: household ledgers",
        "",
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; load average at start {m['load_average_at_start']}"
        " — **the machine is shared** (several agents run on its 2 cores), so wall-clock rates are lower than on "
        "an idle machine: CPU seconds of the process are the steadier figure; "
        f"CPU reference (a 10,000,000-step Python loop, best of 3, at the start): {m['cpu_reference_s']:.3f} s "
        "(the VM's speed varies by 20-30 % from hour to hour, and memory-heavy work like this import varies "
        "more than this loop: openpyxl's read of the same file, below, is the closer gauge of a run's state); "
        f"Python {m['python']}, pandas {m['pandas']}, SQLAlchemy {m['sqlalchemy']}, "
        f"cryptography {m['cryptography']}, psycopg {m['psycopg']}, PostgreSQL {result.get('postgres') or 'n/a'}; "
        f"{m['date']}. Command: `{result['command']}`.",
        "",
        "Rows per second (wall clock; CPU seconds of this process in brackets). `read` = `read_table` (XLSX "
        "through python-calamine after the zip and used-range checks); `store` = `Store.upsert_features` "
        "(encrypt every row's personal fields, insert features and history in one transaction); `import` = "
        "`import_layer` end to end into an empty store; `re-import` = the same file again (all rows unchanged).",
    ]
    for size in result["sizes"]:
        n = size["rows"]
        lines += [
            "",
            f"## {n:,} rows",
            "",
            "| file | backend | read | validate | store | import | re-import | import s | peak RSS MB "
            "| tracemalloc MB |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in size["scenarios"]:
            cells = [
                f"{r[f'{p}_rows_per_s']:,.0f} ({r[f'{p}_cpu_s']:.2f} s)"
                for p in ("read", "validate", "store", "import", "reimport")
            ]
            traced = f"{r['tracemalloc_peak_mb']:,.0f}" if "tracemalloc_peak_mb" in r else "-"
            lines.append(
                f"| {r['format']} | {r['backend']} | {' | '.join(cells)} | {r['import_s']:.1f} | "
                f"{r['ru_maxrss_mb']:,.0f} | {traced} |"
            )
        if size["reads"]:
            lines += [
                "",
                "XLSX read side by side (same file, each reader in a fresh process):",
                "",
                "| file | reader | rows/s | s (CPU s) | peak RSS MB | of which reading MB |",
                "|---|---|---|---|---|---|",
            ]
            for r in size["reads"]:
                name = "ours: `read_table` (python-calamine)" if r["reader"] == "calamine" else "openpyxl read-only"
                lines.append(
                    f"| {r['format']} | {name} | {r['rows_per_s']:,.0f} | {r['read_s']:.2f} ({r['read_cpu_s']:.2f}) | "
                    f"{r['peak_rss_mb']:,.0f} | {r['peak_rss_mb'] - r['rss_before_mb']:,.0f} |"
                )
        for fmt, target in size["targets"].items():
            runs = target["runs"]
            lines += [
                "",
                f"Target: ≥ {target['rows_per_s']:,} rows/s validated and stored from `{fmt}` into SQLite "
                f"(`import_layer` end to end, median of {len(runs)} runs, each in a fresh process into an empty "
                f"store): measured {target['measured_rows_per_s']:,.0f} rows/s wall, "
                f"{target['measured_cpu_rows_per_s']:,.0f} rows per CPU second — "
                f"{'met' if target['met'] else 'not met'} "
                f"(runs: {', '.join(format(r['rows_per_s'], ',.0f') for r in runs)} rows/s; "
                f"CPU {', '.join(format(r['import_cpu_s'], '.2f') for r in runs)} s).",
            ]
    if result.get("notes"):
        lines += ["", *result["notes"]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _measure_size(n_rows: int, args: argparse.Namespace, backends: list[str], formats: list[str]) -> dict:
    """Build one ledger size as CSV and XLSX and run every measurement of it in fresh processes."""
    scenarios, reads, targets = [], [], {}
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ledger = household_ledger(n_rows)
        files = {fmt: write_ledger(ledger, Path(tmp) / FILE_KINDS[fmt], fmt) for fmt in formats}
        logger.info("Wrote %s rows as %s in %.1f s", f"{n_rows:,}", "/".join(formats), time.perf_counter() - t)
        del ledger
        for fmt in formats:
            for backend in backends:
                with ctx.Pool(1, maxtasksperchild=1) as pool:
                    job = (fmt, str(files[fmt]), backend, args.postgres_url, n_rows, not args.quick)
                    r = pool.apply(_scenario_in_child, (job,))
                logger.info(
                    "%s → %s: read %.2f s, validate %.2f s, store %.2f s; import %.2f s (%s rows/s), re-import %.2f s",
                    fmt, backend, r["read_s"], r["validate_s"], r["store_s"], r["import_s"],
                    f"{r['import_rows_per_s']:,.0f}", r["reimport_s"],
                )  # fmt: skip
                scenarios.append(r)
        for fmt in (f for f in formats if f.startswith("xlsx")):
            for reader in ("calamine", "openpyxl"):
                with ctx.Pool(1, maxtasksperchild=1) as pool:
                    r = pool.apply(_read_once_in_child, ((str(files[fmt]), reader, n_rows),))
                logger.info("%s read with %s: %.2f s (%s rows/s), peak RSS %.0f MB", fmt, reader, r["read_s"],
                            f"{r['rows_per_s']:,.0f}", r["peak_rss_mb"])  # fmt: skip
                reads.append({"format": fmt, **r})
        for fmt in formats:
            runs = []
            for _ in range(max(1, args.target_runs)):
                with ctx.Pool(1, maxtasksperchild=1) as pool:
                    runs.append(pool.apply(_import_once_in_child, ((str(files[fmt]), n_rows),)))
            logger.info("%s → SQLite target runs: %s rows/s", fmt, ", ".join(f"{r['rows_per_s']:,.0f}" for r in runs))
            median = statistics.median(r["rows_per_s"] for r in runs)
            targets[fmt] = {
                "rows_per_s": TARGET_ROWS_PER_S,
                "runs": runs,
                "measured_rows_per_s": median,
                "measured_cpu_rows_per_s": n_rows / statistics.median(r["import_cpu_s"] for r in runs),
                "met": median >= TARGET_ROWS_PER_S,
            }
    return {"rows": n_rows, "scenarios": scenarios, "reads": reads, "targets": targets}


def main(argv: list[str] | None = None) -> int:
    """Build the ledgers, run every scenario in a fresh process, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="20000,100000", help="comma-separated ledger sizes (default 20000,100000)")
    parser.add_argument("--quick", action="store_true", help="10,000 rows, CSV only, no tracemalloc pass")
    parser.add_argument("--postgres-url", default=os.environ.get("ACCESSPLAN_BENCH_POSTGRES_URL", DEFAULT_PG_URL))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--formats", default=None, help=f"comma-separated subset of {','.join(FILE_KINDS)}")
    parser.add_argument("--out", type=Path, default=RESULTS / "import.json")
    parser.add_argument("--target-runs", type=int, default=5, help="imports into SQLite whose median counts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("layers").setLevel(logging.WARNING)
    sizes = [10_000] if args.quick else [int(v) for v in args.sizes.split(",")]
    machine = machine_info()
    postgres = None if args.no_postgres else _postgres_available(args.postgres_url)
    backends = ["sqlite"] + (["postgresql"] if postgres else [])
    formats = args.formats.split(",") if args.formats else (["csv"] if args.quick else list(FILE_KINDS))
    if unknown := set(formats) - set(FILE_KINDS):
        parser.error(f"unknown --formats {sorted(unknown)}: choose from {', '.join(FILE_KINDS)}")
    result = {
        "command": "python benchmarks/bench_import.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick,
        "machine": machine,
        "postgres": postgres,
        "sizes": [_measure_size(n, args, backends, formats) for n in sizes],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_markdown(result, args.out.with_suffix(".md"))
    logger.info("Wrote %s and %s", args.out, args.out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
