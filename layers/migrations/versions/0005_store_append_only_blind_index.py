"""Refuse rewrites of the history and access log, log IP and channel, index ID numbers, encrypt addresses.

* History and access log: on SQLite a BEFORE INSERT trigger refuses a row whose ``seq`` exists
  (``INSERT OR REPLACE`` / ``REPLACE`` would otherwise delete the old row without firing the DELETE
  trigger); on PostgreSQL a BEFORE TRUNCATE trigger joins the UPDATE/DELETE one. The app's role gets
  INSERT/SELECT only on these tables (``layers.store.grant_app_role``, after every upgrade).
* ``access_log`` gets ``ip`` and ``channel`` (web, api, cli); rows from before stay NULL.
* ``features.id_number_index``: HMAC-SHA256 of a household's 身份证号 under the blind-index key, with
  a unique index (one household per person; lookup by ID number is one indexed query).
* Households' ``address`` moves into the encrypted ``personal`` token, in ``features`` and in the
  history snapshots (the snapshots' meaning is kept: the address is in their token instead).

Existing households need both keys, passed by ``layers.store.upgrade_schema`` (``cipher``,
``blind_index`` in the Alembic config attributes).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from layers.errors import EncryptionKeyError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_APPEND_ONLY = ("history", "access_log")
_HOUSEHOLD = "household"


def upgrade() -> None:
    """Apply this revision (the stored households are read and checked first: no DDL runs if they fail)."""
    bind = op.get_bind()
    households = _households_encrypted(bind)
    postgres = bind.dialect.name == "postgresql"
    for table in _APPEND_ONLY:
        if postgres:
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION accessplan_append_only()"
            )
        else:
            op.execute(
                f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
                f"WHEN EXISTS (SELECT 1 FROM {table} WHERE seq = NEW.seq) "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    op.add_column("access_log", sa.Column("ip", sa.String(64)))
    op.add_column("access_log", sa.Column("channel", sa.String(8)))
    op.add_column("features", sa.Column("id_number_index", sa.String(64)))
    if households:
        bind.execute(
            sa.text(
                "UPDATE features SET address = NULL, personal = :token, id_number_index = :digest "
                "WHERE layer = :layer AND id = :id"
            ),
            households,
        )
        _encrypt_history_addresses(bind, context.config.attributes["cipher"])
    op.create_index("ux_features_id_number_index", "features", ["id_number_index"], unique=True)


def _households_encrypted(bind: sa.Connection) -> list[dict[str, Any]]:
    """Return the new token and ID-number digest of every stored household (their address moved into the token).

    Raises
    ------
    EncryptionKeyError
        If there are households and the upgrade was not given both keys.
    ValueError
        If two households have the same ID number (named by household id, not by number).
    """
    rows = bind.execute(
        sa.text("SELECT id, address, personal FROM features WHERE layer = :layer ORDER BY id"), {"layer": _HOUSEHOLD}
    ).all()
    if not rows:
        return []
    attributes = context.config.attributes
    cipher, blind_index = attributes.get("cipher"), attributes.get("blind_index")
    if cipher is None or blind_index is None:
        msg = (
            f"Migration 0005 must encrypt the addresses of {len(rows)} stored households and index their ID "
            "numbers: open the store with both keys (the encryption key and the blind-index key)."
        )
        raise EncryptionKeyError(msg)
    owner: dict[str, str] = {}
    out = []
    for fid, address, token in rows:
        fields = cipher.decrypt(token) if token is not None else {}
        id_number = fields.get("id_number")
        digest = None if id_number is None else blind_index.digest(id_number)
        if digest is not None and digest in owner:
            msg = (
                f"Households {owner[digest]!r} and {fid!r} have the same 身份证号: keep one household per person "
                "(edit or remove one), then run the upgrade again."
            )
            raise ValueError(msg)
        if digest is not None:
            owner[digest] = fid
        fields.setdefault("address", address)
        out.append({"token": cipher.encrypt(fields), "digest": digest, "layer": _HOUSEHOLD, "id": fid})
    return out


def _encrypt_history_addresses(bind: sa.Connection, cipher: Any) -> None:
    """Replace the clear address of households' history snapshots by a token that holds it.

    The history is append-only for the app; this one-off rewrite by the owner suspends the triggers
    for its own statements only and restores them before the migration commits.
    """
    postgres = bind.dialect.name == "postgresql"
    cast = "CAST(:{} AS JSON)" if postgres else ":{}"
    found = bind.execute(
        sa.text("SELECT seq, before, after FROM history WHERE layer = :layer"), {"layer": _HOUSEHOLD}
    ).all()
    changes = []
    for seq, before, after in found:
        new = [_snapshot_without_address(s, cipher) for s in (before, after)]
        if any(n is not None for n in new):
            changes.append({"seq": seq, "before": new[0] or _text(before), "after": new[1] or _text(after)})
    if not changes:
        return
    if postgres:
        op.execute("ALTER TABLE history DISABLE TRIGGER history_append_only")
    else:
        op.execute("DROP TRIGGER history_no_update")
    bind.execute(
        sa.text(
            f"UPDATE history SET before = {cast.format('before')}, after = {cast.format('after')} WHERE seq = :seq"
        ),
        changes,
    )
    if postgres:
        op.execute("ALTER TABLE history ENABLE TRIGGER history_append_only")
    else:
        op.execute(
            "CREATE TRIGGER history_no_update BEFORE UPDATE ON history "
            "BEGIN SELECT RAISE(ABORT, 'history is append-only'); END"
        )


def _text(snapshot: Any) -> str:
    return snapshot if isinstance(snapshot, str) else json.dumps(snapshot, ensure_ascii=False, separators=(",", ":"))


def _snapshot_without_address(snapshot: Any, cipher: Any) -> str | None:
    """Return the snapshot (JSON text) with its address moved into its token; None if it has no clear address."""
    data = json.loads(snapshot) if isinstance(snapshot, str | bytes) else snapshot
    if not isinstance(data, dict) or data.get("address") is None:
        return None
    fields = cipher.decrypt(data["personal"]) if data.get("personal") else {}
    fields.setdefault("address", data["address"])
    data = {**data, "address": None, "personal": cipher.encrypt(fields)}
    return _text(data)


def downgrade() -> None:
    """Revert this revision (households' addresses stay in their tokens)."""
    op.drop_index("ux_features_id_number_index", table_name="features")
    op.drop_column("features", "id_number_index")
    op.drop_column("access_log", "channel")
    op.drop_column("access_log", "ip")
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _APPEND_ONLY:
        op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}" if postgres else f"DROP TRIGGER {table}_no_replace")
