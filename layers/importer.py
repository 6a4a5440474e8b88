"""Import a layer file into the store: read, validate every row, then write all rows or none.

Ledgers as towns keep them: a household file without an id column is matched by 身份证号 (blind index),
never by 序号; a stored household whose 身份证号 or town a row changes is refused unless the row is marked
as a correction (更正=是); a blank cell keeps the stored value unless ``blank_clears``; every updated row's
changes are listed field by field (personal values masked), in a dry run too. An import limited to some
``towns`` (a caseworker's) refuses every row of another town and every row that updates a household
stored in another town.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from layers import schema
from layers.idcard import mask_name, mask_number
from layers.io import DELIMITER_ATTR, ENCODING_ATTR, MERGED_ATTR, SHEET_ATTR, TOTALS_ATTR, gc_paused, read_table
from layers.privacy import log_bulk_read, mask_address
from layers.validate import (
    DUPLICATE_PERSON,
    PERSON_CHANGED,
    TOWN_CHANGED,
    TOWN_NOT_ALLOWED,
    Problem,
    ValidationResult,
    row_ranges,
    validate_layer,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from layers.district import District
    from layers.store import ImportCounts, Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldChange:
    """One field of a stored row that an import changes; personal values are masked.

    Attributes
    ----------
    column
        Canonical column name.
    before, after
        The stored and the imported value as text ('' for none).
    """

    column: str
    before: str
    after: str


@dataclass(frozen=True)
class RowChange:
    """The changed fields of one updated row.

    Attributes
    ----------
    row
        Row number as the file shows it.
    id
        The stored row's id.
    fields
        Each changed field, in the layer's column order.
    """

    row: int
    id: str
    fields: tuple[FieldChange, ...]

    def describe(self) -> str:
        """Return one line: ``第 5 行 (id 'H1')：地址 璧山区…**** → 璧山区…****；…``."""
        changes = "；".join(f"{_label(f.column)} {f.before or '（空）'} → {f.after or '（空）'}" for f in self.fields)
        return f"第 {self.row} 行 (row {self.row}, id {self.id!r})：{changes}"


@dataclass(frozen=True)
class ImportOutcome:
    """What an import found and (unless a dry run) wrote.

    Parameters
    ----------
    validation
        Every problem found, and the clean rows.
    counts
        Inserted, updated and unchanged rows; None for a dry run or a rejected file.
    changes
        For a dry run: the field-level diff of every row that updates a stored one and changes it
        (empty for a real import, which reads stored rows only where a blank cell keeps a value).
    notes
        What the import did besides the rows (zh-CN, English in brackets): the encoding of a CSV, totals
        rows skipped, villages inferred, blanks kept, matching by 身份证号.
    """

    validation: ValidationResult
    counts: ImportCounts | None
    changes: tuple[RowChange, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the file had no problem."""
        return self.validation.ok


