from __future__ import annotations

from click.testing import CliRunner
from cryptography.fernet import Fernet

from layers.crypto import KEY_ENV_VAR
from webmap.cli import main


def test_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("serve", "load-demo", "district", "run", "routes"):
        assert command in result.output


def test_load_demo_if_empty_loads_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCESSPLAN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    monkeypatch.setenv(KEY_ENV_VAR, Fernet.generate_key().decode())
    runner = CliRunner()
    first = runner.invoke(main, ["load-demo", "--if-empty"])
    assert first.exit_code == 0, first.output
    assert "Loaded the embedded demo data" in first.output
    second = runner.invoke(main, ["load-demo", "--if-empty"])
    assert second.exit_code == 0 and "nothing loaded" in second.output
    third = runner.invoke(main, ["load-demo"])
    assert third.exit_code != 0 and "not empty" in third.output
