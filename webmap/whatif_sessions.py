"""The planner's open what-if sessions: in this process's memory, one owner each, bounded in number and age.

A what-if session (``analyses.whatif.WhatIfSession`` with the page's choices) holds the snapped demand and
the nearest-facility arrays, a few megabytes on Bishan, so it is kept on the server and the page names it
by a random id (``secrets.token_urlsafe``, 128 bits). Only the account that opened a session can read or
edit it; another account's id is answered like an unknown one.

Bounds (app config, defaults here): a session unused for ``WHATIF_IDLE_S`` seconds is dropped; an
account keeps at most ``WHATIF_MAX_PER_USER`` sessions and the process at most ``WHATIF_MAX_SESSIONS``;
opening one more drops the least recently used (the account's own first). Sessions live in one
process: they end when the server restarts, and a server run as several processes needs sticky
sessions. A planner who wants to keep a what-if saves it as a scenario (a stored result).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

if TYPE_CHECKING:
    from analyses.whatif import WhatIfSession

#: Settings with their defaults.
DEFAULTS = {"WHATIF_IDLE_S": 2 * 3600, "WHATIF_MAX_PER_USER": 3, "WHATIF_MAX_SESSIONS": 12}
_EXTENSION = "accessplan_whatif_sessions"


@dataclass
class OpenWhatIf:
    """One open what-if: its engine, owner, the page's choices and what the page shows beside the numbers.

    Attributes
    ----------
    id
        The random id the page uses.
    owner
        The account name that opened it.
    engine
        The ``WhatIfSession``.
    choices
        The start form's values (facilities or siting job, demand, profile, threshold, grid spacing).
    sites
        Per site id: ``name`` (existing facilities), ``place`` (``{"zh": ..., "en": ...}``) and ``existing``.
    data_versions
        The versions of the roads, facilities and demand read.
    next_number
        The number of the next planned site (``P1``, ``P2`` ...).
    covered
        The demand points' covered flags the page was last sent (to send only what changed).
    used_at
        When it was last opened or edited (``time.monotonic``).
    lock
        Held while an edit runs (two quick clicks edit one after the other).
    """

    id: str
    owner: str
    engine: WhatIfSession
    choices: dict[str, Any]
    sites: dict[str, dict[str, Any]]
    data_versions: dict[str, Any]
    next_number: int = 1
    covered: Any = None
    used_at: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


class WhatIfSessions:
    """The open what-if sessions of one app (see the module's docstring for the bounds)."""

    def __init__(self, *, idle_s: float, max_per_user: int, max_sessions: int) -> None:
        self.idle_s, self.max_per_user, self.max_sessions = float(idle_s), int(max_per_user), int(max_sessions)
        self._open: dict[str, OpenWhatIf] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Return the number of open sessions (expired ones included until the next call drops them)."""
        return len(self._open)

    def add(self, owner: str, engine: WhatIfSession, **details: Any) -> OpenWhatIf:
        """Keep a new session of ``owner``; drop expired ones and, over a bound, the least recently used."""
        opened = OpenWhatIf(id=secrets.token_urlsafe(16), owner=owner, engine=engine, **details)
        with self._lock:
            self._drop_expired()
            own = sorted((s for s in self._open.values() if s.owner == owner), key=lambda s: s.used_at)
            while own and len(own) >= self.max_per_user:
                del self._open[own.pop(0).id]
            while self._open and len(self._open) >= self.max_sessions:
                del self._open[min(self._open.values(), key=lambda s: s.used_at).id]
            self._open[opened.id] = opened
        return opened

    def get(self, session_id: str, owner: str) -> OpenWhatIf | None:
        """Return ``owner``'s open session ``session_id`` (marked used), None if unknown, expired or another's."""
        with self._lock:
            self._drop_expired()
            found = self._open.get(session_id)
            if found is None or found.owner != owner:
                return None
            found.used_at = time.monotonic()
            return found

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for session_id in [i for i, s in self._open.items() if now - s.used_at > self.idle_s]:
            del self._open[session_id]


def init_app(app: Flask) -> None:
    """Give ``app`` its (empty) store of what-if sessions, bounded by its config."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    app.extensions[_EXTENSION] = WhatIfSessions(idle_s=app.config["WHATIF_IDLE_S"],
                                                max_per_user=app.config["WHATIF_MAX_PER_USER"],
                                                max_sessions=app.config["WHATIF_MAX_SESSIONS"])  # fmt: skip


def sessions() -> WhatIfSessions:
    """Return the current app's what-if sessions."""
    return current_app.extensions[_EXTENSION]