def import_layer(
    store: Store,
    layer: str,
    source: str | Path | pd.DataFrame,
    *,
    district: District,
    user: str,
    datum: str | None = None,
    dry_run: bool = False,
    blank_clears: bool = False,
    legal_basis: str | None = None,
    towns: Collection[str] | None = None,
    channel: str = "cli",
    ip: str | None = None,
) -> ImportOutcome:
    """Validate a layer file (or a table already read) and store it atomically.

    Nothing is written when any row has a problem or when ``dry_run`` is set: the store stays
    byte-for-byte unchanged. Re-importing the same file changes nothing (rows update by id).

    Parameters
    ----------
    store
        The store to write to (and whose current statuses the workflow checks use).
    layer
        One of ``layers.schema.ALL_LAYERS``.
    source
        CSV, XLSX, GeoJSON, GeoPackage or Shapefile path, or a raw table.
    district
        The district the rows must lie in (towns, villages, boundary).
    user
        Who imports; recorded in the history.
    datum
        Datum of the file's coordinates when it has no 坐标系/datum column.
    dry_run
        Validate and report only (the field-level diff included).
    blank_clears
        Let a blank cell clear the stored value (``--blank-clears``); by default it keeps it.
    legal_basis
        PIPL basis of every household row of a file without a 处理依据 column (``statutory_duty`` or
        ``consent``).
    towns
        Town codes the importing user may write (a caseworker's towns); None: every town. A row of
        another town, or one that updates a row stored in another town, is a ``town_not_allowed``
        problem, and the file is refused.
    channel
        Where the import runs (``cli`` or ``web``), for the access log: an import that decrypts stored
        personal fields (the dry run's diff, blanks kept) writes one bulk-read row (`log_bulk_read`).
    ip
        The client's address on the web (None on the command line), for the access log.

    Returns
    -------
    ImportOutcome
        Check ``outcome.ok``; ``outcome.validation.report()`` lists every problem.
    """
    # every ID number is digested twice (matching people, then storing): once, within this import
    remembered = store.blind_index.remembered() if store.blind_index is not None else contextlib.nullcontext()
    with remembered:
        # no collection while reading and validating (the rows' values stay alive: nothing to free); the
        # store's writes, which may wait for other imports, run with the collector on
        with gc_paused():
            table = source if isinstance(source, pd.DataFrame) else read_table(source)
            household = layer == schema.HOUSEHOLD
            validation = validate_layer(
                layer,
                table,
                district=district,
                datum=datum,
                existing=store.statuses(layer),
                people=store if household else None,
                blank_clears=blank_clears,
                legal_basis=legal_basis,
            )
        if towns is not None:
            validation = _refuse_other_towns(store, validation, frozenset(towns))
        if validation.ok and household:
            validation = _refuse_people_of_other_households(store, validation)
        if validation.ok and household:
            validation = _refuse_changed_people(store, validation)
        changes: tuple[RowChange, ...] = ()
        if validation.ok and validation.updated_ids:
            # Stored rows are read (and decrypted) for the dry run's diff, else only where a blank keeps a value.
            if dry_run:
                wanted, personal = list(validation.updated_ids), None
            else:
                wanted, personal = ([], []) if blank_clears else _with_blanks(validation)
            stored = store.records(layer, wanted, decrypt=personal) if wanted else {}
            decrypted = len(stored) if personal is None else len(set(personal).intersection(stored))
            if decrypted and schema.layer_spec(layer).personal:
                name = "a table" if isinstance(source, pd.DataFrame) else Path(source).name
                purpose = f"{'dry run of ' if dry_run else ''}import of {name} into {layer}"
                log_bulk_read(store, decrypted, user=user, purpose=purpose, channel=channel, ip=ip)
            if not blank_clears and stored:
                validation = dataclasses.replace(validation, frame=_keep_stored(validation.frame, stored))
            changes = _changes(layer, validation.frame, stored) if dry_run else ()
        notes = _notes(table, validation, blank_clears=blank_clears)
        if not validation.ok or dry_run:
            logger.info(
                "%s `%s`: %d rows, %d problems; nothing written",
                "Dry run of" if dry_run else "Rejected import into",
                layer,
                validation.n_rows,
                len(validation.problems),
            )
            return ImportOutcome(validation, None, changes, notes)
        # The clean frame itself: `Store.upsert_features` reads it column by column (no records round trip).
        counts = store.upsert_features(layer, validation.frame, user=user)
        return ImportOutcome(validation, counts, changes, notes)


