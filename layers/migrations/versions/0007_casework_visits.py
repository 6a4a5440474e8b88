"""Caseworkers' visit log: one append-only row per home visit (date, who, encrypted notes; corrections are new rows).

The notes (what was found, the next step) are personal data: they are stored as one encrypted token
(`layers.crypto.FieldCipher`), like a household's personal fields. Like the history and the access
log, the table refuses UPDATE, DELETE and TRUNCATE in the database, and the app's role may only
INSERT and SELECT it (`layers.store.grant_app_role`).

Revision ID: 0007_casework
Revises: 0006_district
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_casework"
down_revision = "0006_district"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "visits",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("household_id", sa.String(64), nullable=False),
        sa.Column("town_code", sa.String(9), nullable=False),
        sa.Column("visited_on", sa.Date, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("corrects", sa.Integer),
    )
    op.create_index("ix_visits_household", "visits", ["household_id"])
    if op.get_bind().dialect.name == "postgresql":
        # accessplan_append_only() is made by revision 0001
        op.execute(
            "CREATE TRIGGER visits_append_only BEFORE UPDATE OR DELETE ON visits "
            "FOR EACH ROW EXECUTE FUNCTION accessplan_append_only()"
        )
        op.execute(
            "CREATE TRIGGER visits_no_truncate BEFORE TRUNCATE ON visits "
            "FOR EACH STATEMENT EXECUTE FUNCTION accessplan_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER visits_no_{action.lower()} BEFORE {action} ON visits "
                "BEGIN SELECT RAISE(ABORT, 'visits is append-only'); END"
            )
        op.execute(
            "CREATE TRIGGER visits_no_replace BEFORE INSERT ON visits "
            "WHEN EXISTS (SELECT 1 FROM visits WHERE seq = NEW.seq) "
            "BEGIN SELECT RAISE(ABORT, 'visits is append-only'); END"
        )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_visits_household", table_name="visits")
    op.drop_table("visits")
