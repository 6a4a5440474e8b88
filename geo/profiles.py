"""Define travel profiles (walk, wheelchair, drive): speed per highway class and one-way rules."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from geo.errors import ProfileError

DEFAULT_PROFILES_PATH = Path(__file__).with_name("profiles.toml")
_LINK_SUFFIX = "_link"
#: OSM highway classes from most to least important; picks one class for merged (list-valued) edges.
HIGHWAY_RANK = (
    "motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential",
    "living_street", "service", "road", "track", "pedestrian", "footway", "cycleway", "path", "steps",
)  # fmt: skip
_RANK = {h: i for i, h in enumerate(HIGHWAY_RANK)}


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
    """

    name: str
    speed_kph: Mapping[str, float]
    respect_oneway: bool

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
        return Profile(self.name, MappingProxyType(speeds), self.respect_oneway)


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


def load_profiles(path: str | Path | None = None) -> dict[str, Profile]:
    """Read travel profiles from a TOML file (the shipped defaults when ``path`` is None).

    Raises
    ------
    ProfileError
        If a profile lacks ``speed_kph`` or ``respect_oneway`` or has a non-positive speed.
    """
    path = Path(path) if path is not None else DEFAULT_PROFILES_PATH
    try:
        with path.open("rb") as f:
            tables = tomllib.load(f)
    except FileNotFoundError:
        msg = f"Profile file {str(path)!r} does not exist; pass an existing TOML file or none for the defaults."
        raise ProfileError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"Profile file {str(path)!r} is not valid TOML ({exc}); see geo/profiles.toml for the format."
        raise ProfileError(msg) from None
    profiles = {}
    for name, table in tables.items():
        if not isinstance(table.get("speed_kph"), dict) or not isinstance(table.get("respect_oneway"), bool):
            msg = (
                f"Profile `{name}` in {str(path)!r} needs a `speed_kph` table and a boolean "
                f"`respect_oneway`; got keys {sorted(table)!r}."
            )
            raise ProfileError(msg)
        bad = {
            k: v
            for k, v in table["speed_kph"].items()
            if isinstance(v, bool) or not (isinstance(v, int | float) and v > 0)
        }
        if bad:
            msg = f"Profile `{name}` in {str(path)!r}: speeds must be positive km/h; got {bad!r}."
            raise ProfileError(msg)
        speeds = MappingProxyType({k: float(v) for k, v in table["speed_kph"].items()})
        profiles[name] = Profile(name, speeds, table["respect_oneway"])
    return profiles
