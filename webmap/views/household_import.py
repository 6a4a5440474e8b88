"""Serve the household ledger import on the web: upload, dry run with the field-level diff, then confirm.

The same code path as ``accessplan import household FILE`` (`layers.importer.import_layer`) with its
options as form fields: the datum (坐标系), the file-wide legal basis (处理依据, for a ledger without
that column), and whether blank cells clear stored values (off by default: they keep them). The dry
run shows every problem (row, column, value, how to fix it, in the page's language) or what the
import will do: new and updated rows, the notes (encoding, 合计 rows skipped, villages inferred) and
every changed field of every updated row, before → after, personal values masked for a caseworker
and hidden for an admin (who sees households only as planning points, ``layers.privacy``).

Confirming imports exactly the file that was checked, with the same options: it waits server-side
(`webmap.pending_imports`, ``<instance>/household_imports``) under a random token, for at most
``HOUSEHOLD_IMPORT_MAX_AGE_S`` seconds, and can be confirmed once, by its uploader. A caseworker may
import only rows of their own towns (``towns`` of `import_layer`): a file with any other row is
refused. Bodies over ``MAX_CONTENT_LENGTH`` get the app's 413 page. Every check and import is logged
(who, how many rows), never a personal value; a dry run that shows stored rows' values (masked) is a
bulk read in the access log.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user

from layers import schema, users
from layers.errors import FileLimitError
from layers.importer import ImportOutcome, import_layer
from layers.privacy import HOUSEHOLD_IMPORT_ROLES
from layers.validate import MISSING_COLUMN, Problem
from webmap.auth import role_required
from webmap.i18n import N_
from webmap.pending_imports import (
    PendingImports,
    app_pending_imports,
    hold_for_confirmation,
    take_pending,
    upload_suffix,
)
from webmap.problems import fix_text, problem_rows
from webmap.store import get_district, get_store

if TYPE_CHECKING:
    from werkzeug.wrappers import Response as BaseResponse

logger = logging.getLogger(__name__)

bp = Blueprint("household_import", __name__, url_prefix="/households/import")

#: Settings with their defaults (the instance config.py may change them).
DEFAULTS = {
    "HOUSEHOLD_IMPORT_DIR": None,  # None: <instance>/household_imports
    "HOUSEHOLD_IMPORT_MAX_AGE_S": 3600,
}
DATUM_LABELS = {
    "wgs84": N_("WGS-84（GPS、天地图）"),
    "gcj02": N_("GCJ-02（高德、腾讯）"),
    "bd09": N_("BD-09（百度）"),
}
LEGAL_BASIS_LABELS = {"statutory_duty": N_("法定职责"), "consent": N_("单独同意")}
#: Columns whose values an admin sees in the diff (planning roles see no personal or disability field).
ADMIN_SHOWN_COLUMNS = frozenset({schema.ID, schema.TOWN_CODE, schema.VILLAGE_CODE, schema.STATUS})
#: The ``label_zh`` of the household columns (``layers.schema``), marked for ``pybabel extract``.
_COLUMN_LABELS = (
    N_("编号"), N_("镇街代码"), N_("村（社区）代码"), N_("姓名"), N_("详细地址"), N_("经度"), N_("纬度"),
    N_("坐标系"), N_("状态"), N_("版本"), N_("身份证号"), N_("残疾人证号"), N_("残疾类别"), N_("残疾等级"),
    N_("联系电话"), N_("改造需求"), N_("处理依据"), N_("村（社区）为推断"), N_("合成数据"),
)  # fmt: skip
_SESSION_KEY = "household_import"
_READ_ERROR_KEY = "household_import_error"


@bp.record_once
def _set_defaults(state: Any) -> None:
    for key, value in DEFAULTS.items():
        state.app.config.setdefault(key, value)


@bp.route("/", methods=["GET", "POST"])
@role_required(*sorted(HOUSEHOLD_IMPORT_ROLES))
def index() -> str | BaseResponse | tuple[str, int]:
    """Show the upload form; check an upload (dry run) or import a checked file on confirmation."""
    if request.method == "GET":
        return _page()
    if request.form.get("action") == "confirm":
        return _confirm()
    return _check()


def _check() -> str | tuple[str, int]:
    datum = request.form.get("datum", "")
    legal_basis = request.form.get("legal_basis", "")
    blank_clears = request.form.get("blank_clears") == "on"
    form = {"datum": datum, "legal_basis": legal_basis, "blank_clears": blank_clears}
    if datum and datum not in schema.DATUMS:
        allowed = ", ".join(schema.DATUMS)
        return _page(form=form, error=gettext("坐标系只能是 %(allowed)s；收到 %(value)s。", allowed=allowed,
                                              value=repr(datum))), 400  # fmt: skip
    if legal_basis and legal_basis not in schema.LEGAL_BASES:
        allowed = ", ".join(schema.LEGAL_BASES)
        return _page(form=form, error=gettext("处理依据只能是 %(allowed)s；收到 %(value)s。", allowed=allowed,
                                              value=repr(legal_basis))), 400  # fmt: skip
    upload = request.files.get("file")
    suffix, error = upload_suffix(upload)
    if error is not None:
        return _page(form=form, error=error), 400
    file_name = upload.filename[:200]
    # a clean dry run has logged reading the stored rows (masked in the diff) as one bulk read
    outcome, token = hold_for_confirmation(
        _pending(), _SESSION_KEY, upload.stream, suffix, user=current_user.name,
        options={**form, "file_name": file_name}, dry_run=lambda path: _run(path, form, dry_run=True),
    )  # fmt: skip
    page = _page(outcome=outcome, token=token, form=form, file_name=file_name)
    return (page, 400) if outcome is None else page


def _confirm() -> str | BaseResponse | tuple[str, int]:
    token = request.form.get("token", "")
    pending = _pending()
    taken = take_pending(pending, _SESSION_KEY, token, user=current_user.name)
    if taken is None:
        message = gettext("没有待确认的导入（可能已导入、已过期或已被新的上传取代）：请重新上传文件。")
        return _page(error=message), 400
    try:
        options = taken.options
        form = {key: options.get(key) for key in ("datum", "legal_basis", "blank_clears")}
        outcome = _run(taken.path, form, dry_run=False)
    finally:
        pending.discard(token)
    if outcome is None or not outcome.ok:  # the store changed since the dry run
        return _page(outcome=outcome, form=form, file_name=options.get("file_name")), 400
    counts = outcome.counts
    logger.info(
        "%s (%s) imported a household ledger: %d rows (%d new, %d updated, %d unchanged)",
        current_user.name, current_user.role, outcome.validation.n_rows, counts.inserted, counts.updated,
        counts.unchanged,
    )  # fmt: skip
    flash(
        gettext(
            "已导入：新增 %(inserted)d 户，更新 %(updated)d 户，未变 %(unchanged)d 户。",
            inserted=counts.inserted,
            updated=counts.updated,
            unchanged=counts.unchanged,
        )
    )
    return redirect(url_for("household_import.index"))


def _run(path: Path, form: dict[str, Any], *, dry_run: bool) -> ImportOutcome | None:
    """Run the importer on ``path``; None (and the message kept for the page) for an unreadable file."""
    towns = current_user.towns if current_user.role in users.TOWN_SCOPED_ROLES else None
    try:
        outcome = import_layer(
            get_store(),
            schema.HOUSEHOLD,
            path,
            district=get_district(),
            user=current_user.name,
            datum=form.get("datum") or None,
            dry_run=dry_run,
            blank_clears=bool(form.get("blank_clears")),
            legal_basis=form.get("legal_basis") or None,
            towns=towns,
            channel="web",
            ip=request.remote_addr,
        )
    except FileLimitError as error:  # over a ReadLimits limit: refused before it was loaded
        logger.info("Household ledger over a limit from %s: %s", current_user.name, error)
        session[_READ_ERROR_KEY] = gettext("文件超出导入上限，未导入任何数据：%(error)s", error=str(error))
        return None
    except (ValueError, OSError) as error:  # empty, damaged or unreadable file: no table to validate
        logger.info("Unreadable household ledger from %s: %s", current_user.name, error)
        session[_READ_ERROR_KEY] = gettext("无法读取文件：%(error)s", error=str(error))
        return None
    validation = outcome.validation
    logger.info(
        "%s (%s) %s a household ledger: %d rows, %d problems",
        current_user.name, current_user.role, "checked" if dry_run else "confirmed", validation.n_rows,
        len(validation.problems),
    )  # fmt: skip
    return outcome


def _page(
    *,
    outcome: ImportOutcome | None = None,
    token: str | None = None,
    form: dict[str, Any] | None = None,
    file_name: str | None = None,
    error: str | None = None,
) -> str:
    form = form or {}
    read_error = session.pop(_READ_ERROR_KEY, None)
    result = outcome.validation if outcome is not None else None
    labels = _labels()
    problems = problem_rows(result, labels, fix=_fix)
    hidden = gettext("（已隐藏）")
    admin_view = current_user.role not in users.TOWN_SCOPED_ROLES
    changes = []
    for change in outcome.changes if outcome is not None else ():
        for f in change.fields:
            shown = not admin_view or f.column in ADMIN_SHOWN_COLUMNS
            before, after = (f.before, f.after) if shown else (hidden, hidden)
            changes.append({"row": change.row, "id": change.id, "column": labels.get(f.column, f.column),
                            "before": before, "after": after})  # fmt: skip
    return render_template(
        "household_import/index.html",
        result=result,
        problems=problems,
        changes=changes,
        notes=outcome.notes if outcome is not None else (),
        token=token,
        form=form,
        file_name=file_name,
        error=error or read_error,
        datum_labels={k: gettext(v) for k, v in DATUM_LABELS.items()},
        legal_basis_labels={k: gettext(v) for k, v in LEGAL_BASIS_LABELS.items()},
        towns=_town_names(current_user.towns) if current_user.role in users.TOWN_SCOPED_ROLES else None,
        max_mb=(current_app.config.get("MAX_CONTENT_LENGTH") or 0) / 1024 / 1024,
    )


def _fix(problem: Problem, column: str) -> str:
    """Return how to fix ``problem``; a missing 处理依据 column names the form's select as well."""
    if problem.rule == MISSING_COLUMN and problem.column == schema.LEGAL_BASIS:
        return gettext(
            "文件没有“处理依据”列：请在下方的“处理依据”中为整个文件选择法定职责或单独同意，或在表格中加上这一列。"
        )
    return fix_text(problem, column)


def _labels() -> dict[str, str]:
    spec = schema.layer_spec(schema.HOUSEHOLD)
    return {c.name: gettext(c.label_zh) if c.label_zh else c.name for c in spec.columns}


def _town_names(codes: tuple[str, ...]) -> list[str]:
    towns = get_district().towns
    names = dict(zip(towns[schema.TOWN_CODE].astype(str), towns[schema.NAME], strict=True))
    return [names.get(code, code) for code in codes]


def _pending() -> PendingImports:
    return app_pending_imports("HOUSEHOLD_IMPORT_DIR", "HOUSEHOLD_IMPORT_MAX_AGE_S", default_folder="household_imports")
