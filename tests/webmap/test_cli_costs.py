"""The `accessplan --profiles FILE --unknown POLICY --flat` options reach the app that a command creates."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from flask import current_app
from flask.cli import with_appcontext

from analyses.costs import CostSettings
from webmap.cli import main


@click.command("show-cost-settings")
@with_appcontext
def _show() -> None:
    click.echo(repr(CostSettings.from_config(current_app.config)))


@pytest.fixture
def run(monkeypatch, tmp_path):
    monkeypatch.setenv("ACCESSPLAN_SECRET_KEY", "cli-tests-" + "k" * 32)
    monkeypatch.setenv("ACCESSPLAN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    main.add_command(_show)
    yield lambda *args: CliRunner().invoke(main, [str(a) for a in args])
    main.commands.pop("show-cost-settings")


def test_cost_options_reach_the_app(run, tmp_path):
    path = tmp_path / "slow.toml"
    path.write_text("[wheelchair]\nspeed_kph = { footway = 2.0 }\n", encoding="utf-8")
    plain = run("show-cost-settings")
    assert plain.exit_code == 0, plain.output
    assert "CostSettings(profiles_path=None, unknown=None, slopes=True)" in plain.output
    given = run("--profiles", path, "--unknown", "strict", "--flat", "show-cost-settings")
    assert given.exit_code == 0, given.output
    assert f"CostSettings(profiles_path={str(path.resolve())!r}, unknown='strict', slopes=False)" in given.output


def test_a_bad_profiles_file_stops_the_command_with_a_chinese_first_message(run, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[wheelchair.slope]\nmax_uphill = -0.05\n", encoding="utf-8")
    result = run("--profiles", path, "show-cost-settings")
    assert result.exit_code == 1
    assert "Error: " in result.output and "Traceback" not in result.output
    assert "`slope.max_uphill` 须为正的坡度（如 0.0833 即 1:12），实际为 -0.05" in result.output
    assert "`slope.max_uphill` must be a positive gradient (0.0833 is 1:12); got -0.05." in result.output
    missing = run("--profiles", tmp_path / "nope.toml", "show-cost-settings")
    assert missing.exit_code == 1 and "不存在" in missing.output


def test_settings_record_the_profile_file_policy_and_dem(bishan, tmp_path):
    settings = CostSettings(None, "strict", slopes=True)
    version = settings.version(bishan)
    assert version["profiles"] == "geo/profiles.toml"
    assert version["unknown_policy"]["wheelchair"] == dict.fromkeys(
        ("wheelchair", "incline", "surface", "smoothness", "kerb", "width"), "strict"
    )
    assert version["slopes"] is True and version["dem"].endswith("dem.tif") and len(version["dem_sha256"]) == 64
    flat = CostSettings(slopes=False).version(bishan)
    assert flat["dem"] is None and flat["unknown_policy"]["wheelchair"]["kerb"] == "lenient"
    assert CostSettings.from_config({"SLOPES": "0"}).slopes is False
    with pytest.raises(ValueError, match=r"strict（不可通行）或 lenient"):
        CostSettings(unknown="sometimes").profiles()
