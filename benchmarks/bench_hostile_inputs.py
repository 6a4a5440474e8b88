"""Hostile inputs through the real `accessplan import`, and every bypass of the append-only tables.

Run from the repository root:  nice .venv/bin/python benchmarks/bench_hostile_inputs.py
Writes benchmarks/results/hostile_inputs.json and hostile_inputs.md.

1. Each bad file is imported into ``household`` by ``accessplan import`` in a fresh process (into an
   SQLite store that already holds the 20 demo households), under ``LANG=zh_CN.UTF-8``; the script records
   the command's exit code, elapsed time, peak RSS (``ru_maxrss`` of that child alone: each child is
   waited for on its own and its usage is the difference of ``RUSAGE_CHILDREN`` maxima, taken as the
   child's own value because every child is the only one running) and the first line of the message
   shown. The files: a fill-down ledger (one id on all 20,000 rows), a value in column XFD on 8,000
   rows, a 1,000,000-row XLSX (a zip bomb by rows: ~2.6 MB on disk), an 8 MB XLSX padding part
   compressed ~1,000:1, an empty file, a CSV named .xlsx, a cut-off XLSX, a 300,000-row CSV, and a
   ledger whose names and addresses hold HTML/JS (`` ` ``, ``${…}``, ``</script>``, ``<img onerror>``,
   quotes, a backslash) and spreadsheet formulas.
2. Every bypass of the history and access log (REPLACE, INSERT OR REPLACE, UPDATE, DELETE, TRUNCATE,
   ALTER TABLE … DISABLE TRIGGER, DROP TRIGGER, DROP TABLE, upsert, rename) is sent as the app on
   SQLite (the app's connection, with its authorizer) and on PostgreSQL as the app's role
   (``--postgres-url``; the schema made by the owner role, ``--owner-url``): refused or allowed, and
   whether the rows and triggers are unchanged afterwards.

PostgreSQL defaults to ``ACCESSPLAN_TEST_POSTGRES_URL`` / ``ACCESSPLAN_TEST_POSTGRES_OWNER_URL``; its
``public`` schema is dropped and made again by the owner.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from layers.district import load_district  # noqa: E402
from layers.store import Store  # noqa: E402
from synthetic.layers import household_ledger  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
HOSTILE = ("`", "${alert(1)}", "</script><script>alert(1)</script>", '<img src=x onerror="alert(1)">', '"', "'", "\\")

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
    '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)


def raw_xlsx(path: Path, rows, *, extra: dict[str, bytes] | None = None) -> Path:
    """Write a minimal XLSX whose sheet holds ``rows`` (iterables of XML ``<c>`` elements), streamed."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with zf.open("xl/worksheets/sheet1.xml", "w") as out:
            out.write(
                b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                b'spreadsheetml/2006/main"><sheetData>'
            )
            for i, cells in enumerate(rows, start=1):
                out.write(f'<row r="{i}">{"".join(cells)}</row>'.encode())
            out.write(b"</sheetData></worksheet>")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def _n(ref: str, value: object) -> str:
    return f'<c r="{ref}"><v>{value}</v></c>'


