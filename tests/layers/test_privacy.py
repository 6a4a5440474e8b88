from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cryptography.fernet import Fernet

from layers import privacy, users
from layers.crypto import BlindIndex, FieldCipher
from layers.errors import AccessDeniedError
from layers.privacy import (
    check_reason,
    household_counts,
    linked_count_cells,
    mask_address,
    public_count_table,
    read_households,
    suppress_linked_counts,
)
from layers.store import Store

ID_A = "500227194401116803"
ID_B = "50012019800101002X"


def _households() -> pd.DataFrame:
    n = 7
    return pd.DataFrame(
        {
            "id": [f"HH-{i}" for i in range(n)],
            "town_code": ["500120001"] * 6 + ["500120100"],
            "village_code": ["500120001001"] * 6 + ["500120100201"],
            "name": ["孙敏", "李强", "王芳", "赵伟", "钱程", "周杰", "吴刚"],
            "address": ["璧山区璧城街道文星社区石家庄街268号", "璧山区八塘镇某村3组12号"] * 3 + ["璧山区丁家街道"],
            "lon": [106.22] * n,
            "lat": [29.59] * n,
            "datum": ["wgs84"] * n,
            "status": ["surveyed"] * n,
            "id_number": [ID_A, ID_B, *(f"50012019900101{i:03d}X" for i in range(2, n))],  # one person per row
            "certificate_number": [ID_A + "12", ID_B + "41"] * 3 + [ID_A + "11"],
            "disability_category": [1, 4] * 3 + [1],
            "disability_grade": [2, 1] * 3 + [1],
            "phone": ["13624947846"] * n,
        }
    )


@pytest.fixture
def store(database_url):
    s = Store(database_url, cipher=FieldCipher(Fernet.generate_key()), blind_index=BlindIndex(Fernet.generate_key()))
    s.upsert_features("household", _households(), user="loader")
    yield s
    s.close()


@pytest.mark.parametrize("role", ["planner", "admin"])
def test_planners_see_generalised_points_only_and_the_bulk_read_is_logged(store, role):
    store.update_feature("household", "HH-0", {"lon": 106.2234567, "lat": 29.5915}, version=1, user="cw")
    gdf = read_households(store, role=role, user="p1", purpose="GET /api/households")
    assert list(gdf.columns) == ["id", "town_code", "village_code", "status", "lon", "lat", "geometry"]
    first = gdf.set_index("id").loc["HH-0"]
    # 106.2234567 -> 106.223 and 29.5915 -> 29.592 (0.001° grid, ~100 m); the geometry agrees
    assert (first["lon"], first["lat"]) == (106.223, 29.592)
    assert (first["geometry"].x, first["geometry"].y) == (106.223, 29.592)
    log = store.access_log()
    assert [(e["actor"], e["layer"], e["feature_id"], e["reason"]) for e in log] == [
        ("p1", "household", "*", f"bulk read of 7 rows ({role}): GET /api/households")
    ]
    one = read_households(store, role=role, user="p1", ids=["HH-1"])
    assert len(one) == 1 and len(store.access_log()) == 1  # one record is not a bulk read


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("璧山区璧城街道文星社区石家庄街268号", "璧山区璧城街道文星社区****"),  # up to the community
        ("璧山区八塘镇某村3组12号", "璧山区八塘镇某村****"),  # up to the village
        ("璧山区丁家街道莲花路5号", "璧山区丁家街道****"),  # no village: up to the town
        ("璧山区青杠街道", "璧山区青杠街道"),  # nothing below the town to hide
        ("璧山区 1 号", "璧山区****"),  # no town: up to the district
        ("石家庄街268号", "****"),  # nothing recognisable: all hidden
        ("", ""),
        (None, ""),
    ],
)
def test_an_address_is_masked_to_its_town_and_village(address, masked):
    assert mask_address(address) == masked


