"""What one planner analysis is (``AnalysisKind``) and how any of them runs as a job.

A kind is a frozen description: its name and label, its form (defaults, reading, template and choices),
the ``analyses.runs`` run it starts and how its parameters are read from the form, how its result page
and compare page read the stored result. ``webmap.views.planner`` lists the kinds; everything else
(routes, job functions, the job page, compare) works from the list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import abort, url_for
from flask_babel import gettext

from analyses.runs import stages
from layers import schema
from layers.privacy import Reader
from webmap import jobs
from webmap.i18n import N_
from webmap.runs import app_network
from webmap.store import get_district, get_store

if TYPE_CHECKING:
    import pandas as pd

    from layers.district import District
    from layers.jobs import Job
    from webmap.maps.result_layers import Layer

#: The files every job writes (``<kind>.<format>``) and offers for download.
DOWNLOADS = {"csv": "CSV", "xlsx": "Excel (XLSX)", "gpkg": "GeoPackage", "geojson": "GeoJSON"}

#: The runs' stages (``analyses.runs.stages``) and the siting models' steps in the planner's words: a job
#: stores these, and its page shows them translated (``webmap.views.planner.pages.stage_label``).
RUN_STAGES = {
    stages.STAGE_NETWORK: N_("准备道路网络（首次运行后缓存）"),
    stages.STAGE_INPUTS: N_("读取设施和需求点"),
    stages.STAGE_COVERAGE: N_("计算覆盖"),
    stages.STAGE_SCENARIO: N_("加上规划设施后"),
    stages.STAGE_FLAT: N_("按平地（不计坡度）再算一次覆盖"),
    stages.STAGE_GAPS: N_("查找服务缺口"),
    stages.STAGE_GAPS_ROADS: N_("查找服务缺口和超出阈值的路段"),
    stages.STAGE_AREAS: N_("沿道路绘制每处设施的服务范围"),
    stages.STAGE_AREA_POINTS: N_("统计服务范围内的需求点"),
    stages.STAGE_CANDIDATES: N_("生成候选站点"),
    stages.STAGE_SOLVING: N_("计算网络成本并求解"),
    stages.STAGE_WRITING: N_("写出结果文件（CSV、XLSX、GeoPackage、GeoJSON）"),
    "matrix built": N_("网络成本表已算好"),
    "model built": N_("模型已建立"),
    "solving": N_("正在求解"),
    "done": N_("求解完成"),
}

#: Messages a job stores as a key and values (``webmap.jobs.keyed_text``): the siting models' progress on
#: their best solution and bound, and the solver's failures; shown by ``pages.shown_message``.
KEYED_MESSAGES = {
    "incumbent": N_("%(model)s：当前最好的解 %(objective)s，界 %(bound)s，差距 %(gap)s"),
    "incumbent_no_bound": N_("%(model)s：当前最好的解 %(objective)s（尚无已证明的界）"),
    "infeasible": N_("选址模型无解：没有一组站点能同时满足站点总数 p、每个镇街的站点数和保留的现有站点。"
                     "请调整这些参数。求解器的说明：%(detail)s"),
    "no_solution": N_("求解器在 %(seconds)s 秒的时间上限内没有找到可行解；请提高“求解时间上限”或改用快速启发式。"),
}

FormReader = Callable[[Any], tuple[dict[str, Any], list[str]]]


@dataclass(frozen=True)
class CoveredPoints:
    """A done job's demand points as the compare page reads them.

    Attributes
    ----------
    frame
        One row per demand point: ``demand_id``, ``town_code`` (when known) and the ``column``.
    column
        The boolean column that says whether the point is covered.
    measure
        What "covered" means in this result, for people (e.g. "800m 内").
    """

    frame: pd.DataFrame
    column: str
    measure: str


@dataclass(frozen=True)
class AnalysisKind:
    """One planner analysis: its form, its run, its result page and how the compare page reads it.

    Attributes
    ----------
    name
        The job kind, the blueprint endpoint (``planner.<name>``) and the stem of the result files.
    label
        Its name for people (an ``N_``-marked zh-CN msgid).
    path
        URL of its form under ``/planner``.
    defaults
        The form's values when first shown.
    read_form
        Submitted form → (the job's parameters, problems in the user's language naming the field).
    form_template, form_choices
        The form's template and the choice lists it shows (``name → {value: label}``).
    parameters
        The job's stored parameters → the run's ``analyses.runs`` Parameters (``from_form``).
    run
        The ``analyses.runs`` function (called with the parameters, the store, district, network, reader
        and progress); the job writes its ``to_file`` in every ``DOWNLOADS`` format and stores its
        ``to_dict``.
    result_context
        A done job → the result page's template context (tables, map).
    covered_points, headline
        For the compare page: a done job's demand points with their covered flag, and its own summary
        numbers.
    shown_form
        The form's values → the values the template shows (e.g. a list of thresholds as one text).
    compare_counts
        For a kind whose result lists only the points not covered: the compare page's overall and per-town
        counts of two done jobs (from their own tables); a point missing from such a result counts as
        covered. None: the counts come from ``covered_points``.
    compare_as
        The kind whose results this one's compare with, when not its own (a saved what-if is a coverage
        result). None: only its own kind.
    prefill
        The form's values and the GET query → the values shown (the siting form started from a saved
        what-if scenario, ``?scenario=<id>``); None: the values as they are.
    compare_with
        Further kinds its results compare with (a saved what-if also with siting results).
    sites
        A done job's sites for the compare page (``id``, ``lon``, ``lat``, ``name``, ``place`` in the page's
        language); None: the kind has no sites to compare.
    summary_fields
        Its main parameters, in order (``webmap.views.planner.describe``: the job's generated name and
        one-line summary), each with its choice labels (``value → msgid``) or None when shown as stored.
    layers
        Its result map's display layers (``webmap.maps.result_layers``) from the GeoPackage, the stored
        result and the district's projected CRS; the job writes them (``write_display_layers``) and the
        page fetches them on demand. None: no display layers.
    """

    name: str
    label: str
    path: str
    defaults: Mapping[str, Any]
    read_form: FormReader
    form_template: str
    form_choices: Mapping[str, Mapping[str, str]]
    parameters: Callable[[dict[str, Any]], Any]
    run: Callable[..., Any]
    result_context: Callable[[Job], dict[str, Any]]
    covered_points: Callable[[Job], CoveredPoints]
    headline: Callable[[Job], dict[str, Any]]
    shown_form: Callable[[dict[str, Any]], dict[str, Any]] = field(default=dict)
    compare_counts: Callable[[Job, Job], tuple[dict[str, Any], list[dict[str, Any]]]] | None = None
    compare_as: str | None = None
    prefill: Callable[[dict[str, Any], Mapping[str, str]], dict[str, Any]] | None = None
    compare_with: tuple[str, ...] = ()
    sites: Callable[[Job], list[dict[str, Any]]] | None = None
    summary_fields: Mapping[str, Mapping[str, str] | None] = field(default_factory=dict)
    layers: Callable[[Path, dict[str, Any], str], list[Layer]] | None = None


class PlannerStages:
    """Report a run's stages to a job in the planner's words (``RUN_STAGES``; other texts as they are)."""

    def __init__(self, progress: jobs.JobProgress) -> None:
        self._progress = progress

    def expect(self, total: int) -> None:
        """Set the job's number of stages."""
        self._progress.expect(total)

    def stage(self, text: str) -> None:
        """Start the job's next stage."""
        self._progress.stage(stored_text(text))

    def __call__(self, text: str, fraction: float) -> None:
        """Report a share of the job's current stage."""
        self._progress(stored_text(text), fraction)


