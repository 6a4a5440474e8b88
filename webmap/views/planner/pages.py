"""The planner's shared pages: the list of analyses and jobs, a kind's form, a job's page and files, targets.

Only planners and admins reach these pages. A kind's form (``form_view``) queues a job and goes to its
page at once; the job page shows a progress bar until the result is ready, then the kind's result
(``AnalysisKind.result_context``). Results, with their parameters and data versions, stay in the store
and can be reopened.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import (
    Blueprint,
    abort,
    current_app,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user

from layers import jobs as job_store
from layers.errors import NotFoundError
from layers.privacy import ADMIN, PLANNER
from webmap import jobs
from webmap.auth import role_required
from webmap.i18n import N_
from webmap.store import get_district, get_store
from webmap.views.planner import describe
from webmap.views.planner.kind import DOWNLOADS, KEYED_MESSAGES

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from werkzeug.wrappers import Response as BaseResponse

    from layers.jobs import Job
    from webmap.views.planner.kind import AnalysisKind

bp = Blueprint("planner", __name__, url_prefix="/planner")

PLANNER_ROLES = (PLANNER, ADMIN)
#: The app extension that holds the kinds by name (set by ``webmap.views.planner.init_app``).
KINDS_EXTENSION = "accessplan_planner_kinds"
STATUS_LABELS = {"queued": N_("排队中"), "running": N_("运行中"), "done": N_("已完成"), "failed": N_("失败")}
#: Status words of the targets report, for people.
TARGET_STATUS_LABELS = {
    "met": N_("已达成"), "behind": N_("滞后"), "missed": N_("未达成"), "not_tracked": N_("未跟踪"),
    "not_measured": N_("无法由数据计算"), "no_data": N_("无数据"), "done": N_("已完成"), "not_started": N_("未开始"),
    "due": N_("进行中（期限内）"), "overdue": N_("已逾期"), "unscheduled": N_("未定期限"),
}  # fmt: skip
_MIMETYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "gpkg": "application/geopackage+sqlite3",
    "geojson": "application/geo+json",
}


def kinds() -> Mapping[str, AnalysisKind]:
    """Return the current app's analysis kinds by name."""
    return current_app.extensions[KINDS_EXTENSION]


def label_globals() -> dict[str, Any]:
    """Give templates the job kinds and statuses in the page's language, and ``job_name``/``job_summary``."""
    kind_labels = {name: kind.label for name, kind in kinds().items()}
    return {"kind_labels": translated(kind_labels), "job_status_labels": translated(STATUS_LABELS),
            "job_name": job_name, "job_summary": job_summary}  # fmt: skip


def job_name(record: Job) -> str:
    """Return a job's name: its own, or its kind and main parameters (``describe.job_name``)."""
    return describe.job_name(record, kinds().get(record.kind), describe.value_labels(kinds()))


def job_summary(record: Job) -> str:
    """Return a job's main parameters on one line (``describe.job_summary``)."""
    return describe.job_summary(record, kinds().get(record.kind), describe.value_labels(kinds()))


def translated(labels: Mapping[str, str]) -> dict[str, str]:
    """Return ``labels`` (``N_``-marked Chinese) in the request's language; unchanged outside a request."""
    if not has_request_context():
        return dict(labels)
    return {key: gettext(label) for key, label in labels.items()}


@bp.get("/")
@role_required(*PLANNER_ROLES)
def index() -> str:
    """List the analyses a planner can run and the recent jobs (each can be reopened)."""
    return render_template("planner/index.html", **index_context())


def index_context(chosen: tuple[str, str] | None = None, compare_errors: list[str] | None = None) -> dict[str, Any]:
    """Return the index page's jobs, done jobs and compare form (``chosen`` (a, b), else the newest comparable pair)."""
    listed = job_store.list_jobs(get_store(), limit=50)
    done = [j for j in listed if j.status == "done"]
    return {"jobs": listed, "done_jobs": done, "compare_errors": compare_errors or [],
            "chosen": chosen or default_pair(done)}  # fmt: skip


