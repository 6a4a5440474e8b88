"""The store records its district (migration 0006_district) and refuses another district (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from layers.crypto import BlindIndex, FieldCipher
from layers.errors import DistrictMismatchError
from layers.store import Store


def _open(url: str, owner_url: str) -> Store:
    key = Fernet.generate_key()
    return Store(url, cipher=FieldCipher(key), blind_index=BlindIndex(key), migration_url=owner_url)


def test_the_first_district_claims_the_store_and_another_is_refused(database_url, owner_url):
    store = _open(database_url, owner_url)
    try:
        assert store.district() is None  # a new store belongs to no district yet
        store.bind_district("500120", "璧山区")
        store.bind_district("500120", "璧山区")  # the same district again: fine
        assert store.district() == ("500120", "璧山区")
        with pytest.raises(DistrictMismatchError) as raised:
            store.bind_district("500106", "沙坪坝区")
        message = str(raised.value)
        assert message.startswith("此数据库属于璧山区（500120），不能存放或分析沙坪坝区（500106）的数据")
        assert "This store belongs to 璧山区 (500120) and refuses the data and analyses of 沙坪坝区 (500106)" in message
        assert store.district() == ("500120", "璧山区")  # the refusal changed nothing
    finally:
        store.close()
    reopened = _open(database_url, owner_url)  # the record outlives the process
    try:
        with pytest.raises(DistrictMismatchError):
            reopened.bind_district("500106", "沙坪坝区")
    finally:
        reopened.close()


def test_the_store_holds_at_most_one_district_row(database_url, owner_url):
    store = _open(database_url, owner_url)
    try:
        store.bind_district("500120", "璧山区")
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO store_district (slot, code, name, recorded_at) "
                                 "VALUES (2, '500106', '沙坪坝区', CURRENT_TIMESTAMP)"))  # fmt: skip
    finally:
        store.close()