def stored_text(text: str) -> str:
    """Return what a job stores for a run's progress text: the planner's msgid, a model's numbers, or the text."""
    from analyses.siting import IncumbentReport

    if isinstance(text, IncumbentReport):
        if text.bound is None:
            return jobs.keyed_text("incumbent_no_bound", model=text.model, objective=text.objective)
        return jobs.keyed_text("incumbent", model=text.model, objective=text.objective, bound=text.bound,
                               gap=text.gap)  # fmt: skip
    return RUN_STAGES.get(text, text)


def run_kind_job(kind: AnalysisKind, job: Job, progress: jobs.JobProgress, out_dir: Path) -> jobs.JobOutcome:
    """Run a kind's ``analyses.runs`` function as a job, as its command does, from the job's form.

    The downloads are the result's ``to_file`` (``<kind>.csv``, ``.xlsx``, ``.gpkg`` and ``.geojson``), the
    stored result its ``to_dict(points=False)`` (the per-point rows are in the files), with the data
    versions read. The job's user reads the households, channel ``web``. A siting model without
    solution (``InfeasibleSitingError``) or without one in its time limit fails the job with a
    ``KEYED_MESSAGES`` key (shown in the page's language).
    """
    from analyses.siting import InfeasibleSitingError

    reported = PlannerStages(progress)
    try:
        result = kind.run(kind.parameters(job.parameters), store=get_store(), district=get_district(),
                          network=app_network(), reader=Reader(user=job.created_by, channel="web"),
                          progress=reported)  # fmt: skip
    except InfeasibleSitingError as exc:
        raise jobs.KeyedJobError("infeasible", detail=str(exc)) from exc
    except TimeoutError as exc:
        raise jobs.KeyedJobError("no_solution", seconds=job.parameters.get("time_limit")) from exc
    reported.stage(stages.STAGE_WRITING)
    steps = len(DOWNLOADS) + 1  # each download, then the display layers: the bar moves through all of them
    for i, fmt in enumerate(DOWNLOADS):
        reported(stages.STAGE_WRITING, i / steps)
        result.to_file(out_dir / f"{kind.name}.{fmt}")
    payload = result.to_dict(points=False)
    reported(stages.STAGE_WRITING, len(DOWNLOADS) / steps)
    write_display_layers(kind, out_dir, payload)
    return jobs.JobOutcome(result=payload, data_versions=payload["parameters"]["data_versions"])


