"""A planner job's last stage (writing the downloads and the display layers) moves the bar file by file."""

from __future__ import annotations

import dataclasses
import shutil

from tests.webmap import staff_fixtures
from tests.webmap.test_planner import _make_app
from webmap import jobs
from webmap.views.planner.kind import DOWNLOADS, run_kind_job

demo_key, demo_db = staff_fixtures.demo_key, staff_fixtures.demo_db


class _Result:
    """A run's result that records which file is written at which reported percent."""

    def __init__(self, seen: list) -> None:
        self.seen = seen

    def to_file(self, path) -> None:
        self.seen.append(("file", path.suffix))

    def to_dict(self, *, points: bool = True) -> dict:
        return {"parameters": {"data_versions": {}}}


def test_writing_reports_a_step_per_download_and_one_for_the_layers(tmp_path, demo_db, demo_key, app_cache_dir):
    shutil.copyfile(demo_db, tmp_path / "accessplan.sqlite")
    app = _make_app(tmp_path / "accessplan.sqlite", demo_key, app_cache_dir, tmp_path / "jobs")
    seen: list = []

    def run(parameters, *, progress, **inputs):
        progress.expect(2)
        progress.stage("measuring coverage")
        return _Result(seen)

    from webmap.views.planner import KINDS

    kind = dataclasses.replace(next(k for k in KINDS if k.name == "coverage"), run=run, parameters=lambda form: None,
                               layers=None)  # fmt: skip
    progress = jobs.JobProgress("job-1", 1, report=lambda **kw: seen.append(("percent", round(kw["percent"], 1))))
    job = type("Job", (), {"parameters": {}, "created_by": "planner1"})()
    with app.app_context():
        run_kind_job(kind, job, progress, tmp_path)
    # stage 1 (0 %), stage 2 writing (50 %), then 50 + 50 × i / 5 before each of the 4 files and the layers
    steps = len(DOWNLOADS) + 1
    expected = [("percent", 0.0), ("percent", 50.0)]
    for i, fmt in enumerate(DOWNLOADS):
        expected += [("percent", round(50 + 50 * i / steps, 1)), ("file", f".{fmt}")]
    expected.append(("percent", round(50 + 50 * len(DOWNLOADS) / steps, 1)))
    assert seen == expected
    app.extensions["accessplan_store"].close()
