"""outbox: finished_at, so jobs the broker lost after it accepted them are published again

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:40:00.000000

Rows already sent when this migration runs are taken as finished (`finished_at = sent_at`):
the alternative, publishing up to OUTBOX_RETENTION_HOURS of old jobs again, is worse, and
until now nothing recorded which of them a worker had finished.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNFINISHED = "sent_at IS NOT NULL AND finished_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE outbox_messages SET finished_at = sent_at WHERE sent_at IS NOT NULL")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_messages_unfinished",
            ["sent_at"],
            unique=False,
            postgresql_where=sa.text(_UNFINISHED),
            sqlite_where=sa.text(_UNFINISHED),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_messages_unfinished",
            postgresql_where=sa.text(_UNFINISHED),
            sqlite_where=sa.text(_UNFINISHED),
        )
        batch_op.drop_column("finished_at")
