"""The store records its district: one row (code, name) written the first time the app opens it.

A store made for one district then refuses another district's data and analyses
(`layers.store.Store.bind_district`). Stores from before this revision have no row yet: the first
district that opens them claims them.

Revision ID: 0006_district
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_district"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "store_district",
        sa.Column("slot", sa.Integer, primary_key=True),  # always 1: one district per store
        sa.Column("code", sa.String(12), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("slot = 1", name="ck_store_district_one_row"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("store_district")