def _s(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def make_inputs(folder: Path, district) -> dict[str, tuple[Path, str]]:
    """Write every hostile file; return ``{name: (path, what it is)}``."""
    inputs: dict[str, tuple[Path, str]] = {}
    ledger = household_ledger(20_000, district=district)
    fill_down = ledger.copy()
    fill_down["id"] = fill_down["id"].iloc[0]  # a ledger whose first id was filled down every row
    path = folder / "fill_down_20000.csv"
    fill_down.to_csv(path, index=False)
    inputs["fill-down ledger"] = (path, "20,000 rows, one id on every row (CSV)")

    path = raw_xlsx(folder / "xfd_8000.xlsx", ([_s("A1", "编号")], *([_s(f"A{i}", f"T{i}"), _n(f"XFD{i}", 1)]
                                                                     for i in range(2, 8001))))  # fmt: skip
    inputs["column XFD"] = (path, "a value in column XFD on each of 8,000 rows (XLSX)")
    path = raw_xlsx(folder / "million_rows.xlsx", ([_n(f"A{i}", 1)] for i in range(1, 1_000_001)))
    inputs["1M-row zip bomb"] = (path, "1,000,000 rows of one number (XLSX)")
    path = raw_xlsx(folder / "ratio_bomb.xlsx", [[_s("A1", "编号")], [_s("A2", "T1")]],
                    extra={"xl/media/pad.bin": b"\0" * (8 * 1024 * 1024)})  # fmt: skip
    inputs["ratio zip bomb"] = (path, "an 8 MB part of zeros compressed ~1,000:1 (XLSX)")
    path = folder / "empty.xlsx"
    path.write_bytes(b"")
    inputs["empty xlsx"] = (path, "0 bytes named .xlsx")
    path = folder / "csv_named.xlsx"
    path.write_bytes(b"id,name\nT1,x\n")
    inputs["non-zip xlsx"] = (path, "a CSV named .xlsx")
    good = raw_xlsx(folder / "good.xlsx", [[_s("A1", "编号")], [_s("A2", "T1")]])
    path = folder / "cut.xlsx"
    path.write_bytes(good.read_bytes()[:-40])
    inputs["damaged xlsx"] = (path, "an XLSX with its last 40 bytes cut off")
    big = household_ledger(300_000, district=district)
    path = folder / "huge_300000.csv"
    big.to_csv(path, index=False)
    inputs["huge CSV"] = (path, f"300,000 valid rows ({path.stat().st_size / 1e6:.0f} MB)")

    hostile = ledger.iloc[: len(HOSTILE) * 2].copy()
    for i in range(len(hostile)):
        payload = HOSTILE[i % len(HOSTILE)]
        hostile.iloc[i, hostile.columns.get_loc("name")] = f"张{payload}"
        address = f"璧山区璧城街道{payload}号" if i % 2 else '=HYPERLINK("x")'
        hostile.iloc[i, hostile.columns.get_loc("address")] = address
    path = folder / "hostile_names.csv"
    hostile.to_csv(path, index=False)
    inputs["hostile names"] = (path, f"{len(hostile)} rows: names and addresses with HTML/JS and formulas")
    return inputs


def run_import(path: Path, env: dict[str, str]) -> dict[str, object]:
    """Run ``accessplan import household PATH`` in a fresh process: exit code, seconds, peak RSS, message."""
    rss_file = path.with_suffix(".rss")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, "import", "household", str(path)],
        capture_output=True, text=True, env={**env, "BENCH_RSS_FILE": str(rss_file)}, cwd=ROOT, timeout=1800,
        check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    peak_kb = int(rss_file.read_text())
    shown = [line for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip() and not _LOG.match(line)]
    return {
        "exit": done.returncode,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "traceback": "Traceback" in done.stderr,
        # the verdict: the error, the problem summary or the import's counts (notes such as the encoding come first)
        "message": next((line for line in shown if not line.startswith(_NOTES)), shown[0] if shown else "")[:300],
        "lines": len(shown),
    }


#: The child: the real CLI, writing its own peak RSS (``ru_maxrss``, kB) at exit, whatever the exit code.
_CHILD = (
    "import atexit, os, resource\n"
    "atexit.register(lambda: open(os.environ['BENCH_RSS_FILE'], 'w').write("
    "str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))\n"
    "from webmap.cli import main\n"
    "main()\n"
)
#: How the import's notes begin (the encoding, totals rows, inferred villages, blanks kept, matching).
_NOTES = ("文件编码", "第 ", "按身份证号", "空白单元格", "已按")
#: Lines of the logging handler (``INFO name: …``), not the message the command shows.
_LOG = re.compile(r"^(DEBUG|INFO|WARNING) [\w.]+: ")


