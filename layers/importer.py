"""Import a layer file into the store: read, validate every row, then write all rows or none."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from layers import schema
from layers.io import read_table
from layers.validate import DUPLICATE_PERSON, Problem, ValidationResult, validate_layer

if TYPE_CHECKING:
    from layers.district import District
    from layers.store import ImportCounts, Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportOutcome:
    """What an import found and (unless a dry run) wrote.

    Parameters
    ----------
    validation
        Every problem found, and the clean rows.
    counts
        Inserted, updated and unchanged rows; None for a dry run or a rejected file.
    """

    validation: ValidationResult
    counts: ImportCounts | None

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
        Validate and report only.

    Returns
    -------
    ImportOutcome
        Check ``outcome.ok``; ``outcome.validation.report()`` lists every problem.
    """
    table = source if isinstance(source, pd.DataFrame) else read_table(source)
    validation = validate_layer(layer, table, district=district, datum=datum, existing=store.statuses(layer))
    if validation.ok and layer == schema.HOUSEHOLD:
        validation = _refuse_people_of_other_households(store, validation)
    if not validation.ok or dry_run:
        logger.info(
            "%s `%s`: %d rows, %d problems; nothing written",
            "Dry run of" if dry_run else "Rejected import into",
            layer,
            validation.n_rows,
            len(validation.problems),
        )
        return ImportOutcome(validation, None)
    # The clean frame itself: `Store.upsert_features` reads it column by column (no records round trip).
    counts = store.upsert_features(layer, validation.frame, user=user)
    return ImportOutcome(validation, counts)


def _refuse_people_of_other_households(store: Store, validation: ValidationResult) -> ValidationResult:
    """Add a problem for every row whose 身份证号 belongs to another stored household (one household per person).

    The store finds the numbers through its blind index (no stored number is decrypted); the problem
    names the row, its id and the other household's id, never the number.
    """
    frame = validation.frame
    if schema.ID_NUMBER not in frame.columns or frame.empty:
        return validation
    numbers = frame[schema.ID_NUMBER].astype(object).where(frame[schema.ID_NUMBER].notna(), None).tolist()
    owners = store.households_with_id_numbers([n for n in numbers if n is not None])
    problems = []
    for row, fid, number in zip(frame.index, frame[schema.ID].astype(str), numbers, strict=True):
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
