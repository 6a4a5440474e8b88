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
import re
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
        Show name, address, ID and certificate numbers and phone in full (caseworkers only; needs
        ``reason`` and ``channel``); every revealed row is written to the access log.
    reason
        Why the full record is needed (e.g. "入户走访 2026-11-23"), checked by `check_reason`.
    channel
        ``web``, ``api`` or ``cli`` (``layers.store.ACCESS_CHANNELS``), for the access log.
    ip
        The client's address, for the access log (None on the command line).

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
