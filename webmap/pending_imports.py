"""Keep an uploaded file between its dry run and its confirmation: server-side, by a random token, expiring.

The file waits in ``<folder>/<token><suffix>`` (never under the uploader's file name) beside
``<token>.json``: who uploaded it, when, its SHA-256, and the options of the dry run. The token
is the only thing that travels (a hidden form field and the session); it carries no personal data.
`PendingImports.take` hands a file out once: the metadata is renamed away first (atomic), so a
second confirmation of the same token, a token of another user, an expired token or a file changed
on disk since its dry run is refused, and the confirmed import is exactly the file that was checked.

The import pages (households, toilets) use it one way: `app_pending_imports` reads the folder and the
maximum age from the app's config, `hold_for_confirmation` saves an upload in place of the user's
earlier one, runs its dry run and keeps it (its token in the session) only when that is clean, and
`take_pending` hands the file out only for the token the session holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from flask import current_app, session
from flask_babel import gettext

if TYPE_CHECKING:
    from collections.abc import Callable

    from werkzeug.datastructures import FileStorage

#: What the import pages take: an XLSX workbook, or a text table (CSV; TXT, as systems export tab-separated ones).
UPLOAD_SUFFIXES = (".xlsx", ".csv", ".txt")
#: A token as `PendingImports.save` makes it (``secrets.token_urlsafe(24)``: 32 characters).
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
_SUFFIX_RE = re.compile(r"^\.[a-z0-9]{1,8}$")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PendingFile:
    """A file handed out by `PendingImports.take`.

    Attributes
    ----------
    path
        Where the file is; the caller deletes it with `PendingImports.discard` after the import.
    options
        What `PendingImports.save` was given (the dry run's settings and the file's name).
    """

    path: Path
    options: dict[str, Any]


class PendingImports:
    """Files waiting for confirmation in one folder, each for at most ``max_age_s`` seconds.

    Parameters
    ----------
    folder
        Where the files wait (made on first use; under the instance folder).
    max_age_s
        Seconds after which a file is refused and removed.
    """

    def __init__(self, folder: Path, max_age_s: float) -> None:
        self.folder = folder
        self.max_age_s = max_age_s

    def save(self, stream: IO[bytes], suffix: str, *, user: str, options: dict[str, Any]) -> str:
        """Store ``stream`` under a new random token; return the token.

        Expired files of every user are removed first.
        """
        if not _SUFFIX_RE.match(suffix):
            msg = f"`suffix` must be like '.xlsx'; got {suffix!r}."
            raise ValueError(msg)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.purge()
        token = secrets.token_urlsafe(24)
        path = self.folder / f"{token}{suffix}"
        digest = hashlib.sha256()
        with path.open("xb") as out:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        meta = {"user": user, "suffix": suffix, "sha256": digest.hexdigest(), "saved_at": time.time(),
                "options": options}  # fmt: skip
        self._meta(token).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return token

    def path(self, token: str, *, user: str) -> Path | None:
        """Return the waiting file of ``token`` if ``user`` uploaded it and it has not expired, else None."""
        meta = self._read(self._meta(token)) if TOKEN_RE.match(token or "") else None
        if meta is None or meta.get("user") != user or self._expired(meta):
            return None
        return self.folder / f"{token}{meta['suffix']}"

    def take(self, token: str, *, user: str) -> PendingFile | None:
        """Hand out the file of ``token`` once; None if unknown, taken, expired, another user's or changed."""
        if not TOKEN_RE.match(token or ""):
            return None
        meta_path, taken = self._meta(token), self.folder / f"{token}.taken"
        try:
            os.replace(meta_path, taken)  # atomic: of two confirmations, one wins
        except FileNotFoundError:
            return None
        meta = self._read(taken)
        taken.unlink(missing_ok=True)
        if meta is None:
            return None
        path = self.folder / f"{token}{meta['suffix']}"
        if meta.get("user") != user or self._expired(meta) or _sha256(path) != meta.get("sha256"):
            path.unlink(missing_ok=True)
            return None
        return PendingFile(path, dict(meta.get("options") or {}))

    def discard(self, token: str) -> None:
        """Remove the file of ``token`` and its metadata (nothing happens for an unknown token)."""
        if not TOKEN_RE.match(token or ""):
            return
        for path in self.folder.glob(f"{token}.*"):
            path.unlink(missing_ok=True)

    def purge(self) -> None:
        """Remove every file older than ``max_age_s``."""
        if not self.folder.is_dir():
            return
        cutoff = time.time() - self.max_age_s
        for path in self.folder.iterdir():
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    def _meta(self, token: str) -> Path:
        return self.folder / f"{token}.json"

    def _expired(self, meta: dict[str, Any]) -> bool:
        saved_at = meta.get("saved_at")
        return not isinstance(saved_at, int | float) or time.time() - saved_at > self.max_age_s

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or not _SUFFIX_RE.match(str(meta.get("suffix", ""))):
            return None
        return meta


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def app_pending_imports(folder_key: str, max_age_key: str, *, default_folder: str) -> PendingImports:
    """Return the current app's files waiting for confirmation, as its config sets them.

    Parameters
    ----------
    folder_key
        The config key of the folder (e.g. ``"TOILET_IMPORT_DIR"``); None in the config means
        ``<instance>/<default_folder>``.
    max_age_key
        The config key of the maximum age in seconds (e.g. ``"TOILET_IMPORT_MAX_AGE_S"``).
    default_folder
        The folder's name under the instance folder when the config leaves it None.
    """
    config = current_app.config
    folder = Path(config[folder_key] or Path(current_app.instance_path) / default_folder)
    return PendingImports(folder, float(config[max_age_key]))