def write_display_layers(kind: AnalysisKind, folder: Path, result: dict[str, Any], stem: str | None = None) -> None:
    """Write the display layers of ``kind``'s result in ``folder`` from its GeoPackage (``result_layers``).

    ``stem`` names the GeoPackage (``<stem>.gpkg``) when not the kind's name.
    """
    from webmap.maps.result_layers import write_layers

    path = folder / f"{stem or kind.name}.gpkg"
    if kind.layers is not None and path.is_file():
        write_layers(folder, kind.layers(path, result, get_district().crs))


# --- reading a done job's result -----------------------------------------------------------------


def result_file(record: Job, kind: str) -> Path:
    """Return the GeoPackage a done job of ``kind`` wrote (it may be gone)."""
    return Path(record.result_path or "") / f"{kind}.gpkg"


def has_layer(path: Path, layer: str) -> bool:
    """Return whether the GeoPackage ``path`` exists and holds ``layer``."""
    import pyogrio

    return path.is_file() and layer in [name for name, _kind in pyogrio.list_layers(path)]


def read_layer(path: Path, layer: str) -> Any:
    """Return ``layer`` of a done job's GeoPackage ``path``.

    Raises
    ------
    werkzeug.exceptions.NotFound
        If the file is gone (the message names it).
    """
    import geopandas as gpd

    if not path.is_file():
        abort(404, gettext("结果文件 %(name)s 不存在。", name=path.name))
    return gpd.read_file(path, layer=layer)


def first_threshold_points(record: Job, kind: str, layer: str = "coverage") -> CoveredPoints:
    """Return a done job's demand points (``layer`` of its GeoPackage), covered within its first threshold."""
    column = ((record.result or {}).get("coverage_columns") or [None])[0]
    frame = read_layer(result_file(record, kind), layer)
    return CoveredPoints(frame, column, gettext("%(threshold)s 内", threshold=str(column).replace("covered_", "")))


def town_and_village_names(district: District) -> tuple[dict[str, str], dict[str, str]]:
    """Return town code → name and village code → name of ``district``."""
    towns, villages = district.towns, district.villages
    return (
        dict(zip(towns[schema.TOWN_CODE].astype(str), towns[schema.NAME], strict=True)),
        dict(zip(villages[schema.VILLAGE_CODE].astype(str), villages[schema.NAME], strict=True)),
    )


def static_url(filename: str) -> str:
    """Return the URL of a file under ``webmap/static/`` (for the result maps' assets)."""
    return url_for("static", filename=filename)
