"""Define travel profiles (walk, wheelchair, drive): speeds, one-way rules, access tags and slopes.

Each profile has a speed per highway class and one-way rules; the wheelchair also has OSM
accessibility rules (``AccessRules``), and walking and the wheelchair a speed that depends on the
gradient (``SlopeModel``).

Every figure lives in ``geo/profiles.toml`` with its source; ``load_profiles(path, merge=True)``
(``--profiles FILE``) lays a user's file over those defaults, key by key.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from geo.errors import ProfileError

DEFAULT_PROFILES_PATH = Path(__file__).with_name("profiles.toml")
_LINK_SUFFIX = "_link"
#: OSM highway classes from most to least important; picks one class for merged (list-valued) edges.
HIGHWAY_RANK = (
    "motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential",
    "living_street", "service", "road", "track", "pedestrian", "footway", "cycleway", "path", "steps",
)  # fmt: skip
_RANK = {h: i for i, h in enumerate(HIGHWAY_RANK)}
#: Attributes whose unknown value has a policy; bit ``1 << i`` of an unknown mask is attribute ``i``.
ATTRIBUTES = ("wheelchair", "incline", "surface", "smoothness", "kerb", "width")
#: What an unknown attribute means: ``strict`` not passable, ``lenient`` passable (reported).
POLICIES = ("strict", "lenient")
EXCLUDE = "exclude"
#: Tables of OSM value -> time factor (or ``"exclude"``) in ``[<profile>.access]``.
_FACTOR_TABLES = ("wheelchair", "surface", "smoothness", "kerb")
_ACCESS_NUMBERS = ("max_incline_percent", "min_width_m", "steps_ramp_kph")
_SLOPE_MODELS = ("tobler", "exponential")
_SLOPE_KEYS = ("model", "max_uphill", "max_downhill", "uphill_share_at_max", "downhill_share_at_max")
_PROFILE_KEYS = ("speed_kph", "respect_oneway", "access", "unknown", "slope")
_INCLINE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(%|°)?\s*$")
_WIDTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|cm)?\s*$")
#: OSM ``ramp:wheelchair`` / ``ramp`` values that put a wheelchair ramp on a flight of steps.
RAMP_VALUES = frozenset({"yes", "designated"})


@dataclass(frozen=True)
class AccessRules:
    """How OSM accessibility tags change a profile's cost: time factors, exclusions, unknown policy.

    Parameters
    ----------
    factors
        Per attribute of ``_FACTOR_TABLES`` (``wheelchair``, ``surface``, ``smoothness``, ``kerb``):
        OSM value -> time factor (seconds multiply by it), or None where the value excludes the piece.
        A value not in the table is unknown. A piece with no kerb node (``kerb`` ``""``) meets no kerb.
    max_incline_percent
        None: ``incline`` is not read. Otherwise a numeric ``incline`` (%, or degrees with ``°``;
        signed along the piece, ``geo.osm``) is the piece's gradient: with a slope model it sets the
        speed and the limits each way (uphill one way, downhill the other, ``SlopeModel``) in place of
        the DEM; without one, a gradient steeper than this either way excludes the piece. A tag
        without a number (``up``, ``down``, ``yes``) is unknown.
    min_width_m
        ``width`` below this excludes the piece. None: ``width`` is not read.
    steps_ramp_kph
        Speed on ``highway=steps`` with ``ramp:wheelchair``/``ramp`` ``yes``; None: steps stay unusable.
    unknown
        Policy per attribute of ``ATTRIBUTES``: ``"strict"`` or ``"lenient"``.
    """

    factors: Mapping[str, Mapping[str, float | None]]
    max_incline_percent: float | None
    min_width_m: float | None
    steps_ramp_kph: float | None
    unknown: Mapping[str, str]


@dataclass(frozen=True)
class SlopeModel:
    """Speed share against gradient (rise over run, positive uphill) along a directed piece.

    Parameters
    ----------
    model
        ``"tobler"``: ``exp(-3.5 (|g + 0.05| - 0.05))``, Tobler's hiking function (1993) scaled to
        1 on the flat, so the profile's speed stays its flat speed. ``"exponential"``:
        ``uphill_share_at_max ** (g / max_uphill)`` uphill and ``downhill_share_at_max **
        (-g / max_downhill)`` downhill.
    max_uphill, max_downhill
        Steeper gradients (as positive numbers) are impassable in that direction; None for no limit.
    uphill_share_at_max, downhill_share_at_max
        Share of the flat speed at the maximum gradient (``exponential`` only).
    """

    model: Literal["tobler", "exponential"]
    max_uphill: float | None = None
    max_downhill: float | None = None
    uphill_share_at_max: float = 1.0
    downhill_share_at_max: float = 1.0

    def speed_share(self, grade: np.ndarray) -> np.ndarray:
        """Return the share of the flat speed at each gradient: 0 where impassable, 1 where NaN (no DEM)."""
        g = np.asarray(grade, np.float64)
        flat = np.isnan(g)
        g = np.where(flat, 0.0, g)
        if self.model == "tobler":
            share = np.exp(-3.5 * (np.abs(g + 0.05) - 0.05))
        else:
            up = self.uphill_share_at_max ** (np.maximum(g, 0.0) / (self.max_uphill or math.inf))
            down = self.downhill_share_at_max ** (np.maximum(-g, 0.0) / (self.max_downhill or math.inf))
            share = np.where(g >= 0, up, down)
        if self.max_uphill is not None:
            share = np.where(g > self.max_uphill, 0.0, share)
        if self.max_downhill is not None:
            share = np.where(-g > self.max_downhill, 0.0, share)
        return np.where(flat, 1.0, share)


@dataclass(frozen=True)
class AccessCosts:
    """Result of ``AccessRules`` on road pieces.

    Parameters
    ----------
    factor
        Time factor per piece (1 where no rule applies).
    excluded
        Pieces the rules (or a strict policy on an unknown value) exclude.
    unknown
        Bit mask per piece of the ``ATTRIBUTES`` that were unknown and passed leniently.
    speed_kph
        Speed per piece replacing the class speed (``steps_ramp_kph`` on steps with a ramp), NaN elsewhere.
    grade
        Gradient per piece from its ``incline`` tag (rise over run from ``u`` to ``v``), NaN where the
        tag gives no number or is not read; used in place of the DEM's gradient.
    """

    factor: np.ndarray
    excluded: np.ndarray
    unknown: np.ndarray
    speed_kph: np.ndarray
    grade: np.ndarray


@dataclass(frozen=True)
class Profile:
    """How one kind of traveller uses the road network.

    Parameters
    ----------
    name
        Profile name, e.g. ``"walk"``.
    speed_kph
        Speed in km/h per OSM ``highway`` class; classes not listed may not be used.
    respect_oneway
        Whether ``oneway`` tags restrict travel (drive only, by default).
    access
        OSM accessibility rules (the wheelchair); None where tags do not matter.
    slope
        Speed against gradient where a DEM is given; None where slopes do not matter (drive).
    """

    name: str
    speed_kph: Mapping[str, float]
    respect_oneway: bool
    access: AccessRules | None = None
    slope: SlopeModel | None = None

    def speed_for(self, highway: str) -> float | None:
        """Return the speed (km/h) on a ``highway`` class, or None where the profile may not go."""
        if highway.endswith(_LINK_SUFFIX):
            highway = highway[: -len(_LINK_SUFFIX)]
        return self.speed_kph.get(highway)

    def with_speed(self, speed_kph: float) -> Profile:
        """Return a copy travelling at ``speed_kph`` on every class it may use (e.g. a slower wheelchair)."""
        if not speed_kph > 0:
            msg = f"`speed_kph` must be a positive number; got {speed_kph!r}."
            raise ProfileError(msg)
        speeds = dict.fromkeys(self.speed_kph, float(speed_kph))
        return replace(self, speed_kph=MappingProxyType(speeds))

    def with_unknown_policy(self, policy: str | Mapping[str, str]) -> Profile:
        """Return a copy whose unknown-attribute policy is ``policy`` (one for all, or per attribute).

        Raises
        ------
        ProfileError
            If the profile has no access rules or a policy or attribute is not known.
        """
        if self.access is None:
            msg = (
                f"出行方式 `{self.name}` 没有无障碍标签规则，不能设置未知值策略；"
                f"profile `{self.name}` has no access rules, so it has no unknown-value policy."
            )
            raise ProfileError(msg)
        wanted = dict.fromkeys(ATTRIBUTES, policy) if isinstance(policy, str) else dict(policy)
        unknown = dict(self.access.unknown)
        unknown.update(_check_policies(wanted, f"`{self.name}`"))
        return replace(self, access=replace(self.access, unknown=MappingProxyType(unknown)))

    def access_costs(
        self, highway: Iterable[str], tags: Mapping[str, np.ndarray], grade_known: np.ndarray
    ) -> AccessCosts:
        """Apply the access rules to road pieces; see `access_costs`."""
        return access_costs(self, highway, tags, grade_known)


def highway_class(value: str | Iterable[str]) -> str:
    """Return one highway class for an edge's ``highway`` tag (osmnx lists merged values).

    A list takes its most important class (``HIGHWAY_RANK``), links count as their parent class.
    """
    if isinstance(value, str):
        return value
    classes = list(value)
    return min(classes, key=lambda h: _RANK.get(h.removesuffix(_LINK_SUFFIX), len(_RANK)))


def travel_time_s(length_m: float, highway: str | Iterable[str], profile: Profile) -> float | None:
    """Return the seconds ``profile`` needs for an edge, or None where it may not use the edge.

    An edge merged from several classes (osmnx lists them) is usable only if every class is, at
    the slowest of their speeds: a footway with a flight of steps is no wheelchair route.
    """
    classes = [highway] if isinstance(highway, str) else list(highway)
    speeds = [profile.speed_for(h) for h in classes]
    if not speeds or any(s is None for s in speeds):
        return None
    return length_m / (min(speeds) / 3.6)


def load_profiles(path: str | Path | None = None, *, merge: bool = False) -> dict[str, Profile]:
    """Read travel profiles from a TOML file (the shipped defaults when ``path`` is None).

    Parameters
    ----------
    path
        A TOML file of profile tables (see ``geo/profiles.toml``).
    merge
        Lay the file over the shipped defaults key by key (``--profiles FILE``): a file holding only
        ``[wheelchair.slope] max_uphill = 0.05`` changes that figure and keeps the rest. Without
        ``merge`` the file is the whole table.

    Raises
    ------
    ProfileError
        If the file is missing or not TOML, or a profile is malformed: no ``speed_kph`` or
        ``respect_oneway``, a non-positive speed or factor, an unknown key, attribute or policy.
        The message (Chinese first, then English) names the file, profile, key and value.
    """
    path = Path(path) if path is not None else DEFAULT_PROFILES_PATH
    tables = _read_toml(path)
    if merge and path != DEFAULT_PROFILES_PATH:
        tables = _merged(_read_toml(DEFAULT_PROFILES_PATH), tables)
    return {name: _profile(name, table, path) for name, table in tables.items()}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        msg = (
            f"出行方式配置文件 {str(path)!r} 不存在，请给出已有的 TOML 文件或不给（用默认值）；"
            f"Profile file {str(path)!r} does not exist; pass an existing TOML file or none for the defaults."
        )
        raise ProfileError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = (
            f"出行方式配置文件 {str(path)!r} 不是有效的 TOML（{exc}），格式见 geo/profiles.toml；"
            f"Profile file {str(path)!r} is not valid TOML ({exc}); see geo/profiles.toml for the format."
        )
        raise ProfileError(msg) from None


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``over`` laid on it: tables merge key by key, other values replace."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _fail(where: str, zh: str, en: str) -> ProfileError:
    return ProfileError(f"{where}：{zh}；{where}: {en}")


def _profile(name: str, table: Any, path: Path) -> Profile:
    where = f"{str(path)!r} [{name}]"
    if (
        not isinstance(table, dict)
        or not isinstance(table.get("speed_kph"), dict)
        or not isinstance(table.get("respect_oneway"), bool)
    ):
        keys = sorted(table) if isinstance(table, dict) else table
        msg = (
            f"出行方式 `{name}`（{str(path)!r}）需要 `speed_kph` 表和布尔值 `respect_oneway`，实际键为 {keys!r}；"
            f"Profile `{name}` in {str(path)!r} needs a `speed_kph` table and a boolean "
            f"`respect_oneway`; got keys {keys!r}."
        )
        raise ProfileError(msg)
    extra = sorted(set(table) - set(_PROFILE_KEYS))
    if extra:
        raise _fail(
            where,
            f"未知的键 {extra!r}，可用的键：{list(_PROFILE_KEYS)!r}",
            f"unknown key(s) {extra!r}; use {list(_PROFILE_KEYS)!r}.",
        )
    bad = {k: v for k, v in table["speed_kph"].items() if not _positive(v)}
    if bad:
        msg = (
            f"出行方式 `{name}`（{str(path)!r}）的速度须为正数（km/h），实际为 {bad!r}；"
            f"Profile `{name}` in {str(path)!r}: speeds must be positive km/h; got {bad!r}."
        )
        raise ProfileError(msg)
    speeds = MappingProxyType({k: float(v) for k, v in table["speed_kph"].items()})
    access = _access(table, where) if "access" in table else None
    if "unknown" in table and access is None:
        raise _fail(where, "有 `unknown` 策略却没有 `access` 规则表", "an `unknown` policy needs an `access` table.")
    slope = _slope(table["slope"], where) if "slope" in table else None
    return Profile(name, speeds, table["respect_oneway"], access, slope)


def _positive(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and v > 0 and math.isfinite(v)


def check_policy(policy: Any) -> str:
    """Return ``policy`` if it is ``"strict"`` or ``"lenient"``.

    Raises
    ------
    ProfileError
        Otherwise, naming the value and the two choices (Chinese first).
    """
    return _check_policies({"wheelchair": policy}, "`--unknown`")["wheelchair"]


def _check_policies(policies: Mapping[str, Any], where: str) -> dict[str, str]:
    unknown_attrs = sorted(set(policies) - set(ATTRIBUTES))
    if unknown_attrs:
        raise _fail(
            where,
            f"`unknown` 中有未知属性 {unknown_attrs!r}，可用：{list(ATTRIBUTES)!r}",
            f"`unknown` names attribute(s) {unknown_attrs!r}; use {list(ATTRIBUTES)!r}.",
        )
    bad = {k: v for k, v in policies.items() if v not in POLICIES}
    if bad:
        raise _fail(
            where,
            f"未知值策略须为 strict（不可通行）或 lenient（可通行并报告），实际为 {bad!r}",
            f"unknown-value policies must be 'strict' or 'lenient'; got {bad!r}.",
        )
    return dict(policies)


def _access(table: dict[str, Any], where: str) -> AccessRules:
    access = table["access"]
    if not isinstance(access, dict):
        raise _fail(where, f"`access` 须为表，实际为 {access!r}", f"`access` must be a table; got {access!r}.")
    extra = sorted(set(access) - set(_FACTOR_TABLES) - set(_ACCESS_NUMBERS))
    if extra:
        allowed = [*_FACTOR_TABLES, *_ACCESS_NUMBERS]
        raise _fail(
            where,
            f"`access` 中有未知的键 {extra!r}，可用：{allowed!r}",
            f"`access` has unknown key(s) {extra!r}; use {allowed!r}.",
        )
    factors = {}
    for attribute in _FACTOR_TABLES:
        values = access.get(attribute, {})
        bad = (
            {k: v for k, v in values.items() if v != EXCLUDE and not _positive(v)}
            if isinstance(values, dict)
            else values
        )
        if bad or not isinstance(values, dict):
            raise _fail(
                where,
                f'`access.{attribute}` 的值须为正的时间系数或 "exclude"，实际为 {bad!r}',
                f'`access.{attribute}` values must be a positive time factor or "exclude"; got {bad!r}.',
            )
        factors[attribute] = MappingProxyType({k: None if v == EXCLUDE else float(v) for k, v in values.items()})
    numbers = {}
    for key in _ACCESS_NUMBERS:
        value = access.get(key)
        if value is not None and not _positive(value):
            raise _fail(
                where,
                f"`access.{key}` 须为正数，实际为 {value!r}",
                f"`access.{key}` must be a positive number; got {value!r}.",
            )
        numbers[key] = None if value is None else float(value)
    policies = table.get("unknown", {})
    if not isinstance(policies, dict):
        raise _fail(where, f"`unknown` 须为表，实际为 {policies!r}", f"`unknown` must be a table; got {policies!r}.")
    unknown = dict.fromkeys(ATTRIBUTES, "lenient") | _check_policies(policies, where)
    return AccessRules(MappingProxyType(factors), unknown=MappingProxyType(unknown), **numbers)


def _slope(slope: Any, where: str) -> SlopeModel:
    if not isinstance(slope, dict):
        raise _fail(where, f"`slope` 须为表，实际为 {slope!r}", f"`slope` must be a table; got {slope!r}.")
    extra = sorted(set(slope) - set(_SLOPE_KEYS))
    if extra:
        raise _fail(
            where,
            f"`slope` 中有未知的键 {extra!r}，可用：{list(_SLOPE_KEYS)!r}",
            f"`slope` has unknown key(s) {extra!r}; use {list(_SLOPE_KEYS)!r}.",
        )
    model = slope.get("model")
    if model not in _SLOPE_MODELS:
        raise _fail(
            where,
            f"`slope.model` 须为 {list(_SLOPE_MODELS)!r} 之一，实际为 {model!r}",
            f"`slope.model` must be one of {list(_SLOPE_MODELS)!r}; got {model!r}.",
        )
    kw: dict[str, Any] = {"model": model}
    for key in _SLOPE_KEYS[1:]:
        value = slope.get(key)
        if value is None:
            continue
        if not _positive(value) or (key.endswith("_share_at_max") and value > 1):
            rule = "(0, 1] 之间的比例" if key.endswith("_share_at_max") else "正的坡度（如 0.0833 即 1:12）"
            rule_en = "a share in (0, 1]" if key.endswith("_share_at_max") else "a positive gradient (0.0833 is 1:12)"
            raise _fail(
                where, f"`slope.{key}` 须为{rule}，实际为 {value!r}", f"`slope.{key}` must be {rule_en}; got {value!r}."
            )
        kw[key] = float(value)
    if model == "exponential" and not (kw.get("max_uphill") and kw.get("max_downhill")):
        raise _fail(
            where,
            '`slope.model = "exponential"` 需要 `max_uphill` 和 `max_downhill`',
            '`slope.model = "exponential"` needs `max_uphill` and `max_downhill`.',
        )
    return SlopeModel(**kw)


def access_costs(
    profile: Profile, highway: Iterable[str], tags: Mapping[str, np.ndarray], grade_known: np.ndarray
) -> AccessCosts:
    """Apply ``profile.access`` to road pieces: time factors, exclusions and unknown attributes.

    Parameters
    ----------
    profile
        The profile; without access rules every factor is 1 and nothing is excluded.
    highway
        OSM ``highway`` class per piece.
    tags
        Text array per tag (``geo.osm.ACCESS_TAGS`` and ``kerb``); a missing tag is untagged everywhere.
    grade_known
        Per piece, whether a DEM gave its gradient: then a missing ``incline`` is not unknown.

    Returns
    -------
    AccessCosts
    """
    highway = np.asarray(list(highway), dtype=str)
    n = len(highway)
    factor = np.ones(n)
    excluded = np.zeros(n, bool)
    unknown = np.zeros(n, np.int64)
    speed = np.full(n, np.nan)
    grade = np.full(n, np.nan)
    rules = profile.access
    if rules is None:
        return AccessCosts(factor, excluded, unknown, speed, grade)

    def tag(key: str) -> np.ndarray:
        return np.asarray(tags[key], dtype=str) if key in tags else np.full(n, "", dtype="<U1")

    def mark_unknown(attribute: str, where: np.ndarray) -> None:
        if rules.unknown[attribute] == "strict":
            excluded[where] = True
        else:
            unknown[where] |= 1 << ATTRIBUTES.index(attribute)

    for attribute, table in rules.factors.items():
        values = tag(attribute)
        known = np.zeros(n, bool)
        for value, f in table.items():
            hit = values == value
            known |= hit
            if f is None:
                excluded |= hit
            else:
                factor[hit] *= f
        if attribute == "kerb":
            known |= values == ""  # no kerb node on the piece
        mark_unknown(attribute, ~known)
    if rules.max_incline_percent is not None:
        percent = _parse(tag("incline"), _INCLINE, _incline_percent)
        if profile.slope is None:
            excluded |= np.abs(percent) > rules.max_incline_percent
        else:  # directed: the slope model limits and slows each way (prepared network)
            grade = percent / 100.0
        mark_unknown("incline", np.isnan(percent) & ~np.asarray(grade_known, bool))
    if rules.min_width_m is not None:
        width = _parse(tag("width"), _WIDTH, _width_m)
        excluded |= width < rules.min_width_m
        mark_unknown("width", np.isnan(width))
    if rules.steps_ramp_kph is not None:
        ramp = np.isin(tag("ramp:wheelchair"), list(RAMP_VALUES)) | np.isin(tag("ramp"), list(RAMP_VALUES))
        speed[(highway == "steps") & ramp] = rules.steps_ramp_kph
    return AccessCosts(factor, excluded, unknown, speed, grade)


def _incline_percent(number: float, unit: str | None) -> float:
    return math.tan(math.radians(number)) * 100.0 if unit == "°" else number


def _width_m(number: float, unit: str | None) -> float:
    return number / 100.0 if unit == "cm" else number


def _parse(values: np.ndarray, pattern: re.Pattern, convert: Any) -> np.ndarray:
    """Parse each distinct text of ``values`` with ``pattern`` and ``convert``; NaN where it does not parse."""
    distinct, inverse = np.unique(values, return_inverse=True)
    out = np.full(len(distinct), np.nan)
    for i, text in enumerate(distinct.tolist()):
        match = pattern.match(text)
        if match:
            out[i] = convert(float(match.group(1)), match.group(2))
    return out[inverse]
