"""The planner's pages: analyses that run as jobs, their results, comparisons and the plan's targets.

Where things go
---------------
- ``kind``: ``AnalysisKind``, the frozen description of one analysis (form, run, result page, compare),
  and ``run_kind_job``, which runs any kind's ``analyses.runs`` function as a job.
- ``coverage``, ``gaps``, ``service_areas``, ``siting``: one module per analysis kind, each ending in its
  ``KIND``; their maps are in ``webmap.maps.results``, their templates in ``templates/planner/``.
- ``forms``: the choice lists and checks the forms share.
- ``pages``: the blueprint and the shared pages (list of jobs, a kind's form, the job page with its
  progress and result, downloads, targets).
- ``compare``: two done jobs of one kind side by side.
- ``whatif``: the interactive what-if on the map (its own routes; saved scenarios are done jobs of its
  ``KIND``, which is not in ``KINDS``: it has no job form).

A new analysis is a module here with its ``KIND`` (reading the form into the ``from_form`` of its
``analyses.runs`` Parameters), its entry in ``KINDS`` below, its form and result templates, and its map
in ``webmap.maps.results``. Its route (``planner.<name>``), its job function, its result page and the
compare page follow from the list.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from webmap import jobs, whatif_sessions
from webmap.views.planner import compare, coverage, gaps, pages, service_areas, siting, whatif  # noqa: F401 (routes)
from webmap.views.planner.kind import run_kind_job

if TYPE_CHECKING:
    from flask import Flask

    from webmap.views.planner.kind import AnalysisKind

#: Every analysis a planner can run, in the order of the planner's menu.
KINDS: tuple[AnalysisKind, ...] = (coverage.KIND, gaps.KIND, service_areas.KIND, siting.KIND)

for _kind in KINDS:
    pages.bp.add_url_rule(_kind.path, endpoint=_kind.name, view_func=pages.form_view(_kind), methods=("GET", "POST"))


def init_app(app: Flask) -> None:
    """Register the planner blueprint, its kinds and the job function of each kind."""
    app.extensions[pages.KINDS_EXTENSION] = {kind.name: kind for kind in (*KINDS, whatif.KIND)}
    whatif_sessions.init_app(app)
    jobs.init_app(app, {kind.name: partial(run_kind_job, kind) for kind in KINDS})
    app.register_blueprint(pages.bp)
    app.context_processor(pages.label_globals)