def compared_as(record: Job) -> str:
    """Return the kind ``record``'s results compare as (``AnalysisKind.compare_as``: a saved what-if as coverage)."""
    kind = kinds().get(record.kind)
    return (kind.compare_as if kind is not None else None) or record.kind


def comparable(a: Job, b: Job) -> bool:
    """Return whether two jobs' results compare: the same ``compared_as``, or one's ``compare_with`` names the other."""
    if compared_as(a) == compared_as(b):
        return True
    also = {name: kind.compare_with for name, kind in kinds().items()}
    return b.kind in also.get(a.kind, ()) or a.kind in also.get(b.kind, ())


def default_pair(done: list[Job]) -> tuple[str, str] | None:
    """Return the compare form's default (a, b): the newest done job (b) and the newest earlier one it compares with."""
    for i, newer in enumerate(done):
        for older in done[i + 1 :]:
            if comparable(older, newer):
                return older.id, newer.id
    return None


def form_view(kind: AnalysisKind) -> Callable[[], str | BaseResponse | tuple[str, int]]:
    """Return the view of ``kind``'s form (endpoint ``planner.<kind.name>``, planners and admins only)."""

    def view() -> str | BaseResponse | tuple[str, int]:
        return form_or_job(kind)

    view.__name__ = kind.name
    view.__doc__ = f"Show the {kind.name} form; on POST queue a {kind.name} job and go to its page."
    return role_required(*PLANNER_ROLES)(view)


def form_or_job(kind: AnalysisKind) -> str | BaseResponse | tuple[str, int]:
    """Answer a planner form's request: show the form, or queue a ``kind`` job and go to its page.

    GET shows the form with the kind's defaults, or with every field as submitted for the job
    ``?from=<id>`` of this kind (a failed job's "change parameters"); a POST with problems shows it again
    with them (400); a good POST queues the job and redirects to its page at once (303). The optional
    ``name`` field names the job (``describe.read_name``).
    """
    if request.method == "GET":
        form = submitted_form(kind, request.args.get("from", ""))
        return show_form(kind, kind.prefill(form, request.args) if kind.prefill else form, errors=[])
    form, errors = kind.read_form(request.form)
    name, more = describe.read_name(request.form)
    errors += more
    if name:
        form[describe.NAME_KEY] = name
    if errors:
        return show_form(kind, form, errors=errors), 400
    job_id = jobs.submit_job(kind.name, form, user=current_user.name)
    return redirect(url_for("planner.job", job_id=job_id), code=303)


def submitted_form(kind: AnalysisKind, job_id: str) -> dict[str, Any]:
    """Return the form of the job ``job_id`` when it is of ``kind`` (every field as submitted), else the defaults."""
    if not job_id:
        return dict(kind.defaults)
    record = get_job(job_id)
    if record.kind != kind.name:
        abort(400, gettext("任务 %(id)s 不是这种分析的任务。", id=record.id[:8]))
    return {**kind.defaults, **(record.parameters or {})}


def show_form(kind: AnalysisKind, form: dict[str, Any], *, errors: list[str]) -> str:
    """Render ``kind``'s form with ``form``'s values, its choice lists and ``errors``."""
    return render_template(kind.form_template, form=kind.shown_form(form), errors=errors, **kind.form_choices)


@bp.get("/jobs/<job_id>")
@role_required(*PLANNER_ROLES)
def job(job_id: str) -> str:
    """Show a job: its progress while queued or running, its error if failed, its result when done."""
    record = get_job(job_id)
    labels = describe.value_labels(kinds())
    context: dict[str, Any] = {"job": record, "district": get_district(), "stage_label": stage_label(record.stage),
                               "parameter_rows": describe.parameter_rows(record.parameters or {}, labels),
                               "version_rows": describe.parameter_rows(record.data_versions or {}, labels),
                               "change_url": change_url(record),
                               "error_label": shown_message(record.error)}  # fmt: skip
    if record.status == "done" and record.kind in kinds():
        context.update(kinds()[record.kind].result_context(record))
    return render_template("planner/job.html", **context)