def _refuse_other_towns(store: Store, validation: ValidationResult, towns: frozenset[str]) -> ValidationResult:
    """Add a problem for every row of a town not in ``towns``, and every row updating a row stored in one.

    The problem names the row, its id and the town code (never a personal value); the rows are dropped
    from the clean frame, so nothing of the file is written.
    """
    frame = validation.frame
    if frame.empty or schema.TOWN_CODE not in frame.columns:
        return validation
    allowed = "、".join(sorted(towns)) or "（无）"
    ids = frame[schema.ID].astype(str)
    row_towns = frame[schema.TOWN_CODE].astype(object).where(frame[schema.TOWN_CODE].notna(), None)
    outside = ~row_towns.isin(towns).to_numpy()
    problems = [
        Problem(
            int(row), fid, schema.TOWN_CODE, town, TOWN_NOT_ALLOWED,
            f"镇街 {town} 不是您负责的镇街（{allowed}）：只能导入本人负责镇街的户，请从文件中删去这一行 "
            f"(town {town} is not one of your towns {sorted(towns)!r}: remove the row from the file)",
        )
        for row, fid, town in zip(frame.index[outside], ids[outside], row_towns[outside], strict=True)
    ]  # fmt: skip
    updated = sorted(set(validation.updated_ids) & set(ids[~outside]))
    if validation.layer == schema.HOUSEHOLD:
        stored = {fid: town for fid, (_digest, town) in store.household_keys(updated).items()} if updated else {}
    else:  # no personal field is decrypted
        records = store.records(validation.layer, updated, decrypt=[]) if updated else {}
        stored = {fid: record.get(schema.TOWN_CODE) for fid, record in records.items()}
    rows_of = dict(zip(ids[~outside], frame.index[~outside], strict=True))
    for fid in updated:
        stored_town = stored.get(fid)
        if stored_town is not None and stored_town not in towns:
            problems.append(
                Problem(
                    int(rows_of[fid]), fid, schema.TOWN_CODE, stored_town, TOWN_NOT_ALLOWED,
                    f"编号 {fid!r} 已存的户属于镇街 {stored_town}，不是您负责的镇街（{allowed}）：请核对编号，"
                    f"或请该镇街的工作人员导入 (the stored row {fid!r} is in town {stored_town}, not one of your "
                    "towns: check the id)",
                )
            )  # fmt: skip
    if not problems:
        return validation
    problems.sort(key=lambda p: p.row)
    bad = sorted({p.row for p in problems})
    return dataclasses.replace(validation, frame=frame.drop(index=bad), problems=(*validation.problems, *problems))


def _refuse_changed_people(store: Store, validation: ValidationResult) -> ValidationResult:
    """Add a problem for every row that gives a stored household another 身份证号 or town, unless marked 更正.

    The stored number is compared by its blind index (never decrypted); the problem names the row and
    the id, never a number.
    """
    frame = validation.frame
    updated = frame[frame[schema.ID].astype(str).isin(set(validation.updated_ids))]
    if updated.empty:
        return validation
    keys = store.household_keys(updated[schema.ID].astype(str).tolist())
    numbers = updated[schema.ID_NUMBER].astype(object).where(updated[schema.ID_NUMBER].notna(), None).tolist()
    digests = store.blind_index.digests(numbers) if store.blind_index is not None else [None] * len(numbers)
    corrections = set(validation.corrections)
    problems = []
    towns = updated[schema.TOWN_CODE].astype(object).where(updated[schema.TOWN_CODE].notna(), None).tolist()
    for row, fid, digest, town in zip(updated.index, updated[schema.ID].astype(str), digests, towns, strict=True):
        stored_digest, stored_town = keys.get(fid, (None, None))
        if int(row) in corrections:
            continue
        if digest is not None and stored_digest is not None and digest != stored_digest:
            fix = (
                f"编号 {fid!r} 已存为另一个人（身份证号不同）：这一行是另一户，请给它新的编号，"
                "或删去编号列按身份证号匹配；若确是更正身份证号，请在“更正”列填“是” "
                "(the stored household with this id has another 身份证号: "
                "give the row its own id, or mark it 更正=是 if it corrects the number)"
            )
            problems.append(Problem(int(row), fid, schema.ID_NUMBER, None, PERSON_CHANGED, fix))
        if town is not None and stored_town is not None and town != stored_town:
            fix = (
                f"编号 {fid!r} 已存为镇街 {stored_town}，这一行写的是 {town}：请核对编号；若确是搬迁或更正，请在"
                f"“更正”列填“是” (the stored household is in town {stored_town}, the row says {town}: check the id, "
                "or mark the row 更正=是)"
            )
            problems.append(Problem(int(row), fid, schema.TOWN_CODE, town, TOWN_CHANGED, fix))
    if not problems:
        return validation
    bad = sorted({p.row for p in problems})
    return dataclasses.replace(validation, frame=frame.drop(index=bad), problems=(*validation.problems, *problems))


