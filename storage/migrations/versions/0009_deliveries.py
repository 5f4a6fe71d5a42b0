"""deliveries: what the bot said, with whether it was posted

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=False),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("answers", sa.String(128), nullable=True),
        sa.Column("character_id", sa.String(64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("images", sa.Text(), nullable=False),
        sa.Column("quote", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("process", sa.String(64), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    op.create_index("ix_deliveries_message_id", "deliveries", ["message_id"])
    op.create_index("ix_deliveries_state_created_at", "deliveries", ["state", "created_at"])
    op.create_index("ix_deliveries_answers", "deliveries", ["platform", "chat_id", "answers"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_answers", table_name="deliveries")
    op.drop_index("ix_deliveries_state_created_at", table_name="deliveries")
    op.drop_index("ix_deliveries_message_id", table_name="deliveries")
    op.drop_table("deliveries")
