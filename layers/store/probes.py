"""The data-version probe: the newest history ``seq``, read on one autocommit connection per thread.

`Store.data_version` asks it on every public request, so it bypasses the connection pool (see
`VersionProbes`). Another cheap read asked that often would go here.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from layers.store.database import sqlite_pragmas

logger = logging.getLogger(__name__)


class VersionProbes:
    """One autocommit DBAPI connection per thread (and process) that only reads the newest history ``seq``.

    Autocommit means every read sees the latest committed data and no transaction stays open between
    requests (no locks held, nothing blocks a migration). A connection that fails (server restarted,
    database recreated) is dropped and the read retried once on a new one.
    """

    _SQL = "SELECT max(seq) FROM history"

    def __init__(self, url: str) -> None:
        self._url = url
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        self._local = threading.local()

    def max_history_seq(self) -> int:
        """Return the newest history ``seq`` (0 when there is none)."""
        for attempt in (1, 2):
            cursor = self._cursor()
            try:
                cursor.execute(self._SQL)
                return int(cursor.fetchone()[0] or 0)
            except Exception:
                self._drop()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close this thread's connection and dispose of the engine."""
        self._drop()
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()

    def _cursor(self) -> Any:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # none yet in this thread, or inherited by a fork
            with self._lock:
                if self._engine is None:
                    self._engine = sa.create_engine(self._url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
                    if self._engine.dialect.name == "sqlite":
                        event.listen(self._engine, "connect", sqlite_pragmas)
                engine = self._engine
            local.connection = engine.raw_connection()
            local.cursor = local.connection.cursor()
            local.pid = os.getpid()
        return local.cursor

    def _drop(self) -> None:
        local = self._local
        connection = getattr(local, "connection", None)
        mine = getattr(local, "pid", None) == os.getpid()  # a forked child must not close its parent's
        local.connection = local.cursor = local.pid = None
        if connection is not None and mine:
            try:
                connection.close()
            except Exception:  # already broken: nothing left to release
                logger.debug("Closing a broken data-version connection failed", exc_info=True)
