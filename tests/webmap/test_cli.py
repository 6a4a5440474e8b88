from __future__ import annotations

import stat

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
    for command in ("serve", "load-demo", "district", "run", "routes"):
        assert command in result.output


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
