"""Decide who sees households, and how: roles, masking, the access log and public counts (PIPL).

Disability status is sensitive personal information (DOMAIN.md §7). Households' personal fields are
encrypted at rest (``layers.store``); this module is the only way they come out again:

* ``caseworker`` — households of their own towns; personal fields masked unless they ask to see a
  record in full *with a reason*, which is written to the access log (who, when, which record, why);
* ``planner`` and ``admin`` — households masked (planners work on points and counts);
* ``bureau`` and ``public`` — no households at all; the public sees counts per town, with counts
  below 5 suppressed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import geopandas as gpd
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
#: Counts below this are suppressed on public outputs (house rule, DOMAIN.md §7).
MIN_PUBLIC_COUNT = 5

_MASKS = {
    schema.NAME: mask_name,
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
) -> gpd.GeoDataFrame:
    """Return households with their personal fields, masked unless ``role`` may and does ``reveal``.

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
        Show name, ID and certificate numbers and phone in full (caseworkers only; needs ``reason``);
        every revealed row is written to the access log.
    reason
        Why the full record is needed (e.g. "home visit 2026-11-23").

    Raises
    ------
    AccessDeniedError
        If ``role`` may not see households, a caseworker gives no towns, or ``reveal`` is asked by a
        role that may not or without a reason.
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
    if reveal and not (reason and reason.strip()):
        msg = "Seeing a household in full needs a `reason` (it is written to the access log)."
        raise AccessDeniedError(msg)
    town_filter = tuple(towns) if towns else None
    households = store.features(schema.HOUSEHOLD, towns=town_filter)
    if ids is not None:
        households = households[households[schema.ID].isin(list(ids))]
    tokens = store.personal_tokens(schema.HOUSEHOLD, towns=town_filter)
    personal = pd.DataFrame.from_records(
        [store.decrypt_personal(tokens[i]) for i in households[schema.ID]],
        index=households.index,
        columns=list(_MASKS),
    )
    if not reveal:
        personal = pd.DataFrame({c: personal[c].map(_MASKS[c]) for c in _MASKS}, index=households.index)
    else:
        store.log_access(schema.HOUSEHOLD, households[schema.ID].tolist(), user=user, reason=reason.strip())
        logger.info("%s (%s) saw %d household records in full", user, role, len(households))
    return households.drop(columns=[schema.NAME]).join(personal)


def household_counts(
    store: Store, *, by: Sequence[str] = (schema.TOWN_CODE,), min_count: int = MIN_PUBLIC_COUNT
) -> pd.DataFrame:
    """Return household counts grouped by ``by`` (e.g. town, or town × disability category).

    Groups with fewer than ``min_count`` households get ``count`` None and ``suppressed`` True, so a
    small group never identifies a family on a public page.
    """
    households = store.features(schema.HOUSEHOLD)
    counts = households.groupby(list(by)).size().rename("count").reset_index()
    counts["suppressed"] = counts["count"] < min_count
    counts["count"] = counts["count"].astype(object).where(~counts["suppressed"], None)
    return counts