def _with_blanks(validation: ValidationResult) -> tuple[list[str], list[str]]:
    """Return the ids of updated rows with a blank cell (to be kept) and of those with a personal one.

    Only the latter need their stored personal fields decrypted.
    """
    frame = validation.frame
    columns = [c for c in frame.columns if c not in _NOT_KEPT]
    personal = [c for c in schema.layer_spec(validation.layer).personal if c in columns]
    ids = frame[schema.ID].astype(str)
    update = ids.isin(set(validation.updated_ids)).to_numpy()
    blank = frame[columns].isna().any(axis=1).to_numpy() & update
    blank_personal = frame[personal].isna().any(axis=1).to_numpy() & update if personal else blank & False
    return ids[blank].tolist(), ids[blank_personal].tolist()


#: Columns an import never fills from the stored row (the id itself and the optimistic-lock version).
_NOT_KEPT = (schema.ID, schema.VERSION)


def _keep_stored(frame: pd.DataFrame, stored: dict[str, dict[str, object]]) -> pd.DataFrame:
    """Return ``frame`` with the blank cells of rows that update a stored row filled with the stored values."""
    ids = frame[schema.ID].astype(str)
    update = ids.isin(set(stored)).to_numpy()
    if not update.any():
        return frame
    out = frame.copy()
    for column in out.columns:
        if column in _NOT_KEPT:
            continue
        blank = out[column].isna().to_numpy() & update
        if not blank.any():
            continue
        key = schema.SOURCE_DATUM if column == schema.DATUM else column
        values = [stored[i].get(key) for i in ids[blank]]
        out.loc[blank, column] = pd.Series(pd.array(values, dtype=out[column].dtype), index=out.index[blank])
    return out


def _changes(layer: str, frame: pd.DataFrame, stored: dict[str, dict[str, object]]) -> tuple[RowChange, ...]:
    """Return the field-level diff of every row of ``frame`` that changes a stored row (personal values masked)."""
    spec = schema.layer_spec(layer)
    columns = [c for c in frame.columns if c not in _NOT_KEPT]
    rows = []
    ids = frame[schema.ID].astype(str).tolist()
    # each column as Python values once (a 100,000-row re-import compares 1.7 million cells)
    values = {c: frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in columns}
    keys = {c: schema.SOURCE_DATUM if c == schema.DATUM else c for c in columns}
    for position, (row, fid) in enumerate(zip(frame.index, ids, strict=True)):
        old = stored.get(fid)
        if old is None:
            continue
        fields = []
        for column in columns:
            before, after = old.get(keys[column]), values[column][position]
            if before == after:
                continue
            before, after = _plain(before), _plain(after)
            if before != after and not (column in (schema.LON, schema.LAT) and _close(before, after)):
                mask = _masker(column) if column in spec.personal else _shown
                fields.append(FieldChange(column, mask(before), mask(after)))
        if fields:
            rows.append(RowChange(int(row), fid, tuple(fields)))
    return tuple(rows)


