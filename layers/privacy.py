"""Decide who sees households, and how: roles, masking, the access log and public counts (PIPL).

Disability status is sensitive personal information (DOMAIN.md §7). Households' personal fields are
encrypted at rest (``layers.store``); this module is the only way they come out again:

* ``caseworker`` — households of their own towns; personal fields masked unless they ask to see a
  record in full *with a reason*, which is written to the access log (who, when, which record, why);
* ``planner`` and ``admin`` — households only as planning points (`PLANNING_COLUMNS`): id, town,
  village, status and coordinates generalised to a 0.001° grid (~100 m, `generalise_points`); no
  name, address, numbers, phone or disability category and grade, masked or not;
* ``bureau`` and ``public`` — no households at all; the public sees counts per town, with counts
  below 5 suppressed.

Every bulk read (a list, not one record) appends one row to the access log: who, when, how many
rows, and the purpose (the endpoint or command), with ``feature_id`` `BULK_READ_ID`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from layers import schema
from layers.errors import AccessDeniedError
from layers.idcard import mask_name, mask_number

if TYPE_CHECKING:
    from layers.store import Store

logger = logging.getLogger(__name__)

PUBLIC = "public"
CASEWORKER = "caseworker"
BUREAU = "bureau"
PLANNER = "planner"
ADMIN = "admin"
#: Roles a staff account can have (``public`` is everyone who is not signed in).
STAFF_ROLES = (CASEWORKER, BUREAU, PLANNER, ADMIN)
ROLES = (PUBLIC, *STAFF_ROLES)
#: Roles that may list households (masked).
HOUSEHOLD_VIEW_ROLES = frozenset({CASEWORKER, PLANNER, ADMIN})
#: Roles that may see a household's personal fields in full (logged, own towns only).
FULL_VIEW_ROLES = frozenset({CASEWORKER})
#: Roles that may export the household layer (with the same masking as on screen).
HOUSEHOLD_EXPORT_ROLES = frozenset({CASEWORKER, ADMIN})
#: Roles that may import household ledgers (a caseworker only rows of their own towns; an admin any town,
#: seeing no personal value in the dry run's diff).
HOUSEHOLD_IMPORT_ROLES = frozenset({CASEWORKER, ADMIN})
#: Roles that see households only as generalised planning points.
PLANNING_VIEW_ROLES = frozenset({PLANNER, ADMIN})
#: What planning roles see of a household (plus the point geometry).
PLANNING_COLUMNS = (schema.ID, schema.TOWN_CODE, schema.VILLAGE_CODE, schema.STATUS, schema.LON, schema.LAT)
#: Grid that generalised coordinates snap to, in degrees: 0.001° is 111 m north-south and ~97 m
#: east-west at Bishan's 29.6° N, so a point moves at most ~75 m and a house cannot be picked out.
COORDINATE_GRID_DEG = 0.001
#: ``feature_id`` of an access-log row that records a bulk read (the count is in its reason).
BULK_READ_ID = "*"
#: Counts below this are suppressed on public outputs (house rule, DOMAIN.md §7).
MIN_PUBLIC_COUNT = 5
#: Columns of the linked public count tables (`household_counts`): per town, village, category.
COUNT_COLUMNS = (schema.TOWN_CODE, schema.VILLAGE_CODE, schema.DISABILITY_CATEGORY)

#: A reason for seeing a record in full has at least this many characters (spaces not counted).
MIN_REASON_CHARS = 4
#: ... at least this many of them letters or Chinese characters, and this many distinct characters.
MIN_REASON_LETTERS = 2
MIN_REASON_DISTINCT = 3
#: Why a reason was refused; the web pages show their own translated text of this rule.
REASON_RULE = (
    f"a reason of at least {MIN_REASON_CHARS} characters, {MIN_REASON_LETTERS} or more of them Chinese characters "
    f"or letters and at least {MIN_REASON_DISTINCT} different characters (e.g. 入户走访核实改造需求)"
)

#: The part of an address kept by `mask_address`: up to the village (村) or community (社区), else
#: up to the town (镇, 乡, 街道), else up to the district or county.
_ADDRESS_KEPT = (re.compile(r"^.*?(?:社区|村)"), re.compile(r"^.*?(?:街道|镇|乡)"), re.compile(r"^.*?(?:区|县)"))


def mask_address(value: object) -> str:
    """Mask a street address to its town and village (璧山区璧城街道文星社区石家庄街268号 → 璧山区璧城街道文星社区****).

    The street, house number and anything after the village or community are replaced by ``****``; an
    address with no recognisable village, town or district becomes ``****``; missing values ``''``.
    """
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    text = str(value).strip()
    if not text:
        return ""
    for pattern in _ADDRESS_KEPT:
        kept = pattern.match(text)
        if kept and len(kept.group()) < len(text):
            return f"{kept.group()}****"
        if kept:  # nothing after the village: the whole address is the village
            return text
    return "****"


def check_reason(reason: str | None) -> str:
    """Return ``reason`` stripped if it is a real reason for seeing a record in full (see `REASON_RULE`).

    Raises
    ------
    AccessDeniedError
        If the reason is missing, too short, has too few letters or Chinese characters (``1234``,
        ``----``) or repeats one or two characters (``xxxx``, ``看看看看``, ``abab``).
    """
    text = (reason or "").strip()
    chars = [c for c in text if not c.isspace()]
    letters = sum(c.isalpha() for c in chars)
    if len(chars) < MIN_REASON_CHARS or letters < MIN_REASON_LETTERS or len(set(chars)) < MIN_REASON_DISTINCT:
        msg = f"Seeing a household in full needs {REASON_RULE}; it is written to the access log. Got {text!r}."
        raise AccessDeniedError(msg)
    return text


_MASKS = {
    schema.NAME: mask_name,
    schema.ADDRESS: mask_address,
    schema.ID_NUMBER: mask_number,
    schema.CERTIFICATE_NUMBER: mask_number,
    schema.PHONE: mask_number,
}


def read_households(
    store: Store,
    *,
    role: str,
    user: str,
    towns: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    reveal: bool = False,
    reason: str | None = None,
    channel: str | None = None,
    ip: str | None = None,
    purpose: str | None = None,
) -> gpd.GeoDataFrame:
    """Return households with their personal fields, masked unless ``role`` may and does ``reveal``.

    Planning roles (`PLANNING_VIEW_ROLES`) get the planning view instead: `PLANNING_COLUMNS` with
    generalised coordinates. A bulk read (``ids`` None) is written to the access log as one row.

    Parameters
    ----------
    store
        The store.
    role
        The caller's role (``ROLES``).
    user
        The caller's user name, for the access log.
    towns
        Town codes the caller may see; required for caseworkers (their scope), optional otherwise.
    ids
        Only these households (e.g. one record page).
    reveal
        Show name, address, ID and certificate numbers and phone in full (caseworkers only; needs
        ``reason`` and ``channel``); every revealed row is written to the access log.
    reason
        Why the full record is needed (e.g. "入户走访 2026-11-23"), checked by `check_reason`.
    channel
        ``web``, ``api`` or ``cli`` (``layers.store.ACCESS_CHANNELS``), for the access log.
    ip
        The client's address, for the access log (None on the command line).
    purpose
        What a bulk read is for, written to the access log (e.g. ``"GET /api/households"``).

    Raises
    ------
    AccessDeniedError
        If ``role`` may not see households, a caseworker gives no towns, or ``reveal`` is asked by a
        role that may not, without a real reason (`check_reason`) or without a channel.
    """
    if role not in HOUSEHOLD_VIEW_ROLES:
        msg = f"Role {role!r} may not see households; allowed: {sorted(HOUSEHOLD_VIEW_ROLES)!r}."
        raise AccessDeniedError(msg)
    if role == CASEWORKER and not towns:
        msg = "A caseworker sees only the households of their towns: pass `towns`."
        raise AccessDeniedError(msg)
    if reveal and role not in FULL_VIEW_ROLES:
        msg = f"Role {role!r} may not see households' personal fields in full; they stay masked."
        raise AccessDeniedError(msg)
    if reveal:
        reason = check_reason(reason)
        if channel is None:
            msg = "Seeing a household in full needs the `channel` (web, api or cli) for the access log."
            raise AccessDeniedError(msg)
    town_filter = tuple(towns) if towns else None
    households = store.features(schema.HOUSEHOLD, towns=town_filter)
    if ids is not None:
        households = households[households[schema.ID].isin(list(ids))]
    else:
        log_bulk_read(store, len(households), user=user, purpose=(purpose or "").strip() or "no purpose given",
                      channel=channel or "cli", ip=ip, role=role)  # fmt: skip
    if role in PLANNING_VIEW_ROLES:
        return planning_view(households)
    tokens = store.personal_tokens(schema.HOUSEHOLD, towns=town_filter)
    personal = pd.DataFrame.from_records(
        [store.decrypt_personal(tokens[i]) for i in households[schema.ID]],
        index=households.index,
        columns=list(_MASKS),
    )
    if not reveal:
        personal = pd.DataFrame({c: personal[c].map(_MASKS[c]) for c in _MASKS}, index=households.index)
    else:
        ids = households[schema.ID].tolist()
        store.log_access(schema.HOUSEHOLD, ids, user=user, reason=reason, channel=channel, ip=ip)
        logger.info("%s (%s) saw %d household records in full", user, role, len(households))
    return households.drop(columns=[schema.NAME, schema.ADDRESS]).join(personal)


@dataclass(frozen=True)
class Reader:
    """Who reads households in bulk and through which channel (``web``, ``api`` or ``cli``), for the access log."""

    user: str
    channel: str


#: The reader of a command run at the console (the access log's ``cli`` channel).
CLI_READER = Reader(user="cli", channel="cli")


def log_bulk_read(
    store: Store, count: int, *, user: str, purpose: str, channel: str, ip: str | None = None, role: str | None = None
) -> None:
    """Write one access-log row (`BULK_READ_ID`) for a read of ``count`` household rows and its purpose."""
    by = f" ({role})" if role else ""
    store.log_access(schema.HOUSEHOLD, [BULK_READ_ID], user=user, reason=f"bulk read of {count} rows{by}: {purpose}",
                     channel=channel, ip=ip)  # fmt: skip


def planning_view(households: gpd.GeoDataFrame, *, extra: tuple[str, ...] = ()) -> gpd.GeoDataFrame:
    """Return ``households`` as planning points: `PLANNING_COLUMNS` (plus present ``extra``) on the coordinate grid."""
    keep = [c for c in (*PLANNING_COLUMNS, *extra) if c in households.columns]
    return generalise_points(households[[*keep, households.geometry.name]])


def generalise_points(gdf: gpd.GeoDataFrame, *, grid_deg: float = COORDINATE_GRID_DEG) -> gpd.GeoDataFrame:
    """Return ``gdf`` (EPSG:4326 points with ``lon``/``lat``) with every point snapped to a ``grid_deg`` grid.

    The geometry and the ``lon``/``lat`` columns are both replaced by the nearest grid node (rounded to
    the grid, so no float noise shows); missing coordinates stay missing.
    """
    decimals = max(0, -int(np.floor(np.log10(grid_deg))))
    lon = np.round(np.round(gdf[schema.LON].to_numpy(dtype=float) / grid_deg) * grid_deg, decimals)
    lat = np.round(np.round(gdf[schema.LAT].to_numpy(dtype=float) / grid_deg) * grid_deg, decimals)
    out = gdf.copy()
    out[schema.LON], out[schema.LAT] = lon, lat
    return out.set_geometry(gpd.points_from_xy(lon, lat, crs=gdf.crs))


def household_counts(
    store: Store, *, by: Sequence[str] = (schema.TOWN_CODE,), min_count: int = MIN_PUBLIC_COUNT
) -> pd.DataFrame:
    """Return the public household counts per town, village or disability category, safely suppressed.

    The three tables are published side by side, and they are linked: a town's count is the sum of
    its villages', the district total the sum of the towns' and of the categories'. Hiding only the
    small counts (primary suppression) would let anyone subtract: town total minus the visible
    villages gives the hidden one. So the suppression is decided once for all three tables by
    `suppress_linked_counts` (primary plus complementary suppression) and each table shows its part.

    Parameters
    ----------
    store
        The store.
    by
        One of the published groupings: ``(town_code,)``, ``(village_code,)`` or
        ``(disability_category,)`` (`COUNT_COLUMNS`).
    min_count
        Counts below this are hidden (primary suppression).

    Returns
    -------
    pandas.DataFrame
        One row per group with at least one household: the group column, ``count`` (None when
        hidden) and ``suppressed``.

    Raises
    ------
    ValueError
        If ``by`` is not one of the published groupings.
    """
    return public_count_table(store.features(schema.HOUSEHOLD), by=by, min_count=min_count)


def public_count_table(
    households: pd.DataFrame, *, by: Sequence[str] = (schema.TOWN_CODE,), min_count: int = MIN_PUBLIC_COUNT
) -> pd.DataFrame:
    """Return `household_counts` of the rows ``households`` (``town_code``, ``village_code``, category).

    Raises
    ------
    ValueError
        If ``by`` is not one of the published groupings.
    """
    by = tuple(by)
    if len(by) != 1 or by[0] not in COUNT_COLUMNS:
        msg = f"`by` must be one of {[(c,) for c in COUNT_COLUMNS]!r} (the linked public tables); got {by!r}."
        raise ValueError(msg)
    cells = linked_count_cells(households)
    hidden = suppress_linked_counts(cells, min_count=min_count)
    table = COUNT_COLUMNS.index(by[0])
    kind = ("town", "village", "category")[table]
    rows: dict[Any, list[Any]] = {}
    for key, n in cells.counts.items():
        if key[0] != kind or key[-1] is None:  # a missing village or category is never a published group
            continue
        row = rows.setdefault(key[-1], [0, False])
        row[0] += n
        row[1] = row[1] or key in hidden
    groups = sorted(rows, key=str)
    return pd.DataFrame(
        {
            by[0]: pd.Series(groups, dtype=object),
            "count": pd.Series([None if rows[g][1] else rows[g][0] for g in groups], dtype=object),
            "suppressed": pd.Series([rows[g][1] for g in groups], dtype=bool),
        }
    )


@dataclass(frozen=True)
class CountCells:
    """The cells of the linked public count tables and the sums that tie them together.

    Attributes
    ----------
    counts
        Households per cell. Keys: ``("district",)``, ``("town", town)``, ``("village", town,
        village)``, ``("category", category)``; ``village`` / ``category`` None for households
        without one (such cells exist only when non-empty and are never published).
    sums
        ``(total, parts)`` pairs: each total equals the sum of its parts.
    """

    counts: dict[tuple[Any, ...], int]
    sums: tuple[tuple[tuple[Any, ...], tuple[tuple[Any, ...], ...]], ...]


def linked_count_cells(households: pd.DataFrame) -> CountCells:
    """Return the district → town → village and district → category count cells of ``households``."""
    district = ("district",)
    counts: dict[tuple[Any, ...], int] = {district: len(households)}
    towns = households[schema.TOWN_CODE].astype(object)
    villages = households[schema.VILLAGE_CODE].astype(object).where(households[schema.VILLAGE_CODE].notna(), None)
    village_parts: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for (town, village), n in (
        pd.Series(1, index=pd.MultiIndex.from_arrays([towns, villages]))
        .groupby(level=[0, 1], dropna=False)
        .size()
        .items()
    ):
        village = None if pd.isna(village) else village
        counts[("town", town)] = counts.get(("town", town), 0) + int(n)
        counts[("village", town, village)] = int(n)
        village_parts.setdefault(("town", town), []).append(("village", town, village))
    categories = households.get(schema.DISABILITY_CATEGORY, pd.Series(None, index=households.index, dtype=object))
    for category, n in categories.astype(object).value_counts(dropna=False).items():
        counts[("category", None if pd.isna(category) else category)] = int(n)
    sums = [
        (district, tuple(sorted(village_parts, key=str))),
        (district, tuple(sorted((k for k in counts if k[0] == "category"), key=str))),
        *((town, tuple(sorted(parts, key=str))) for town, parts in sorted(village_parts.items(), key=str)),
    ]
    return CountCells(counts=counts, sums=tuple(s for s in sums if s[1]))


def suppress_linked_counts(cells: CountCells, *, min_count: int = MIN_PUBLIC_COUNT) -> frozenset[tuple[Any, ...]]:
    """Return the cells to hide so that no hidden count can be worked out from the published ones.

    Primary suppression hides every count from 1 to ``min_count - 1`` (a cell that is never published,
    households without a village or category, counts as hidden when small and as known otherwise,
    which is the safe assumption). Complementary suppression then repeats, until nothing
    changes, over every sum ``total = part_1 + ... + part_k`` (district = towns, district =
    categories, town = its villages):

    * a hidden total needs at least one hidden part, else it is the sum of the visible parts;
    * under a published total, the hidden parts — each hidden town replaced by its own hidden
      villages, since its visible villages are known — must be none, or at least two cells holding
      together at least ``min_count`` households and more households than cells. One hidden part
      would be the total minus the rest; a hidden remainder below ``min_count`` is itself a small
      count; and k cells holding k households are known to hold one each (every published cell
      holds at least one household: empty groups are listed as 0 or not at all).

    When a sum breaks a rule, its smallest visible part (ties by key) is hidden too; with no
    visible part left, the smallest visible part one level down (a village of a hidden town), else
    the total (never the district's). A sum with nothing left to hide stays as it is (only in a
    degenerate district, e.g. 5 households in 5 categories, each then known to be 1). The district
    total is taken as known (the district's statistics are published elsewhere); a district with
    fewer than ``min_count`` households hides every cell. ``tests/layers/test_privacy.py`` checks
    the result by attacking it: for every hidden cell it solves the linear programmes min and max of
    the cell over all counts (at least 1 for a hidden cell) that agree with every published number.

    Returns
    -------
    frozenset
        The keys of ``cells.counts`` to hide.
    """
    counts, root = cells.counts, ("district",)
    if counts[root] < min_count:
        return frozenset(counts)
    hidden = {k for k, n in counts.items() if 0 < n < min_count}
    parts_of = {total: parts for total, parts in cells.sums if total != root}
    changed = True
    while changed:
        changed = False
        for total, parts in cells.sums:
            if not _sum_is_safe(total, parts, hidden, counts, parts_of, min_count):
                candidate = _next_to_hide(parts, hidden, counts, parts_of)
                if candidate is None and total != root and total not in hidden:
                    candidate = total
                if candidate is None:
                    continue  # nothing left to hide in this sum
                hidden.add(candidate)
                changed = True
    return frozenset(hidden)


def _next_to_hide(
    parts: tuple[tuple[Any, ...], ...],
    hidden: set[tuple[Any, ...]],
    counts: dict[tuple[Any, ...], int],
    parts_of: dict[tuple[Any, ...], tuple[tuple[Any, ...], ...]],
) -> tuple[Any, ...] | None:
    """Return the smallest visible part (ties by key); with none, the smallest visible part of a hidden part."""
    level = list(parts)
    while level:
        visible = [p for p in level if p not in hidden and counts[p] > 0]
        if visible:
            return min(visible, key=lambda p: (counts[p], str(p)))
        level = [q for p in level for q in parts_of.get(p, ())]
    return None


def _sum_is_safe(
    total: tuple[Any, ...],
    parts: tuple[tuple[Any, ...], ...],
    hidden: set[tuple[Any, ...]],
    counts: dict[tuple[Any, ...], int],
    parts_of: dict[tuple[Any, ...], tuple[tuple[Any, ...], ...]],
    min_count: int,
) -> bool:
    hidden_parts = [p for p in parts if p in hidden]
    if total in hidden:
        return bool(hidden_parts)
    if not hidden_parts:
        return True
    leaves = [leaf for p in hidden_parts for leaf in _hidden_leaves(p, hidden, parts_of)]
    households = sum(counts[leaf] for leaf in leaves)
    return len(hidden_parts) >= 2 and len(leaves) >= 2 and households >= min_count and households > len(leaves)


def _hidden_leaves(
    cell: tuple[Any, ...], hidden: set[tuple[Any, ...]], parts_of: dict[tuple[Any, ...], tuple[tuple[Any, ...], ...]]
) -> list[tuple[Any, ...]]:
    """Return the hidden cells a hidden ``cell`` stands for: its hidden parts (recursively), else itself."""
    hidden_parts = [p for p in parts_of.get(cell, ()) if p in hidden]
    if not hidden_parts:
        return [cell]
    return [leaf for p in hidden_parts for leaf in _hidden_leaves(p, hidden, parts_of)]
