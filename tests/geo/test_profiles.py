from __future__ import annotations

import pytest

from geo.errors import ProfileError
from geo.profiles import DEFAULT_PROFILES_PATH, Profile, highway_class, load_profiles, travel_time_s


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    return load_profiles()


def test_default_profiles(profiles):
    assert sorted(profiles) == ["drive", "walk", "wheelchair"]
    assert profiles["drive"].respect_oneway is True
    assert profiles["walk"].respect_oneway is False
    assert profiles["wheelchair"].respect_oneway is False
    assert profiles["walk"].speed_for("residential") == 5.0
    assert profiles["wheelchair"].speed_for("footway") == 3.0
    assert profiles["drive"].speed_for("residential") == 19.0
    assert load_profiles(DEFAULT_PROFILES_PATH) == profiles


@pytest.mark.parametrize(
    ("profile", "highway", "speed"),
    [
        ("drive", "primary_link", 52.0),  # a link takes its parent's speed
        ("drive", "motorway_link", 71.0),
        ("drive", "footway", None),
        ("drive", "steps", None),
        ("walk", "steps", 5.0),
        ("wheelchair", "steps", None),  # no steps for wheelchairs
        ("walk", "motorway", None),
        ("walk", "no_such_class", None),
    ],
)
def test_speed_for(profiles, profile, highway, speed):
    assert profiles[profile].speed_for(highway) == speed


def test_speeds_are_read_only(profiles):
    with pytest.raises(TypeError):
        profiles["walk"].speed_kph["steps"] = 99.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("residential", "residential"),
        (["residential", "primary"], "primary"),
        (["residential", "primary_link"], "primary_link"),  # a link ranks as its parent
        (["footway", "steps"], "footway"),
        (["made_up", "steps"], "steps"),  # unknown classes rank last
    ],
)
def test_highway_class(value, expected):
    assert highway_class(value) == expected


def test_travel_time_by_hand(profiles):
    assert travel_time_s(100.0, "residential", profiles["drive"]) == pytest.approx(100 / (19 / 3.6))
    assert travel_time_s(100.0, "residential", profiles["drive"]) == pytest.approx(18.947, abs=1e-3)
    assert travel_time_s(100.0, "footway", profiles["walk"]) == pytest.approx(72.0)
    assert travel_time_s(100.0, "footway", profiles["wheelchair"]) == pytest.approx(120.0)
    assert travel_time_s(100.0, "trunk_link", profiles["drive"]) == pytest.approx(100 / (68 / 3.6))


def test_merged_edges_use_the_slowest_class_and_need_every_class(profiles):
    # residential 19 km/h + tertiary 31 km/h: the whole edge at 19 km/h
    assert travel_time_s(100.0, ["tertiary", "residential"], profiles["drive"]) == pytest.approx(100 / (19 / 3.6))
    # a footway with a flight of steps is no wheelchair route, but walkable
    assert travel_time_s(100.0, ["footway", "steps"], profiles["wheelchair"]) is None
    assert travel_time_s(100.0, ["footway", "steps"], profiles["walk"]) == pytest.approx(72.0)
    assert travel_time_s(100.0, [], profiles["walk"]) is None


def test_with_speed(profiles):
    slow = profiles["wheelchair"].with_speed(2.0)
    assert set(slow.speed_kph.values()) == {2.0}
    assert set(slow.speed_kph) == set(profiles["wheelchair"].speed_kph)
    assert slow.speed_for("steps") is None
    assert profiles["wheelchair"].speed_for("footway") == 3.0  # original unchanged
    with pytest.raises(ProfileError, match=r"`speed_kph` must be a positive number; got 0"):
        profiles["walk"].with_speed(0)


def test_user_override_file(tmp_path):
    path = tmp_path / "slow.toml"
    path.write_text(
        "[elderly]\nrespect_oneway = false\nspeed_kph = { footway = 2.7, residential = 2 }\n", encoding="utf-8"
    )
    profiles = load_profiles(path)
    assert list(profiles) == ["elderly"]
    assert profiles["elderly"].speed_kph == {"footway": 2.7, "residential": 2.0}
    assert isinstance(profiles["elderly"].speed_kph["residential"], float)
    assert travel_time_s(27.0, "footway", profiles["elderly"]) == pytest.approx(36.0)
    assert load_profiles(str(path)) == profiles


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[walk]\nspeed_kph = { footway = 5 }\n", r"Profile `walk` in '.*bad\.toml' needs a `speed_kph` table"),
        ("[walk]\nrespect_oneway = 'no'\nspeed_kph = { footway = 5 }\n", r"boolean `respect_oneway`"),
        ("[walk]\nrespect_oneway = false\nspeed_kph = 5\n", r"got keys \['respect_oneway', 'speed_kph'\]"),
        (
            "[walk]\nrespect_oneway = false\nspeed_kph = { footway = -1, path = 'fast' }\n",
            r"Profile `walk` in '.*bad\.toml': speeds must be positive km/h; got \{'footway': -1, 'path': 'fast'\}",
        ),
    ],
)
def test_bad_profile_file(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=match):
        load_profiles(path)