def test_caseworkers_are_scoped_to_their_towns(store):
    gdf = read_households(store, role="caseworker", user="c1", towns=["500120100"])
    assert gdf["id"].tolist() == ["HH-6"]
    with pytest.raises(AccessDeniedError, match="pass `towns`"):
        read_households(store, role="caseworker", user="c1")


def test_a_full_view_needs_a_reason_and_a_channel_and_is_logged_with_them(store):
    with pytest.raises(AccessDeniedError, match="needs a reason of at least 4 characters"):
        read_households(store, role="caseworker", user="c1", towns=["500120001"], ids=["HH-1"], reveal=True)
    with pytest.raises(AccessDeniedError, match="needs the `channel`"):
        read_households(
            store, role="caseworker", user="c1", towns=["500120001"], ids=["HH-1"], reveal=True, reason="home visit"
        )
    gdf = read_households(
        store, role="caseworker", user="c1", towns=["500120001"], ids=["HH-1"], reveal=True, reason=" home visit ",
        channel="web", ip="10.0.0.7",
    )  # fmt: skip
    assert gdf.iloc[0]["name"] == "李强" and gdf.iloc[0]["id_number"] == ID_B
    assert gdf.iloc[0]["address"] == "璧山区八塘镇某村3组12号"
    assert [(r["actor"], r["feature_id"], r["reason"], r["channel"], r["ip"]) for r in store.access_log()] == [
        ("c1", "HH-1", "home visit", "web", "10.0.0.7")
    ]


@pytest.mark.parametrize(
    "reason", [None, "", "   ", "x", "xxxx", "看看看看", "abab", "1234", "----", "a 1 2 3", "家访"]
)
def test_a_reason_that_says_nothing_is_refused_and_nothing_is_logged(store, reason):
    with pytest.raises(AccessDeniedError, match=r"at least 4 characters, 2 or more of them Chinese characters or let"):
        read_households(
            store, role="caseworker", user="c1", towns=["500120001"], ids=["HH-1"], reveal=True, reason=reason,
            channel="web",
        )  # fmt: skip
    assert store.access_log() == []


@pytest.mark.parametrize(("reason", "kept"), [("入户走访", "入户走访"), (" 核实改造需求 ", "核实改造需求"),
                                              ("home visit", "home visit"), ("回访 11-23", "回访 11-23")])  # fmt: skip
def test_a_real_reason_is_accepted_stripped(reason, kept):
    assert check_reason(reason) == kept


@pytest.mark.parametrize("role", ["planner", "admin"])
def test_roles_without_full_view_cannot_reveal(store, role):
    with pytest.raises(AccessDeniedError, match="in full"):
        read_households(store, role=role, user="u", reveal=True, reason="curious")


@pytest.mark.parametrize("role", ["public", "bureau"])
def test_roles_without_household_access_are_refused(store, role):
    with pytest.raises(AccessDeniedError, match="may not see households"):
        read_households(store, role=role, user="u")


def test_public_counts_suppress_small_groups_and_their_complements(store):
    # towns 6 and 1 of a known district total 7: hiding only the 1 would give it away as 7 - 6
    counts = household_counts(store).set_index("town_code")
    assert counts["suppressed"].tolist() == [True, True] and counts["count"].tolist() == [None, None]
    villages = household_counts(store, by=("village_code",))
    assert villages["suppressed"].tolist() == [True, True]  # town 500120001's one village equals the town
    categories = household_counts(store, by=("disability_category",))
    assert categories["suppressed"].tolist() == [True, True]  # 4 + 3: both below 5
    with pytest.raises(ValueError, match="linked public tables"):
        household_counts(store, by=("town_code", "disability_category"))


