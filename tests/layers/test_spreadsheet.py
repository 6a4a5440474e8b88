from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest

from layers.spreadsheet import neutralise_formulas, safe_text

ROOT = Path(__file__).resolve().parents[2]
#: Generators of the demo *input* folders (seeded, our own text): not exports.
_INPUT_GENERATORS = {"layers/synthetic.py", "layers/synthetic_layers.py"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+86 138 0000 0000", "'+86 138 0000 0000"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("张三", "张三"),
        ("a=b", "a=b"),
        ("-12.5", "-12.5"),  # a number written as text is read as that number: nothing runs
        ("+3", "+3"),
        ("-1e-3", "-1e-3"),
        ("", ""),
        (-7, -7),
        (None, None),
    ],
)
def test_safe_text_marks_only_text_that_would_run(value, expected):
    assert safe_text(value) == expected


def test_neutralise_formulas_keeps_numbers_and_covers_labels():
    df = pd.DataFrame({"name": ["=1+1", "张三", None], "=col": [-1.5, 2.0, 3.0]}, index=["@i", "b", "c"])
    out = neutralise_formulas(df)
    assert out["name"].tolist()[:2] == ["'=1+1", "张三"] and pd.isna(out["name"].iloc[2])
    assert list(out.columns) == ["name", "'=col"] and out["'=col"].tolist() == [-1.5, 2.0, 3.0]
    assert out["'=col"].dtype == "float64" and list(out.index) == ["'@i", "b", "c"]
    assert df["name"].iloc[0] == "=1+1"  # the input is not changed


def test_neutralise_formulas_covers_multiindex_levels():
    df = pd.DataFrame({"n": [1, 2]}, index=pd.MultiIndex.from_tuples([("-x", 1), ("y", 2)]))
    assert list(neutralise_formulas(df).index) == [("'-x", 1), ("y", 2)]


def _writer_calls() -> list[tuple[str, int, str]]:
    """Every ``.to_csv(`` / ``.to_excel(`` / ``openpyxl.Workbook(`` call outside the input generators."""
    found = []
    for package in ("layers", "analyses", "webmap", "geo"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in _INPUT_GENERATORS:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    if node.func.attr in ("to_csv", "to_excel"):
                        receiver = node.func.value
                        named = isinstance(receiver, ast.Call) and getattr(receiver.func, "id", "")
                        found.append((rel, node.lineno, "ok" if named == "neutralise_formulas" else "raw"))
                    elif node.func.attr == "Workbook":
                        found.append((rel, node.lineno, "workbook"))
    return found


def test_every_csv_and_xlsx_writer_goes_through_neutralise_formulas():
    calls = _writer_calls()
    raw = [c for c in calls if c[2] == "raw"]
    assert raw == [], f"write these through layers.spreadsheet.neutralise_formulas: {raw}"
    # the one openpyxl writer (layers.io._write_xlsx) neutralises the frame before writing its cells
    assert [(c[0]) for c in calls if c[2] == "workbook"] == ["layers/io.py"]
    # the scan sees the writers: the layer exports and the analyses' result files (analyses.runs.common)
    assert {c[0] for c in calls if c[2] == "ok"} >= {"layers/io.py", "analyses/runs/common.py"}