def hold_for_confirmation(
    pending: PendingImports,
    session_key: str,
    stream: IO[bytes],
    suffix: str,
    *,
    user: str,
    options: dict[str, Any],
    dry_run: Callable[[Path], Any],
) -> tuple[Any, str | None]:
    """Save an upload, run its dry run, and keep it for confirmation only if the dry run found no problem.

    The user's earlier file (the token the session holds under ``session_key``) is dropped first: a new
    upload replaces it. ``dry_run`` gets the saved file's path and returns an import outcome (with
    ``ok``) or None when the file cannot be read. A clean file's token goes into the session; any other
    file is removed at once.

    Returns
    -------
    tuple
        The dry run's outcome (None if it could not run) and the token to confirm (None if not kept).
    """
    earlier = session.pop(session_key, None)
    if isinstance(earlier, str) and pending.path(earlier, user=user) is not None:
        pending.discard(earlier)
    token = pending.save(stream, suffix, user=user, options=options)
    path = pending.path(token, user=user)
    outcome = dry_run(path) if path is not None else None
    if outcome is None or not outcome.ok:
        pending.discard(token)
        return outcome, None
    session[session_key] = token
    return outcome, token


def take_pending(pending: PendingImports, session_key: str, token: str, *, user: str) -> PendingFile | None:
    """Hand out the file of ``token`` once if the session holds that token under ``session_key``.

    The session forgets the token when it matches; any other token (forged, stale, another user's)
    is refused and leaves the session as it was. The caller discards the file after the import.
    """
    if not token or session.get(session_key) != token:
        return None
    del session[session_key]
    return pending.take(token, user=user)


def upload_suffix(upload: FileStorage | None) -> tuple[str, str | None]:
    """Return an upload's file suffix (lower case), and the error to show when it is none the pages take.

    The error, in the user's language, says what to choose: there was no file, or its suffix is not one
    of `UPLOAD_SUFFIXES`.
    """
    if upload is None or not upload.filename:
        return "", gettext("请选择要上传的文件（XLSX、CSV 或 TXT）。")
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        shown = repr(suffix or gettext("（无）"))
        return suffix, gettext("只能上传 XLSX、CSV 或 TXT 文件；收到的文件扩展名是 %(suffix)s。", suffix=shown)
    return suffix, None