# --- complementary suppression, attacked ---------------------------------------------------------
# A hand-made district: town A = a1 6 + a2 2, town B = b1 7 + b2 8, town C = c1 3; total 26;
# categories 4: 20, 1: 4, 2: 2. Primary: a2, c1, C, category 1 and 2. Then, by hand:
# district = A + B + C has one hidden town (C) -> hide the smallest visible one, A (8); now A and C
# stand for their hidden villages a2 + c1 = 5 >= 5 households in 2 cells: safe. Town A is hidden and
# has a hidden village (a2), C too (c1); categories 1 + 2 = 6 in 2 cells: safe.
_HAND = {
    ("500120001", "500120001001"): [4] * 6,
    ("500120001", "500120001002"): [1, 2],
    ("500120002", "500120002001"): [4] * 7,
    ("500120002", "500120002002"): [4] * 6 + [1, 1],
    ("500120100", "500120100201"): [1, 2, 4],
}


def _rows(cells: dict[tuple[str, str], list[int]]) -> pd.DataFrame:
    records = [(t, v, c) for (t, v), categories in cells.items() for c in categories]
    n = len(records)
    frame = _households().iloc[[i % 7 for i in range(n)]].reset_index(drop=True)
    frame["id"] = [f"HH-{i}" for i in range(n)]
    frame["town_code"], frame["village_code"], frame["disability_category"] = zip(*records, strict=True)
    frame["id_number"] = None  # one household per person: these copies are not the same people
    return frame


_COLUMNS = (("town", "town_code"), ("village", "village_code"), ("category", "disability_category"))


def _attack(store: Store, total: int) -> dict[tuple[str, str], tuple[float, float]]:
    """Attack what `household_counts` publishes."""
    return _attack_tables({by: household_counts(store, by=(column,)) for by, column in _COLUMNS}, total)


def _attack_tables(tables: dict[str, pd.DataFrame], total: int) -> dict[tuple[str, str], tuple[float, float]]:
    """Bound every hidden cell from the three published tables and the district total, by linear programming.

    The attacker knows: every published count; that a hidden count is at least 1 (empty groups are not
    listed); which town a village belongs to (its code starts with the town's); the district total.
    Returns each hidden cell's (min, max); max is inf when unbounded.
    """
    from scipy.optimize import linprog

    names: list[tuple[str, str]] = []
    known: dict[tuple[str, str], int] = {}
    for by, table in tables.items():
        for group, count, hidden in table.itertuples(index=False):
            if hidden:
                names.append((by, str(group)))
            else:
                known[(by, str(group))] = count
    index = {name: i for i, name in enumerate(names)}

    def equation(cells: list[tuple[str, str]], minus: tuple[str, str] | None, rhs: float) -> tuple[list, float]:
        row = [0.0] * len(names)
        for cell in cells:
            if cell in index:
                row[index[cell]] += 1
            else:
                rhs -= known[cell]
        if minus is not None:
            if minus in index:
                row[index[minus]] -= 1
            else:
                rhs += known[minus]
        return row, rhs

    towns = [("town", str(t)) for t in tables["town"]["town_code"]]
    equations = [
        equation(towns, None, total),
        equation([("category", str(c)) for c in tables["category"]["disability_category"]], None, total),
    ]
    for _, town in towns:
        villages = [("village", str(v)) for v in tables["village"]["village_code"] if str(v).startswith(town)]
        equations.append(equation(villages, ("town", town), 0.0))
    a_eq, b_eq = [e[0] for e in equations], [e[1] for e in equations]
    bounds = {}
    for name, i in index.items():
        objective = [0.0] * len(names)
        objective[i] = 1.0
        low = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=(1, None), method="highs")
        high = linprog([-x for x in objective], A_eq=a_eq, b_eq=b_eq, bounds=(1, None), method="highs")
        assert low.status == 0, low.message  # the published tables are consistent
        bounds[name] = (low.fun, float("inf") if high.status == 3 else -high.fun)
    return bounds


def _derivable(bounds: dict[tuple[str, str], tuple[float, float]]) -> list[tuple[str, str]]:
    return sorted(name for name, (low, high) in bounds.items() if high - low < 0.5)


@pytest.fixture
def hand_store(database_url):
    s = Store(database_url, cipher=FieldCipher(Fernet.generate_key()), blind_index=BlindIndex(Fernet.generate_key()))
    s.upsert_features("household", _rows(_HAND), user="loader")
    yield s
    s.close()


