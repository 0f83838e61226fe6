"""orders as their own queue: goal_orders.pending_at (+ a partial index) and order_queue

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00.000000

Orders recorded before this migration were each scheduled with their own
`goals.process_order` job, which still exists and processes them: none is pending.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = "pending_at IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("goal_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_goal_orders_pending",
            ["user_id"],
            unique=False,
            postgresql_where=sa.text(_PENDING),
            sqlite_where=sa.text(_PENDING),
        )
    op.create_table(
        "order_queue",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_order_queue_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_order_queue")),
    )


def downgrade() -> None:
    op.drop_table("order_queue")
    with op.batch_alter_table("goal_orders", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_goal_orders_pending",
            postgresql_where=sa.text(_PENDING),
            sqlite_where=sa.text(_PENDING),
        )
        batch_op.drop_column("pending_at")