#: Rows each bypass tries to write into each append-only table (``seq`` is the stored row's).
LOG_ROWS = {
    "history": "(seq, at, actor, layer, feature_id, action, version) "
    "VALUES ({seq}, '2026-01-01 00:00:00', 'x', 'rehab_station', 'RS-00', 'insert', 9)",
    "access_log": "(seq, at, actor, layer, feature_id, reason) "
    "VALUES ({seq}, '2026-01-01 00:00:00', 'x', 'household', 'HH-1', 'xxxx')",
}
BYPASSES = {
    "REPLACE": "REPLACE INTO {t} {row}",
    "INSERT OR REPLACE": "INSERT OR REPLACE INTO {t} {row}",
    "INSERT … ON CONFLICT DO UPDATE": "INSERT INTO {t} {row} ON CONFLICT (seq) DO UPDATE SET actor = 'x'",
    "UPDATE": "UPDATE {t} SET actor = 'x'",
    "DELETE": "DELETE FROM {t}",
    "TRUNCATE": "TRUNCATE {t}",
    "ALTER TABLE … DISABLE TRIGGER": "ALTER TABLE {t} DISABLE TRIGGER {trigger}",
    "ALTER TABLE … DISABLE TRIGGER ALL": "ALTER TABLE {t} DISABLE TRIGGER ALL",
    "DROP TRIGGER": "DROP TRIGGER {drop_trigger}",
    "DROP TABLE": "DROP TABLE {t}",
    "ALTER TABLE … RENAME": "ALTER TABLE {t} RENAME TO {t}_old",
}
#: The trigger that refuses UPDATE on each backend: its name, and how DROP TRIGGER names it.
TRIGGERS = {"sqlite": ("{t}_no_update", "{t}_no_update"), "postgresql": ("{t}_append_only", "{t}_append_only ON {t}")}


def _snapshot(engine: sa.Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY seq"))] for t in LOG_ROWS}


def _triggers(engine: sa.Engine) -> set[str]:
    sql = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger'",
        "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O'",
    }[engine.dialect.name]
    with engine.connect() as conn:
        return set(conn.execute(sa.text(sql)).scalars())


def try_bypasses(store: Store) -> list[dict[str, object]]:
    """Send every bypass to both append-only tables through the app's own engine; record what happened."""
    station = pd.DataFrame({"id": ["RS-00"], "town_code": ["500120001"], "village_code": ["500120001001"],
                            "name": ["康复站"], "address": ["璧山区璧城街道"], "lon": [106.22], "lat": [29.59],
                            "datum": ["wgs84"], "status": ["open"], "beds": [2]})  # fmt: skip
    store.upsert_features("rehab_station", station, user="a")
    store.log_access("household", ["HH-1"], user="caseworker1", reason="入户走访", channel="web", ip="10.0.0.7")
    dialect = store.engine.dialect.name
    out = []
    triggers = _triggers(store.engine)
    for table, row in LOG_ROWS.items():
        before = _snapshot(store.engine)
        for name, template in BYPASSES.items():
            trigger, drop_trigger = (n.format(t=table) for n in TRIGGERS[dialect])
            statement = template.format(t=table, row=row.format(seq=before[table][0][0]), trigger=trigger,
                                        drop_trigger=drop_trigger)  # fmt: skip
            try:
                with store.engine.begin() as conn:
                    conn.execute(sa.text(statement))
                outcome, error = "allowed", ""
            except sa.exc.DBAPIError as exc:
                error = str(exc.orig).splitlines()[0][:120]
                outcome = "not SQL here" if "syntax error" in error else "refused"
            intact = _snapshot(store.engine) == before and _triggers(store.engine) == triggers
            out.append({"backend": dialect, "table": table, "bypass": name, "outcome": outcome,
                        "rows_intact": intact, "error": error})  # fmt: skip
    return out


