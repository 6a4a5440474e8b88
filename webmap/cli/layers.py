"""Commands that move layers in and out of the store: import, export, history."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask.cli import with_appcontext

from layers import schema
from webmap.cli.lang import _, cli_language
from webmap.cli.options import LateChoice, all_roles
from webmap.store import get_district, get_store

# The importer, the file writers and the privacy rules (pandas, geopandas) are imported inside the
# commands: `accessplan --help` stays quick.

_LAYER = click.Choice(schema.ALL_LAYERS)
_DATUM = click.Choice(schema.DATUMS)


@click.command("import")
@click.argument("layer", type=_LAYER)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--datum", type=_DATUM, help="Datum of the file's coordinates (when it has no 坐标系 column).")
@click.option("--dry-run", is_flag=True, help="Validate and report, with each updated row's changes; write nothing.")
@click.option("--blank-clears", is_flag=True, help="Let blank cells clear stored values (by default they keep them).")
@click.option(
    "--legal-basis",
    type=click.Choice(schema.LEGAL_BASES),
    help="PIPL basis (处理依据) of every household row, for a ledger without that column.",
)
@click.option("--as", "user", default="cli", show_default=True, help="Who imports (recorded in the history).")
@with_appcontext
def import_command(
    layer: str, path: str, datum: str | None, dry_run: bool, blank_clears: bool, legal_basis: str | None, user: str
) -> None:
    """Import a CSV, XLSX, GeoJSON, GeoPackage or Shapefile into LAYER: all rows or none."""
    from layers.importer import import_layer

    try:
        outcome = import_layer(
            get_store(), layer, path, district=get_district(), user=user, datum=datum, dry_run=dry_run,
            blank_clears=blank_clears, legal_basis=legal_basis,
        )  # fmt: skip
    except (ValueError, OSError) as error:  # unreadable, damaged or over-limit file: the message says which
        raise click.ClickException(str(error)) from None
    validation = outcome.validation
    for note in outcome.notes:
        click.echo(note, err=not outcome.ok)
    if not outcome.ok:
        click.echo(problem_report(validation), err=True)
        sys.exit(1)
    if dry_run:
        for change in outcome.changes:
            click.echo(f"  {change.describe()}")
        click.echo(
            _(
                "试运行：%(n)s 行有效（新增 %(new)s 行，已有 %(existing)s 行）；未写入任何数据。",
                n=validation.n_rows,
                new=len(validation.new_ids),
                existing=len(validation.updated_ids),
            )
        )
        return
    counts = outcome.counts
    click.echo(
        _(
            "已导入 %(path)s：新增 %(inserted)s 行，更新 %(updated)s 行，未变 %(unchanged)s 行。",
            path=path,
            inserted=counts.inserted,
            updated=counts.updated,
            unchanged=counts.unchanged,
        )
    )


@click.command("export")
@click.argument("layer", type=_LAYER)
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--role", type=LateChoice(all_roles), default="admin", show_default=True, help="Role of the exporter.")
@click.option("--as", "user", default="cli", show_default=True, help="Who exports (for the access log).")
@click.option("--town", "towns", multiple=True, help="Town code(s) to export (required for caseworkers).")
@click.option("--status", "statuses", multiple=True, help="Only rows with this status (repeatable).")
@with_appcontext
def export_command(
    layer: str, path: str, role: str, user: str, towns: tuple[str, ...], statuses: tuple[str, ...]
) -> None:
    """Export LAYER to .gpkg, .geojson, .csv or .xlsx (households masked, and only for allowed roles)."""
    from layers.io import write_layer
    from layers.privacy import HOUSEHOLD_EXPORT_ROLES, read_households

    store = get_store()
    if layer == schema.HOUSEHOLD:
        if role not in HOUSEHOLD_EXPORT_ROLES:
            msg = f"Role {role!r} may not export households; allowed: {sorted(HOUSEHOLD_EXPORT_ROLES)!r}."
            raise click.ClickException(msg)
        rows = read_households(store, role=role, user=user, towns=towns or None)
        if statuses:
            rows = rows[rows[schema.STATUS].isin(statuses)]
    else:
        rows = store.features(layer, statuses=statuses or None, towns=towns or None)
    written = write_layer(rows, path, layer_name=layer)
    click.echo(_("已把 %(layer)s 的 %(n)s 行导出到 %(path)s。", n=len(rows), layer=layer, path=written))


@click.command("history")
@click.argument("layer", type=_LAYER)
@click.argument("feature_id")
@with_appcontext
def history_command(layer: str, feature_id: str) -> None:
    """Print the change history of one row as JSON (personal fields stay encrypted tokens)."""
    rows = get_store().history(layer, feature_id)
    if not rows:
        msg = _("图层 %(layer)s 中没有 %(id)s 的历史记录：请检查图层和编号。", layer=layer, id=repr(feature_id))
        raise click.ClickException(msg)
    click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))


def problem_report(validation: Any) -> str:
    """Return a refused file's problems in the command line's language: a count, then a line per problem.

    English is the validator's own report (it names CLI flags); Chinese (``LANG=zh_CN.UTF-8``) gives each
    problem's row, column as the file heads it, value, rule and fix from the web's texts (``webmap.problems``).
    Both count every problem and list them grouped (``grouped_problems``): past the first few of a column
    and rule, one line names how many more rows and which.
    """
    if cli_language() != "zh":
        return validation.report()
    from layers.validate import ProblemSummary
    from webmap.problems import fix_text, rule_label, summary_text

    lines = [_("图层 %(layer)s 有 %(n)s 个问题：%(rows)s 行（共 %(total)s 行）有问题，"
               "%(whole)s 个关于整个文件。未导入任何数据。", layer=validation.layer, n=len(validation.problems),
               rows=validation.n_problem_rows, total=validation.n_rows,
               whole=validation.n_file_problems)]  # fmt: skip
    for p in validation.grouped_problems():
        column = (validation.headers or {}).get(p.column) or p.column if p.column else None
        if isinstance(p, ProblemSummary):
            lines.append(f"  ……{summary_text(p, column, _)}")
            continue
        parts = [_("整个文件") if p.row is None else _("第 %(row)s 行", row=p.row)]
        if p.id is not None:
            parts.append(_("编号 %(id)s", id=p.id))
        if column:
            parts.append(_("“%(column)s”列", column=column))
        if p.value is not None:
            parts.append(_("值 %(value)s", value=repr(p.value)))
        lines.append(f"  {'，'.join(parts)}：{rule_label(p.rule, _)}。{fix_text(p, column, _)}")
    return "\n".join(lines)
