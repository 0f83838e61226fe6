"""promotion rewards: promotions, the geo config, pre-offers, splits, runs, the ride ledger,
the reward's active pre-offer, loan application and origination session, reminders

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "promotion_regions",
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("promotions_enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("region", name=op.f("pk_promotion_regions")),
    )
    op.create_table(
        "promotions",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("target_rides", sa.Integer(), nullable=False),
        sa.Column("min_ride_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("challenge_days", sa.Integer(), nullable=False),
        sa.Column("claim_days", sa.Integer(), nullable=False),
        sa.Column(
            "conditions", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("reward_product_id", sa.Integer(), nullable=False),
        sa.Column("reward_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("reward_repayment_rate", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "challenge_days BETWEEN 1 AND 365", name=op.f("ck_promotions_challenge_days_range")
        ),
        sa.CheckConstraint(
            "claim_days BETWEEN 1 AND 365", name=op.f("ck_promotions_claim_days_range")
        ),
        sa.CheckConstraint(
            "min_ride_amount_minor >= 0", name=op.f("ck_promotions_min_ride_amount_not_negative")
        ),
        sa.CheckConstraint(
            "reward_amount_minor > 0", name=op.f("ck_promotions_reward_amount_positive")
        ),
        sa.CheckConstraint(
            "target_rides BETWEEN 1 AND 1000", name=op.f("ck_promotions_target_rides_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
        sa.UniqueConstraint("key", name=op.f("uq_promotions_key")),
    )
    op.create_table(
        "promotion_pre_offers",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("promotion_key", sa.String(length=64), nullable=False),
        sa.Column("promotion_id", sa.Uuid(), nullable=False),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("repayment_rate", sa.String(length=16), nullable=True),
        sa.Column("imported_by", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "amount_minor > 0", name=op.f("ck_promotion_pre_offers_amount_positive")
        ),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_pre_offers_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_promotion_pre_offers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_pre_offers")),
        sa.UniqueConstraint("user_id", "promotion_key", name="uq_promotion_pre_offers_user_key"),
    )
    with op.batch_alter_table("promotion_pre_offers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_promotion_pre_offers_promotion_id"), ["promotion_id"], unique=False
        )

    op.create_table(
        "promotion_splits",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("promotion_id", sa.Uuid(), nullable=False),
        sa.Column("pre_offer_id", sa.Uuid(), nullable=False),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("created_on_accept", sa.Boolean(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["pre_offer_id"],
            ["promotion_pre_offers.id"],
            name=op.f("fk_promotion_splits_pre_offer_id_promotion_pre_offers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_splits_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_promotion_splits_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_splits")),
        sa.UniqueConstraint("user_id", "promotion_id", name="uq_promotion_splits_user_promotion"),
    )
    with op.batch_alter_table("promotion_splits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_promotion_splits_promotion_id"), ["promotion_id"], unique=False
        )

    op.create_table(
        "promotion_users",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("promotion_id", sa.Uuid(), nullable=False),
        sa.Column("pre_offer_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "STARTED",
                "COMPLETED",
                "REWARDED",
                "EXPIRED",
                "REWARD_EXPIRED",
                name="promotionuserstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("target_rides", sa.Integer(), nullable=False),
        sa.Column("min_ride_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("claim_days", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column(
            "reward", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("challenge_ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rewarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "progress >= 0 AND progress <= target_rides",
            name=op.f("ck_promotion_users_progress_in_range"),
        ),
        sa.ForeignKeyConstraint(
            ["pre_offer_id"],
            ["promotion_pre_offers.id"],
            name=op.f("fk_promotion_users_pre_offer_id_promotion_pre_offers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_users_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_promotion_users_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_users")),
        sa.UniqueConstraint("user_id", "promotion_id", name="uq_promotion_users_user_promotion"),
    )
    with op.batch_alter_table("promotion_users", schema=None) as batch_op:
        batch_op.create_index(
            "ix_promotion_users_claim_deadline", ["status", "claim_ends_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_promotion_users_promotion_id"), ["promotion_id"], unique=False
        )
        batch_op.create_index(
            "ix_promotion_users_started",
            ["user_id"],
            unique=False,
            postgresql_where=sa.text("status = 'STARTED'"),
            sqlite_where=sa.text("status = 'STARTED'"),
        )
        batch_op.create_index(
            "ix_promotion_users_status_deadline", ["status", "challenge_ends_at"], unique=False
        )

    op.create_table(
        "promotion_active_pre_offers",
        sa.Column("promotion_user_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("pre_offer_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("repayment_rate", sa.String(length=16), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["pre_offer_id"],
            ["promotion_pre_offers.id"],
            name=op.f("fk_promotion_active_pre_offers_pre_offer_id_promotion_pre_offers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["promotion_user_id"],
            ["promotion_users.id"],
            name=op.f("fk_promotion_active_pre_offers_promotion_user_id_promotion_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_promotion_active_pre_offers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_active_pre_offers")),
        sa.UniqueConstraint(
            "promotion_user_id", name=op.f("uq_promotion_active_pre_offers_promotion_user_id")
        ),
    )
    op.create_table(
        "promotion_notifications",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("promotion_user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "CHALLENGE_ENDING",
                "CLAIM_ENDING",
                name="promotionnotificationkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["promotion_user_id"],
            ["promotion_users.id"],
            name=op.f("fk_promotion_notifications_promotion_user_id_promotion_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_promotion_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_notifications")),
        sa.UniqueConstraint(
            "promotion_user_id", "kind", name="uq_promotion_notifications_run_kind"
        ),
    )
    with op.batch_alter_table("promotion_notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_promotion_notifications_user_created", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "promotion_rides",
        sa.Column("promotion_user_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "COUNTED",
                "NOT_A_RIDE",
                "NOT_COMPLETE",
                "BELOW_MINIMUM",
                "CURRENCY_MISMATCH",
                "OUTSIDE_WINDOW",
                "TARGET_REACHED",
                name="ridereason",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("ride_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["promotion_user_id"],
            ["promotion_users.id"],
            name=op.f("fk_promotion_rides_promotion_user_id_promotion_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_promotion_rides_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_rides")),
        sa.UniqueConstraint(
            "promotion_user_id", "order_id", name="uq_promotion_rides_promotion_user_order"
        ),
    )
    with op.batch_alter_table("promotion_rides", schema=None) as batch_op:
        batch_op.create_index("ix_promotion_rides_order", ["order_id"], unique=False)

    op.create_table(
        "promotion_loan_applications",
        sa.Column("promotion_user_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("active_pre_offer_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("repayment_rate", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["active_pre_offer_id"],
            ["promotion_active_pre_offers.id"],
            name=op.f(
                "fk_promotion_loan_applications_active_pre_offer_id_promotion_active_pre_offers"
            ),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["promotion_user_id"],
            ["promotion_users.id"],
            name=op.f("fk_promotion_loan_applications_promotion_user_id_promotion_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_promotion_loan_applications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_loan_applications")),
        sa.UniqueConstraint(
            "promotion_user_id", name=op.f("uq_promotion_loan_applications_promotion_user_id")
        ),
    )
    op.create_table(
        "promotion_origination_sessions",
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("split_id", sa.Uuid(), nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["promotion_loan_applications.id"],
            name=op.f(
                "fk_promotion_origination_sessions_application_id_promotion_loan_applications"
            ),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["split_id"],
            ["promotion_splits.id"],
            name=op.f("fk_promotion_origination_sessions_split_id_promotion_splits"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_promotion_origination_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_origination_sessions")),
        sa.UniqueConstraint(
            "application_id", name=op.f("uq_promotion_origination_sessions_application_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("promotion_origination_sessions")
    op.drop_table("promotion_loan_applications")
    with op.batch_alter_table("promotion_rides", schema=None) as batch_op:
        batch_op.drop_index("ix_promotion_rides_order")

    op.drop_table("promotion_rides")
    with op.batch_alter_table("promotion_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_promotion_notifications_user_created")

    op.drop_table("promotion_notifications")
    op.drop_table("promotion_active_pre_offers")
    with op.batch_alter_table("promotion_users", schema=None) as batch_op:
        batch_op.drop_index("ix_promotion_users_status_deadline")
        batch_op.drop_index(
            "ix_promotion_users_started",
            postgresql_where=sa.text("status = 'STARTED'"),
            sqlite_where=sa.text("status = 'STARTED'"),
        )
        batch_op.drop_index(batch_op.f("ix_promotion_users_promotion_id"))
        batch_op.drop_index("ix_promotion_users_claim_deadline")

    op.drop_table("promotion_users")
    with op.batch_alter_table("promotion_splits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promotion_splits_promotion_id"))

    op.drop_table("promotion_splits")
    with op.batch_alter_table("promotion_pre_offers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promotion_pre_offers_promotion_id"))

    op.drop_table("promotion_pre_offers")
    op.drop_table("promotions")
    op.drop_table("promotion_regions")
