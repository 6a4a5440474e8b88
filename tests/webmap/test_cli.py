from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from layers.crypto import KEY_ENV_VAR
from webmap.cli import main
from webmap.security import instance_secret_key


def test_help_lists_every_command(monkeypatch):
    monkeypatch.setenv("ACCESSPLAN_SECRET_KEY", "cli-tests-" + "k" * 32)
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("serve", "load-demo", "district", "run", "routes", "users", "import", "coverage", "site"):
        assert command in result.output


#: Libraries that take seconds and hundreds of MB to import: `accessplan --help` must not load them.
HEAVY = ("geopandas", "pandas", "osmnx", "networkx", "sklearn", "matplotlib", "folium", "scipy", "shapely",
         "sqlalchemy", "alembic", "numba")  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


def _modules_after(code: str) -> set[str]:
    """Run ``code`` in a fresh interpreter (this checkout first on the path); return its top-level modules."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                          timeout=120)  # fmt: skip
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_help_imports_no_heavy_library():
    """Building the CLI and printing its help loads Flask and click, none of the analysis or map libraries."""
    loaded = _modules_after(
        "from webmap.cli import main\n"
        "try:\n    main(['--help'], prog_name='accessplan')\nexcept SystemExit as stop:\n    assert stop.code == 0"
    )
    assert {"flask", "click", "webmap"} <= loaded
    assert sorted(loaded & set(HEAVY)) == []


def test_the_check_sees_a_heavy_import():
    """The same check on a command that runs an analysis's imports finds them (so the test above can fail)."""
    assert {"geopandas", "pandas"} <= _modules_after("import layers.privacy")


def test_a_late_choice_still_lists_and_checks_its_choices(monkeypatch):
    monkeypatch.setenv("ACCESSPLAN_SECRET_KEY", "cli-tests-" + "k" * 32)
    shown = CliRunner().invoke(main, ["export", "--help"])
    assert shown.exit_code == 0 and "public|caseworker|bureau|planner|admin" in shown.output
    refused = CliRunner().invoke(main, ["export", "household", "x.csv", "--role", "mayor"])
    assert refused.exit_code == 2
    assert "'mayor' is not one of 'public', 'caseworker', 'bureau', 'planner', 'admin'" in refused.output


def test_load_demo_if_empty_loads_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCESSPLAN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    monkeypatch.setenv(KEY_ENV_VAR, Fernet.generate_key().decode())
    monkeypatch.setenv("ACCESSPLAN_SECRET_KEY", "cli-tests-" + "k" * 32)
    runner = CliRunner()
    first = runner.invoke(main, ["load-demo", "--if-empty"])
    assert first.exit_code == 0, first.output
    assert "Loaded the embedded demo data" in first.output
    second = runner.invoke(main, ["load-demo", "--if-empty"])
    assert second.exit_code == 0 and "nothing loaded" in second.output
    third = runner.invoke(main, ["load-demo"])
    assert third.exit_code != 0 and "not empty" in third.output


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("dev", "SECRET_KEY is the development key 'dev': anyone could sign a session cookie."),
        ("change-me-2026", "SECRET_KEY has 14 characters, fewer than 32: anyone could sign a session cookie."),
    ],
)
def test_serve_refuses_the_development_key_and_short_keys(tmp_path, monkeypatch, key, message):
    monkeypatch.setenv("ACCESSPLAN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    monkeypatch.setenv(KEY_ENV_VAR, Fernet.generate_key().decode())
    monkeypatch.setenv("ACCESSPLAN_SECRET_KEY", key)
    result = CliRunner().invoke(main, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {message} Remove it from instance/config.py")
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "cli.sqlite").exists()  # refused before the store was opened


def test_the_generated_secret_key_is_random_private_and_kept(tmp_path):
    path = tmp_path / "instance" / "secret.key"
    key = instance_secret_key(path)
    assert len(key) == 64 and int(key, 16) >= 0  # 32 random bytes as hex
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert instance_secret_key(path) == key  # the next start signs with the same key
    assert instance_secret_key(tmp_path / "other" / "secret.key") != key