def _plain(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _close(a: object, b: object) -> bool:
    return isinstance(a, int | float) and isinstance(b, int | float) and abs(float(a) - float(b)) < 1e-9


def _shown(value: object) -> str:
    return "" if value is None else str(value)


def _masker(column: str) -> Callable[[object], str]:
    """Return how a personal column's values are shown in a diff (as everywhere: DOMAIN.md §7)."""
    if column == schema.NAME:
        return lambda v: "" if v is None else mask_name(v)
    if column == schema.ADDRESS:
        return mask_address
    return lambda v: "" if v is None else mask_number(v)


def _label(column: str) -> str:
    for spec in schema.LAYER_SPECS.values():
        if column in spec.column_names:
            return spec.column(column).label_zh or column
    return column


def _notes(table: pd.DataFrame, validation: ValidationResult, *, blank_clears: bool) -> tuple[str, ...]:
    """Return the report's notes (zh-CN first, English in brackets)."""
    notes = []
    encoding = table.attrs.get(ENCODING_ATTR)
    if encoding:
        notes.append(f"文件编码：{encoding} (CSV read as {encoding})")
    if DELIMITER_ATTR in table.attrs:
        notes.append(f"分隔符：{table.attrs[DELIMITER_ATTR]}")
    if SHEET_ATTR in table.attrs:
        first, read = table.attrs[SHEET_ATTR]
        notes.append(
            f"第一个工作表“{first}”没有表头，读取的是工作表“{read}”，行号指该表 "
            f"(the first sheet {first!r} has no header: read the sheet {read!r}, whose rows the row numbers name)"
        )
    if table.attrs.get(MERGED_ATTR):
        rows = row_ranges(table.attrs[MERGED_ATTR])
        notes.append(
            f"合并单元格的值已填入其下合并的各行：第 {rows} 行 "
            f"(merged cells filled down into the rows they cover: {rows})"
        )
    for row in table.attrs.get(TOTALS_ATTR, ()):
        notes.append(f"第 {row} 行是合计行，已跳过 (row {row} is a totals row: skipped)")
    if validation.matched_by_person:
        notes.append("文件没有编号列：按身份证号匹配已有的户，新的人获得新编号 (no id column: matched by 身份证号)")
    if validation.inferred_villages:
        n = len(validation.inferred_villages)
        shown = ", ".join(map(str, validation.inferred_villages[:10])) + (" …" if n > 10 else "")
        notes.append(
            f"{n} 行的村（社区）为空，已按坐标推断为本镇街最近的村（社区），并标为推断：第 {shown} 行 "
            f"({n} blank villages inferred from the point)"
        )
    if validation.updated_ids:
        notes.append(
            "空白单元格将清空已存的值 (--blank-clears: blank cells clear stored values)"
            if blank_clears
            else "空白单元格保留已存的值 (blank cells keep the stored values)"
        )
    return tuple(notes)


def _refuse_people_of_other_households(store: Store, validation: ValidationResult) -> ValidationResult:
    """Add a problem for every row whose 身份证号 belongs to another stored household (one household per person).

    The store finds the numbers through its blind index (no stored number is decrypted); the problem
    names the row, its id and the other household's id, never the number.
    """
    frame = validation.frame
    if schema.ID_NUMBER not in frame.columns or frame.empty:
        return validation
    numbers = frame[schema.ID_NUMBER].to_numpy(dtype=object, na_value=None).tolist()
    owners = store.households_with_id_numbers([n for n in numbers if n is not None])
    if not owners:  # nobody stored has any of these numbers (as in every first import)
        return validation
    problems = []
    for row, fid, number in zip(frame.index, frame[schema.ID].astype(str).tolist(), numbers, strict=True):
        owner = owners.get(number) if number is not None else None
        if owner is not None and owner != fid:
            fix = (
                f"this 身份证号 already belongs to stored household {owner!r}: one household per person. Use id "
                f"{owner!r} to update that household, or correct the number"
            )
            problems.append(Problem(int(row), fid, schema.ID_NUMBER, None, DUPLICATE_PERSON, fix))
    if not problems:
        return validation
    bad = [p.row for p in problems]
    return dataclasses.replace(validation, frame=frame.drop(index=bad), problems=(*validation.problems, *problems))
