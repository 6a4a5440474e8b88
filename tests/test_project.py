"""Checks that keep the project's set-up files in agreement with each other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_environment_yml_lists_the_packages_pip_installs():
    project = _pyproject()["project"]
    wanted = _names(project["dependencies"]) | {
        name for extra in project["optional-dependencies"].values() for name in _names(extra)
    }
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    dependencies = text.split("dependencies:", 1)[1]
    entries = [
        line.split("#")[0].strip()[2:].strip()
        for line in dependencies.splitlines()
        if line.strip().startswith("- ")
    ]
    listed = _names([e for e in entries if e != "pip:"])
    assert wanted <= listed, f"missing from environment.yml: {sorted(wanted - listed)}"
    assert listed - wanted == {"python", "pip"}


def test_every_dependency_is_pinned_in_the_lock():
    project = _pyproject()["project"]
    wanted = _names(project["dependencies"]) | {
        name for extra in project["optional-dependencies"].values() for name in _names(extra)
    }
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pinned = {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==", lock, re.M)}
    assert wanted <= pinned, f"not pinned in requirements.lock: {sorted(wanted - pinned)}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in readme and "make run" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_imports_go_one_way():
    allowed = {
        "geo": set(),
        "layers": {"geo"},
        "analyses": {"geo", "layers"},
        "synthetic": {"geo", "layers"},
        "webmap": {"geo", "layers", "analyses", "synthetic"},
    }
    pattern = re.compile(r"^\s*(?:from|import)\s+(geo|layers|analyses|synthetic|webmap)\b", re.M)
    offenders = []
    for package, others in allowed.items():
        for path in (ROOT / package).rglob("*.py"):
            for imported in pattern.findall(path.read_text(encoding="utf-8")):
                if imported != package and imported not in others:
                    offenders.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert offenders == []


def test_only_webmap_imports_flask_or_folium():
    pattern = re.compile(r"^\s*(?:from|import)\s+(flask|folium)\b", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("geo", "layers", "analyses")
        for path in (ROOT / package).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