def _reset_postgres(owner_url: str, app_url: str) -> None:
    engine = sa.create_engine(owner_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA public TO "{sa.make_url(app_url).username}"'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=os.environ.get("ACCESSPLAN_TEST_POSTGRES_URL"))
    parser.add_argument("--owner-url", default=os.environ.get("ACCESSPLAN_TEST_POSTGRES_OWNER_URL"))
    parser.add_argument("--only", help="comma-separated input names to run (default: all)")
    args = parser.parse_args()
    district = load_district()
    results: dict[str, object] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = make_inputs(folder, district)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LANG": "zh_CN.UTF-8", "LC_ALL": "",
               "ACCESSPLAN_INSTANCE_PATH": str(folder / "instance"),
               "ACCESSPLAN_DATABASE_URL": f"sqlite:///{folder / 'store.sqlite'}",
               "ACCESSPLAN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
               "ACCESSPLAN_BLIND_INDEX_KEY": Fernet.generate_key().decode()}  # fmt: skip
        env.pop("LC_ALL")
        subprocess.run([sys.executable, "-c", "from webmap.cli import main; main()", "load-demo"],
                       env=env, cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        wanted = set(args.only.split(",")) if args.only else None
        rows = []
        for name, (path, what) in inputs.items():
            if wanted and name not in wanted:
                continue
            size = path.stat().st_size
            row = {"input": name, "what": what, "file_mb": round(size / 1e6, 2)}
            if path.suffix == ".xlsx" and zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as zf:
                    row["uncompressed_mb"] = round(sum(i.file_size for i in zf.infolist()) / 1e6, 1)
            row.update(run_import(path, env))
            print(json.dumps(row, ensure_ascii=False), flush=True)
            rows.append(row)
        results["inputs"] = rows
        bypasses = try_bypasses(Store(f"sqlite:///{folder / 'bypass.sqlite'}"))
        if args.postgres_url and args.owner_url:
            _reset_postgres(args.owner_url, args.postgres_url)
            store = Store(args.postgres_url, migration_url=args.owner_url)
            bypasses += try_bypasses(store)
            store.close()
        results["bypasses"] = bypasses
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hostile_inputs.json").write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n")
    (RESULTS / "hostile_inputs.md").write_text(markdown(results))
    print(markdown(results))


def markdown(results: dict) -> str:
    """The results as the README's table."""
    lines = [
        "# Hostile inputs and append-only bypasses",
        "",
        f"`nice python benchmarks/bench_hostile_inputs.py` on {results['when']} ({results['machine']}; load "
        f"average {', '.join(f'{x:.1f}' for x in results['load_average'])} at the start: the machine is shared).",
        "",
        "Each file through `accessplan import household FILE` in a fresh process under `LANG=zh_CN.UTF-8`"
        " (store: SQLite with the 20 demo households). Peak RSS is the child's own `ru_maxrss` (the whole"
        " interpreter with pandas, Flask and the store: ~250 MB before any file is read). The verdict is the first"
        " line shown that is not a note (the error, the problem summary or the counts); the log handler's INFO"
        " lines are not counted. The problem report lists one line per affected row (each names at most 5 rows"
        " and the count).",
        "",
        "| input | file | MB on disk | MB unzipped | exit | traceback | s | peak RSS MB | lines | verdict shown |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for r in results["inputs"]:
        peak = f"{r['peak_rss_mb']:,.0f}"
        message = r["message"].replace("|", "\\|")
        lines.append(
            f"| {r['input']} | {r['what']} | {r['file_mb']:,} | {r.get('uncompressed_mb', '')} | {r['exit']} | "
            f"{'yes' if r['traceback'] else 'no'} | {r['seconds']:,} | {peak} | {r['lines']:,} | {message} |"
        )
    lines += [
        "",
        "Every bypass of the append-only `history` and `access_log`, sent by the app (SQLite: the app's connection"
        " with its authorizer; PostgreSQL: the app's role, the tables owned by the owner role). “not SQL here”: the"
        " statement does not exist on that backend (refused by the parser).",
        "",
        "| backend | table | bypass | outcome | rows and triggers intact | error |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for b in results["bypasses"]:
        error = b["error"].replace("|", "\\|")
        lines.append(f"| {b['backend']} | {b['table']} | {b['bypass']} | {b['outcome']} | "
                     f"{'yes' if b['rows_intact'] else 'NO'} | {error} |")  # fmt: skip
    n = len(results["bypasses"])
    allowed = sum(b["outcome"] == "allowed" for b in results["bypasses"])
    lines += ["", f"{n - allowed} of {n} bypasses refused, {allowed} allowed."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
