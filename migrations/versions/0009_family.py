"""family accounts: payment cards, families, members (and invitations) with their limits,
shared cards, holds, charges, the migration to passport and in-app notifications

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 23:31:15.186341
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_cards",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("brand", sa.String(length=16), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("expires_month", sa.Integer(), nullable=False),
        sa.Column("expires_year", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "expires_month BETWEEN 1 AND 12", name=op.f("ck_payment_cards_expires_month_range")
        ),
        sa.CheckConstraint("length(last4) = 4", name=op.f("ck_payment_cards_last4_length")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_payment_cards_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_cards")),
    )
    with op.batch_alter_table("payment_cards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_cards_user_id"), ["user_id"], unique=False)

    op.create_table(
        "family_accounts",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("color", sa.String(length=6), nullable=False),
        sa.Column("passport_family_id", sa.String(length=64), nullable=True),
        sa.Column("has_plus_multi", sa.Boolean(), nullable=False),
        sa.Column("main_card_id", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("type = 'FAMILY'", name=op.f("ck_family_accounts_type_family")),
        sa.ForeignKeyConstraint(
            ["main_card_id"],
            ["payment_cards.id"],
            name=op.f("fk_family_accounts_main_card_id_payment_cards"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_family_accounts_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_accounts")),
        sa.UniqueConstraint("owner_id", name=op.f("uq_family_accounts_owner_id")),
        sa.UniqueConstraint(
            "passport_family_id", name=op.f("uq_family_accounts_passport_family_id")
        ),
    )
    op.create_table(
        "family_charges",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("charged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_family_charges_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["family_accounts.id"],
            name=op.f("fk_family_charges_account_id_family_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_family_charges_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_charges")),
        sa.UniqueConstraint("order_id", name=op.f("uq_family_charges_order_id")),
    )
    with op.batch_alter_table("family_charges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_family_charges_user_time", ["account_id", "user_id", "charged_at"], unique=False
        )

    op.create_table(
        "family_holds",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "HELD",
                "CHARGED",
                "RELEASED",
                "EXPIRED",
                name="holdstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_family_holds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["family_accounts.id"],
            name=op.f("fk_family_holds_account_id_family_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_family_holds_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_holds")),
        sa.UniqueConstraint("order_id", name=op.f("uq_family_holds_order_id")),
    )
    with op.batch_alter_table("family_holds", schema=None) as batch_op:
        batch_op.create_index(
            "ix_family_holds_held_expiry",
            ["expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'HELD'"),
            sqlite_where=sa.text("status = 'HELD'"),
        )
        batch_op.create_index(
            "ix_family_holds_user_live",
            ["account_id", "user_id", "expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'HELD'"),
            postgresql_include=["amount_minor", "currency"],
            sqlite_where=sa.text("status = 'HELD'"),
        )

    op.create_table(
        "family_members",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "role",
            sa.Enum("OWNER", "MEMBER", name="familyrole", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "portal_status",
            sa.Enum(
                "LOCAL",
                "LINKED",
                "NO_PORTAL_ACCOUNT",
                "REFUSED",
                name="portalstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("portal_uid", sa.String(length=64), nullable=True),
        sa.Column("limit_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("limit_currency", sa.String(length=3), nullable=True),
        sa.Column(
            "limit_frame",
            sa.Enum("DAY", "WEEK", "MONTH", name="limitframe", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "(limit_amount_minor IS NULL AND limit_currency IS NULL AND limit_frame IS NULL)"
            " OR (limit_amount_minor IS NOT NULL AND limit_currency IS NOT NULL"
            " AND limit_frame IS NOT NULL)",
            name=op.f("ck_family_members_limit_all_or_nothing"),
        ),
        sa.CheckConstraint(
            "limit_amount_minor >= 0", name=op.f("ck_family_members_limit_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["family_accounts.id"],
            name=op.f("fk_family_members_account_id_family_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_family_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_members")),
        sa.UniqueConstraint("account_id", "user_id", name="uq_family_members_account_user"),
    )
    with op.batch_alter_table("family_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_family_members_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_family_members_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            "uq_family_members_one_family",
            ["user_id"],
            unique=True,
            postgresql_where=sa.text("accepted_at IS NOT NULL"),
            sqlite_where=sa.text("accepted_at IS NOT NULL"),
        )
        batch_op.create_index(
            "uq_family_members_one_owner",
            ["account_id"],
            unique=True,
            postgresql_where=sa.text("role = 'OWNER'"),
            sqlite_where=sa.text("role = 'OWNER'"),
        )

    op.create_table(
        "family_migrations",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "PENDING",
                "RUNNING",
                "DONE",
                "PARTIAL",
                "FAILED",
                name="migrationstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "attempts >= 0", name=op.f("ck_family_migrations_attempts_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["family_accounts.id"],
            name=op.f("fk_family_migrations_account_id_family_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_family_migrations")),
    )
    with op.batch_alter_table("family_migrations", schema=None) as batch_op:
        batch_op.create_index("ix_family_migrations_state", ["state"], unique=False)

    op.create_table(
        "family_notifications",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "LIMIT_80",
                "LIMIT_100",
                "RIDE_REFUSED",
                "FAMILY_MOVED",
                "MEMBERS_WITHOUT_PORTAL",
                name="familynotificationkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["family_accounts.id"],
            name=op.f("fk_family_notifications_account_id_family_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_family_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_notifications")),
        sa.UniqueConstraint("dedupe_key", name="uq_family_notifications_dedupe_key"),
    )
    with op.batch_alter_table("family_notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_family_notifications_user_time", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "family_payment_methods",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("card_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["family_accounts.id"],
            name=op.f("fk_family_payment_methods_account_id_family_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["payment_cards.id"],
            name=op.f("fk_family_payment_methods_card_id_payment_cards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "card_id", name=op.f("pk_family_payment_methods")),
    )


def downgrade() -> None:
    op.drop_table("family_payment_methods")
    with op.batch_alter_table("family_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_family_notifications_user_time")

    op.drop_table("family_notifications")
    with op.batch_alter_table("family_migrations", schema=None) as batch_op:
        batch_op.drop_index("ix_family_migrations_state")

    op.drop_table("family_migrations")
    with op.batch_alter_table("family_members", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_family_members_one_owner",
            postgresql_where=sa.text("role = 'OWNER'"),
            sqlite_where=sa.text("role = 'OWNER'"),
        )
        batch_op.drop_index(
            "uq_family_members_one_family",
            postgresql_where=sa.text("accepted_at IS NOT NULL"),
            sqlite_where=sa.text("accepted_at IS NOT NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_family_members_user_id"))
        batch_op.drop_index(batch_op.f("ix_family_members_account_id"))

    op.drop_table("family_members")
    with op.batch_alter_table("family_holds", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_family_holds_user_live",
            postgresql_where=sa.text("status = 'HELD'"),
            postgresql_include=["amount_minor", "currency"],
            sqlite_where=sa.text("status = 'HELD'"),
        )
        batch_op.drop_index(
            "ix_family_holds_held_expiry",
            postgresql_where=sa.text("status = 'HELD'"),
            sqlite_where=sa.text("status = 'HELD'"),
        )

    op.drop_table("family_holds")
    with op.batch_alter_table("family_charges", schema=None) as batch_op:
        batch_op.drop_index("ix_family_charges_user_time")

    op.drop_table("family_charges")
    op.drop_table("family_accounts")
    with op.batch_alter_table("payment_cards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_cards_user_id"))

    op.drop_table("payment_cards")