def test_complementary_suppression_on_the_hand_fixture(hand_store):
    cells = linked_count_cells(hand_store.features("household"))
    assert cells.counts[("district",)] == 26 and cells.counts[("town", "500120002")] == 15
    hidden = suppress_linked_counts(cells)
    assert sorted(hidden, key=str) == sorted(
        [("village", "500120001", "500120001002"), ("village", "500120100", "500120100201"),
         ("town", "500120001"), ("town", "500120100"), ("category", 1), ("category", 2)], key=str)  # fmt: skip
    towns = household_counts(hand_store).set_index("town_code")["count"].to_dict()
    assert towns == {"500120001": None, "500120002": 15, "500120100": None}
    bounds = _attack(hand_store, total=26)
    assert _derivable(bounds) == []
    # by hand: A + C = 26 - 15, A = 6 + a2, C = c1, so a2 + c1 = 5 with each at least 1; categories 1 + 2 = 6
    assert bounds[("village", "500120001002")] == bounds[("village", "500120100201")] == (1.0, 4.0)
    assert bounds[("town", "500120001")] == (7.0, 10.0) and bounds[("category", "1")] == (1.0, 5.0)


def test_primary_suppression_alone_would_give_hidden_cells_away(hand_store):
    """The attack works: with only counts below 5 hidden, a2 = A - a1 = 8 - 6 and C = c1 = 26 - 8 - 15."""
    households = hand_store.features("household")
    tables = {}
    for by, column in _COLUMNS:
        n = households.groupby(column).size()
        tables[by] = pd.DataFrame({column: n.index, "count": n.where(n >= 5), "suppressed": n < 5})
    bounds = _attack_tables(tables, total=26)
    assert _derivable(bounds) == [("town", "500120100"), ("village", "500120001002"), ("village", "500120100201")]
    assert bounds[("village", "500120001002")] == (2.0, 2.0) and bounds[("town", "500120100")] == (3.0, 3.0)


def test_complementary_suppression_on_the_demo_households(database_url):
    from layers.district import load_district

    demo = pd.read_csv(load_district().demo_dir / "household.csv", dtype=str)
    s = Store(database_url, cipher=FieldCipher(Fernet.generate_key()), blind_index=BlindIndex(Fernet.generate_key()))
    try:
        s.upsert_features("household", demo, user="loader")
        bounds = _attack(s, total=len(demo))
        villages = household_counts(s, by=("village_code",))
    finally:
        s.close()
    assert _derivable(bounds) == []
    small = demo.groupby("village_code").size()
    assert set(small[small < 5].index) <= set(villages.loc[villages["suppressed"], "village_code"])
    assert len(bounds) >= int((small < 5).sum())


@pytest.mark.parametrize("seed", range(12))
def test_no_hidden_cell_is_derivable_in_random_districts(seed):
    """Random districts of 2-6 towns, 1-8 villages each, village sizes 1-12, 3 categories: attack them all."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(int(rng.integers(2, 7))):
        town = f"500120{t:03d}"
        for v in range(int(rng.integers(1, 9))):
            size = int(rng.choice([1, 1, 2, 3, 4, 5, 6, 8, 12]))
            rows += [(town, f"{town}{v:03d}", int(rng.choice([1, 4, 7], p=[0.2, 0.7, 0.1]))) for _ in range(size)]
    households = pd.DataFrame(rows, columns=["town_code", "village_code", "disability_category"])
    if len(households) < 5:
        return
    tables = {by: public_count_table(households, by=(column,)) for by, column in _COLUMNS}
    assert _derivable(_attack_tables(tables, total=len(households))) == []


def test_roles_are_named_once():
    assert privacy.ROLES == ("public", "caseworker", "bureau", "planner", "admin")
    assert privacy.STAFF_ROLES == privacy.ROLES[1:]
    assert users.STAFF_ROLES is privacy.STAFF_ROLES
    assert users.TOWN_SCOPED_ROLES == {privacy.CASEWORKER}
