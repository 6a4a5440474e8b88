"""Encrypt households' personal fields at rest (Fernet: AES-128-CBC with HMAC-SHA256)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from layers.errors import EncryptionKeyError

logger = logging.getLogger(__name__)

KEY_ENV_VAR = "ACCESSPLAN_ENCRYPTION_KEY"


class FieldCipher:
    """Encrypt and decrypt a row's personal fields as one token.

    Parameters
    ----------
    key
        A Fernet key (32 url-safe base64-encoded bytes).
    """

    def __init__(self, key: bytes | str) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            msg = "The encryption key is not a valid Fernet key (32 url-safe base64-encoded bytes)."
            raise EncryptionKeyError(msg) from None

    def encrypt(self, fields: dict[str, Any]) -> str:
        """Return one token holding ``fields`` (JSON-serialisable values)."""
        payload = json.dumps(fields, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return self._fernet.encrypt(payload).decode("ascii")

    def decrypt(self, token: str) -> dict[str, Any]:
        """Return the fields held by ``token``.

        Raises
        ------
        EncryptionKeyError
            If the token was made with another key (or was altered).
        """
        try:
            return json.loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken:
            msg = "A stored personal field cannot be decrypted: the encryption key differs from the one used."
            raise EncryptionKeyError(msg) from None


def load_or_create_key(path: str | Path, *, environ: dict[str, str] | None = None) -> bytes:
    """Return the encryption key: from ``ACCESSPLAN_ENCRYPTION_KEY``, else ``path``, else a new one.

    A new key is written to ``path`` readable by its owner only (0600). The key is never logged.
    """
    environ = os.environ if environ is None else environ
    if environ.get(KEY_ENV_VAR):
        return environ[KEY_ENV_VAR].encode("ascii")
    path = Path(path)
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    logger.info("Generated a new encryption key in %s (mode 0600); back it up: data need it", path)
    return key
