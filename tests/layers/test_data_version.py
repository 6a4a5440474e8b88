"""`Store.data_version`: changes with every write, seen at once by other stores and threads."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from cryptography.fernet import Fernet

from layers.crypto import FieldCipher
from layers.store import Store


def _station(i: int, status: str = "open") -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [f"RS-{i}"], "town_code": ["500120001"], "village_code": ["500120001001"], "name": [f"康复站{i}"],
         "address": ["璧山区璧城街道"], "lon": [106.22], "lat": [29.59], "datum": ["wgs84"], "status": [status]}
    )  # fmt: skip


@pytest.fixture
def stores(database_url):
    key = Fernet.generate_key()
    writer, reader = Store(database_url, cipher=FieldCipher(key)), Store(database_url, cipher=FieldCipher(key))
    yield writer, reader
    writer.close()
    reader.close()


def test_every_write_moves_the_version_and_another_store_sees_it_at_once(stores):
    writer, reader = stores
    assert reader.data_version() == 0
    writer.upsert_features("rehab_station", _station(1), user="t")
    assert reader.data_version() == writer.data_version() == 1  # one history row: seq 1
    writer.upsert_features("rehab_station", _station(2), user="t")
    assert reader.data_version() == 2
    writer.upsert_features("rehab_station", _station(2, "closed"), user="t")  # an update appends history too
    assert reader.data_version() == 3


def test_each_thread_reads_the_newest_version_on_its_own_connection(stores):
    writer, reader = stores
    writer.upsert_features("rehab_station", _station(1), user="t")
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(reader.data_version()))
    thread.start()
    thread.join()
    writer.upsert_features("rehab_station", _station(2), user="t")
    thread = threading.Thread(target=lambda: seen.append(reader.data_version()))
    thread.start()
    thread.join()
    assert seen == [1, 2]
    assert reader.data_version() == 2


def test_a_broken_connection_is_replaced_and_the_read_retried(stores):
    writer, reader = stores
    writer.upsert_features("rehab_station", _station(1), user="t")
    assert reader.data_version() == 1
    reader._probes._local.connection.close()  # e.g. the server closed it
    assert reader.data_version() == 1
