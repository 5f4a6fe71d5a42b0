"""voice: a chat's /voice mode, the voice posted with a delivery, voice spent per day

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chats") as batch:
        batch.add_column(sa.Column("voice_mode", sa.String(8), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("voice", sa.Text(), nullable=True))
        batch.add_column(sa.Column("voice_only", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("usage") as batch:
        batch.add_column(sa.Column("voice_chars", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("voice_ms", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("usage") as batch:
        batch.drop_column("voice_ms")
        batch.drop_column("voice_chars")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("voice_only")
        batch.drop_column("voice")
    with op.batch_alter_table("chats") as batch:
        batch.drop_column("voice_mode")
