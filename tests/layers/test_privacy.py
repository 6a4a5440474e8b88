from __future__ import annotations

import pandas as pd
import pytest
from cryptography.fernet import Fernet

from layers import privacy, users
from layers.crypto import FieldCipher
from layers.errors import AccessDeniedError
from layers.privacy import household_counts, read_households
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
            "address": ["璧城街道"] * n,
            "lon": [106.22] * n,
            "lat": [29.59] * n,
            "datum": ["wgs84"] * n,
            "status": ["surveyed"] * n,
            "id_number": [ID_A, ID_B] * 3 + [ID_A],
            "certificate_number": [ID_A + "12", ID_B + "41"] * 3 + [ID_A + "11"],
            "disability_category": [1, 4] * 3 + [1],
            "disability_grade": [2, 1] * 3 + [1],
            "phone": ["13624947846"] * n,
        }
    )


@pytest.fixture
def store(database_url):
    s = Store(database_url, cipher=FieldCipher(Fernet.generate_key()))
    s.upsert_features("household", _households(), user="loader")
    yield s
    s.close()


def test_planners_see_masked_households_and_nothing_is_logged(store):
    gdf = read_households(store, role="planner", user="p1")
    first = gdf.set_index("id").loc["HH-0"]
    assert first["name"] == "孙*"
    assert first["id_number"] == "500227********6803"
    assert first["certificate_number"] == "500227********0312"
    assert first["phone"] == "136****7846"
    assert len(gdf) == 7 and store.access_log() == []


def test_caseworkers_are_scoped_to_their_towns(store):
    gdf = read_households(store, role="caseworker", user="c1", towns=["500120100"])
    assert gdf["id"].tolist() == ["HH-6"]
    with pytest.raises(AccessDeniedError, match="pass `towns`"):
        read_households(store, role="caseworker", user="c1")


def test_a_full_view_needs_a_reason_and_is_logged(store):
    with pytest.raises(AccessDeniedError, match="needs a `reason`"):
        read_households(store, role="caseworker", user="c1", towns=["500120001"], ids=["HH-1"], reveal=True)
    gdf = read_households(
        store, role="caseworker", user="c1", towns=["500120001"], ids=["HH-1"], reveal=True, reason="home visit"
    )
    assert gdf.iloc[0]["name"] == "李强" and gdf.iloc[0]["id_number"] == ID_B
    assert [(r["actor"], r["feature_id"], r["reason"]) for r in store.access_log()] == [("c1", "HH-1", "home visit")]


@pytest.mark.parametrize("role", ["planner", "admin"])
def test_roles_without_full_view_cannot_reveal(store, role):
    with pytest.raises(AccessDeniedError, match="in full"):
        read_households(store, role=role, user="u", reveal=True, reason="curious")


@pytest.mark.parametrize("role", ["public", "bureau"])
def test_roles_without_household_access_are_refused(store, role):
    with pytest.raises(AccessDeniedError, match="may not see households"):
        read_households(store, role=role, user="u")


def test_public_counts_suppress_small_groups(store):
    counts = household_counts(store).set_index("town_code")
    assert counts.loc["500120001", "count"] == 6 and not counts.loc["500120001", "suppressed"]
    assert counts.loc["500120100", "count"] is None and counts.loc["500120100", "suppressed"]
    by_category = household_counts(store, by=("town_code", "disability_category"))
    assert by_category["suppressed"].tolist() == [True, True, True]  # 3 + 3 + 1: all below 5


def test_roles_are_named_once():
    assert privacy.ROLES == ("public", "caseworker", "bureau", "planner", "admin")
    assert privacy.STAFF_ROLES == privacy.ROLES[1:]
    assert users.STAFF_ROLES is privacy.STAFF_ROLES
    assert users.TOWN_SCOPED_ROLES == {privacy.CASEWORKER}