def test_a_boolean_speed_is_refused(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text("[walk]\nrespect_oneway = false\nspeed_kph = { footway = true }\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="positive km/h"):
        load_profiles(path)


def test_a_missing_or_broken_file_names_the_file(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        load_profiles(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[walk\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="broken.toml.*not valid TOML"):
        load_profiles(broken)


# --- access rules, unknown policy, slopes and `--profiles` overrides --------------------------------


def test_shipped_wheelchair_rules_and_slopes(profiles):
    wheel = profiles["wheelchair"]
    assert wheel.access.factors["wheelchair"]["no"] is None  # "exclude"
    assert wheel.access.factors["wheelchair"]["limited"] == 1.5
    assert wheel.access.max_incline_percent == 8.33  # GB 50763 1:12
    assert wheel.access.min_width_m == 1.0
    assert set(wheel.access.unknown.values()) == {"lenient"}
    assert wheel.slope.model == "exponential"
    assert (wheel.slope.max_uphill, wheel.slope.max_downhill) == (0.0833, 0.0833)
    assert profiles["walk"].slope.model == "tobler" and profiles["walk"].access is None
    assert profiles["drive"].slope is None


def test_slope_shares_by_hand():
    tobler = load_profiles()["walk"].slope
    # exp(-3.5 (|g + 0.05| - 0.05)): 1 on the flat, e^0.175 = 1.19125 at -5 %, e^-0.35 = 0.70469 at +10 %
    assert tobler.speed_share([0.0, -0.05, 0.10, float("nan")]).tolist() == pytest.approx(
        [1.0, 1.19125, 0.70469, 1.0], abs=1e-5
    )
    chair = load_profiles()["wheelchair"].slope
    # 0.5^(g / 0.0833) up, 0.8^(-g / 0.0833) down, 0 beyond 8.33 % either way
    assert chair.speed_share([0.0833, -0.0833, 0.0834, -0.09, 0.04165]).tolist() == pytest.approx(
        [0.5, 0.8, 0.0, 0.0, 0.70711], abs=1e-5
    )


def test_a_profiles_file_is_laid_over_the_defaults(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        "[wheelchair.slope]\nmax_uphill = 0.05\n[wheelchair.access]\nsurface = { sett = 2.0 }\n"
        "[wheelchair.unknown]\nkerb = 'strict'\n",
        encoding="utf-8",
    )
    merged = load_profiles(path, merge=True)
    wheel = merged["wheelchair"]
    assert wheel.slope.max_uphill == 0.05 and wheel.slope.max_downhill == 0.0833
    assert wheel.access.factors["surface"]["sett"] == 2.0
    assert wheel.access.factors["surface"]["gravel"] is None  # kept from the defaults
    assert wheel.access.unknown["kerb"] == "strict" and wheel.access.unknown["surface"] == "lenient"
    assert wheel.speed_kph == load_profiles()["wheelchair"].speed_kph
    assert merged["walk"] == load_profiles()["walk"]
    with pytest.raises(ProfileError, match="needs a `speed_kph` table"):  # without merge: the whole table
        load_profiles(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[wheelchair.access]\nsurfac = { sett = 1 }\n", r"`access` 中有未知的键 \['surfac'\].*unknown key"),
        ("[wheelchair.access]\nsurface = { sett = -1 }\n", r"`access.surface` 的值须为正的时间系数.*\{'sett': -1\}"),
        ("[wheelchair.access]\nmin_width_m = 0\n", r"`access.min_width_m` 须为正数，实际为 0"),
        ("[wheelchair.unknown]\nkerb = 'maybe'\n", r"strict（不可通行）或 lenient.*\{'kerb': 'maybe'\}"),
        ("[wheelchair.unknown]\nstairs = 'strict'\n", r"`unknown` 中有未知属性 \['stairs'\]"),
        ("[wheelchair.slope]\nmodel = 'linear'\n", r"`slope.model` 须为 \['tobler', 'exponential'\] 之一"),
        ("[wheelchair.slope]\nuphill_share_at_max = 1.5\n", r"`slope.uphill_share_at_max` 须为\(0, 1\] 之间的比例"),
        ("[walk]\nspeeds = 5\n", r"\[walk\]：未知的键 \['speeds'\]"),
        ("[walk.slope]\nmodel = 'exponential'\n", r"需要 `max_uphill` 和 `max_downhill`"),
    ],
)
def test_bad_overrides_name_the_file_profile_key_and_value(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=match) as info:
        load_profiles(path, merge=True)
    assert "bad.toml" in str(info.value)
