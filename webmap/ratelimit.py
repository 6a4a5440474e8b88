"""Limit how fast anonymous clients may call the JSON API: one token bucket per IP address, in process.

Each anonymous client (by ``request.remote_addr``; behind a reverse proxy, wrap the app in
``werkzeug.middleware.proxy_fix.ProxyFix`` so this is the client's address) gets a bucket holding
``API_ANON_BURST`` tokens, refilled at ``API_ANON_RATE_PER_S`` tokens a second. Every ``/api/``
request takes one; an empty bucket answers 429 with ``Retry-After`` (whole seconds) and the API's JSON
error body, in the user's language. Signed-in staff are not limited here (their login is). Set
``API_ANON_RATE_PER_S`` to 0 or None to switch the limit off.

The buckets live in this process (a dict behind one lock): with several worker processes each has
its own, so the effective limit is per worker. Idle, full buckets are dropped when more than
``_MAX_BUCKETS`` addresses are held.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import current_app, request
from flask_babel import gettext
from flask_login import current_user

from webmap.security import is_api_request, json_error

if TYPE_CHECKING:
    from flask import Flask, Response

#: Settings with their defaults (the instance config.py may change them).
DEFAULTS = {
    "API_ANON_RATE_PER_S": 5.0,  # sustained requests a second per anonymous IP address
    "API_ANON_BURST": 30,  # requests an anonymous IP address may make at once
}
_LIMITER_KEY = "accessplan_api_rate_limiter"
_MAX_BUCKETS = 10_000


@dataclass
class TokenBucketLimiter:
    """Token buckets by key: ``take(key)`` spends one token or says how long to wait.

    Attributes
    ----------
    rate_per_s
        Tokens added to a bucket per second.
    burst
        Size of a bucket (and its content when first seen).
    clock
        Monotonic time in seconds (``time.monotonic``; tests pass their own).
    """

    rate_per_s: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, key: str) -> float:
        """Spend one token of ``key``'s bucket; return 0 if allowed, else the seconds until one is there."""
        with self._lock:
            now = self.clock()
            tokens, seen = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - seen) * self.rate_per_s)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > _MAX_BUCKETS:
                    self._drop_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s

    def _drop_full(self, now: float) -> None:
        full_after_s = self.burst / self.rate_per_s
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after_s}


def init_app(app: Flask) -> None:
    """Read the settings and limit anonymous ``/api/`` requests of ``app``."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    app.before_request(_limit_anonymous_api)


def _limit_anonymous_api() -> tuple[Response, int] | None:
    if not is_api_request() or current_user.is_authenticated:
        return None
    limiter = anonymous_limiter()
    if limiter is None:
        return None
    wait_s = limiter.take(request.remote_addr or "-")
    if wait_s <= 0:
        return None
    retry_after_s = max(1, math.ceil(wait_s))
    message = gettext(
        "请求过于频繁：每个地址每秒最多 %(rate)s 次（可连续 %(burst)d 次）。请 %(seconds)d 秒后再试。",
        rate=f"{limiter.rate_per_s:g}",
        burst=limiter.burst,
        seconds=retry_after_s,
    )
    response, status = json_error(429, message)
    response.headers["Retry-After"] = str(retry_after_s)
    return response, status


def anonymous_limiter(key: str = _LIMITER_KEY) -> TokenBucketLimiter | None:
    """Return the app's limiter of anonymous clients under ``key``, or None when the limit is off.

    It is made on first use from the API's settings (``API_ANON_RATE_PER_S``, ``API_ANON_BURST``).

    The API's own limiter is the default; a page with its own budget (``/near-me``) passes its own key.
    """
    limiter = current_app.extensions.get(key)
    if limiter is None:
        rate = current_app.config.get("API_ANON_RATE_PER_S")
        if not rate:
            return None
        limiter = current_app.extensions.setdefault(
            key, TokenBucketLimiter(float(rate), int(current_app.config["API_ANON_BURST"]))
        )
    return limiter
