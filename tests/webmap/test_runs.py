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