def change_url(record: Job) -> str:
    """Return where a job's parameters are changed: its kind's form filled in as submitted, or the what-if form."""
    if record.kind not in kinds() or f"planner.{record.kind}" not in current_app.view_functions:
        return url_for("planner.index")
    return url_for(f"planner.{record.kind}", **{"from": record.id})


@bp.get("/jobs/<job_id>.json")
@role_required(*PLANNER_ROLES)
def job_status(job_id: str) -> BaseResponse:
    """Return a job's state for the progress bar: status, stage, percent, error and the result page."""
    record = get_job(job_id)
    return jsonify({**record.to_dict(), "stage_label": stage_label(record.stage),
                    "error_label": shown_message(record.error),
                    "url": url_for("planner.job", job_id=job_id)})  # fmt: skip


def stage_label(stage: str | None) -> str:
    """Return a job's stored stage for people (``shown_message``); "waiting to start" before it has one."""
    return shown_message(stage) if stage else gettext("等待开始")


def shown_message(text: str | None) -> str:
    """Return a job's stored stage or error in the page's language.

    A key with values (``webmap.jobs.keyed_text``) becomes its ``KEYED_MESSAGES`` text with the numbers
    formatted (objective and bound to 6 significant digits, the gap as a percentage, the model by its
    name); an ``N_``-marked text is translated; any other text is shown as stored.
    """
    keyed = jobs.read_keyed(text)
    if keyed is None:
        return gettext(text) if text else ""
    key, values = keyed
    if key not in KEYED_MESSAGES:
        return str(text)
    shown = dict(values)
    for name in ("objective", "bound"):
        if isinstance(values.get(name), int | float):
            shown[name] = f"{values[name]:,.6g}"
    if isinstance(values.get("gap"), int | float):
        shown["gap"] = f"{100 * values['gap']:.2f}%"
    if "model" in values:
        shown["model"] = describe.shown_value("model", values["model"], describe.value_labels(kinds()), short=True)
    if isinstance(values.get("seconds"), int | float):
        shown["seconds"] = f"{values['seconds']:g}"
    return gettext(KEYED_MESSAGES[key], **shown)


@bp.get("/jobs/<job_id>/download/<fmt>")
@role_required(*PLANNER_ROLES)
def download(job_id: str, fmt: str) -> BaseResponse:
    """Send one of a done job's result files (CSV, XLSX, GeoPackage or GeoJSON)."""
    record = get_job(job_id)
    if record.status != "done" or record.result_path is None or fmt not in DOWNLOADS:
        abort(404, gettext("任务 %(id)r 没有 %(fmt)r 格式的结果文件。", id=job_id, fmt=fmt))
    name = f"{record.kind}.{fmt}"
    if not (Path(record.result_path) / name).is_file():
        abort(404, gettext("任务 %(id)r 的结果文件 %(name)r 不存在。", id=job_id, name=name))
    return send_from_directory(record.result_path, name, as_attachment=True, mimetype=_MIMETYPES[fmt],
                               download_name=f"{record.kind}-{job_id[:8]}.{fmt}")  # fmt: skip


@bp.get("/targets")
@role_required(*PLANNER_ROLES)
def targets() -> str | tuple[str, int]:
    """Show the plan's indicators, key projects and task tables with status and deadlines on ``?date=``."""
    from analyses.targets import targets_report_from_store

    text = request.args.get("date") or date.today().isoformat()
    try:
        on = date.fromisoformat(text)
    except ValueError:
        abort(400, gettext("日期须写成 YYYY-MM-DD（如 2025-06-30）；收到 %(value)r。", value=text))
    district = get_district()
    report = targets_report_from_store(get_store(), district.plan_dir, district.towns, on=on,
                                       plan_year=district.plan_year).to_dict()
    return render_template("planner/targets.html", report=report, on=on,
                           status_labels=translated(TARGET_STATUS_LABELS))  # fmt: skip


def get_job(job_id: str) -> Job:
    """Return the stored job ``job_id``; a 404 page naming it if there is none."""
    try:
        return job_store.get_job(get_store(), job_id)
    except NotFoundError:
        abort(404, gettext("没有编号为 %(id)r 的分析任务。", id=job_id))
