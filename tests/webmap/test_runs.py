from __future__ import annotations

import threading

from cryptography.fernet import Fernet

from webmap import create_app
from webmap.runs import app_placer, warm_app_placer


def _app(tmp_path, app_cache_dir):
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite",
            "CACHE_DIR": str(app_cache_dir),
            "ENCRYPTION_KEY": Fernet.generate_key(),
        }
    )


def test_warming_prepares_the_network_that_requests_then_reuse(tmp_path, app_cache_dir, bishan_net):
    app = _app(tmp_path, app_cache_dir)
    assert app.extensions.get("accessplan_placer") is None
    warm_app_placer(app).join(timeout=120)
    warmed = app.extensions["accessplan_placer"]
    assert warmed.net.n_nodes == bishan_net.n_nodes
    with app.test_request_context("/toilets/"):
        assert app_placer() is warmed


def test_threads_asking_together_share_one_preparation(tmp_path, app_cache_dir, bishan_net):
    app = _app(tmp_path, app_cache_dir)
    got, barrier = [], threading.Barrier(4)

    def ask() -> None:
        with app.app_context():
            barrier.wait()
            got.append(app_placer())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(got) == 4
    assert len({id(placer) for placer in got}) == 1


def test_household_demand_becomes_planning_points_and_its_read_is_logged_with_the_channel(tmp_path):
    import geopandas as gpd
    from cryptography.fernet import Fernet

    from layers.crypto import BlindIndex, FieldCipher
    from layers.store import Store
    from webmap.runs import protect_household_demand

    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}", cipher=FieldCipher(Fernet.generate_key()),
                  blind_index=BlindIndex(Fernet.generate_key()))  # fmt: skip
    try:
        demand = gpd.GeoDataFrame(
            {"id": ["HH-1"], "town_code": ["500120001"], "village_code": ["500120001001"], "status": ["surveyed"],
             "lon": [106.2234567], "lat": [29.5915], "name": ["孙敏"], "address": ["石家庄街268号"]},
            geometry=gpd.points_from_xy([106.2234567], [29.5915]), crs="EPSG:4326",
        )  # fmt: skip
        out = protect_household_demand("household", demand, store=store, user="p1", channel="cli")
        assert list(out.columns) == ["id", "town_code", "village_code", "status", "lon", "lat", "geometry"]
        assert (out.loc[0, "lon"], out.loc[0, "lat"]) == (106.223, 29.592)  # 0.001° grid
        (entry,) = store.access_log()
        assert (entry["actor"], entry["feature_id"], entry["channel"]) == ("p1", "*", "cli")
        assert entry["reason"].startswith("bulk read of 1 rows")
        assert protect_household_demand("village", demand, store=store, user="p1") is demand  # not households
        assert len(store.access_log()) == 1
    finally:
        store.close()
