"""corporate notifier: clients, events, notices and their versioned templates, rules and
their versions, the email queue, delivery attempts, preferences and throttle counters

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 18:24:05.436448
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "corp_clients",
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "emails", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "contract_type",
            sa.Enum("PREPAID", "POSTPAID", name="contracttype", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("low_balance_threshold_minor", sa.BigInteger(), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_ride_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_payment_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("limit_reached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("balance_as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "low_balance_threshold_minor >= 0", name=op.f("ck_corp_clients_threshold_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corp_clients")),
        sa.UniqueConstraint("external_id", name=op.f("uq_corp_clients_external_id")),
    )
    op.create_table(
        "notifier_catalogs",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_notifier_catalogs")),
    )
    op.create_table(
        "notifier_notices",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_notifier_notices")),
    )
    op.create_table(
        "notifier_rules",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column(
            "event_type",
            sa.Enum(
                "CLIENT_CREATED_BY_OFFER",
                "CONTRACT_ACTIVATED",
                "BALANCE_CHANGED",
                "LIMIT_REACHED",
                "FINANCIAL_UNBLOCK",
                "RIDE_TAKEN",
                "PAYMENT_RECEIVED",
                name="corpeventtype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifier_rules")),
        sa.UniqueConstraint("key", name=op.f("uq_notifier_rules_key")),
    )
    with op.batch_alter_table("notifier_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifier_rules_event_type"), ["event_type"], unique=False
        )

    op.create_table(
        "corp_events",
        sa.Column(
            "type",
            sa.Enum(
                "CLIENT_CREATED_BY_OFFER",
                "CONTRACT_ACTIVATED",
                "BALANCE_CHANGED",
                "LIMIT_REACHED",
                "FINANCIAL_UNBLOCK",
                "RIDE_TAKEN",
                "PAYMENT_RECEIVED",
                name="corpeventtype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["corp_clients.id"],
            name=op.f("fk_corp_events_client_id_corp_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corp_events")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_corp_events_idempotency_key")),
    )
    with op.batch_alter_table("corp_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_corp_events_client_id"), ["client_id"], unique=False)

    op.create_table(
        "notifier_preferences",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("notice", sa.String(length=64), nullable=False),
        sa.Column("unsubscribed", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["corp_clients.id"],
            name=op.f("fk_notifier_preferences_client_id_corp_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["notice"],
            ["notifier_notices.key"],
            name=op.f("fk_notifier_preferences_notice_notifier_notices"),
        ),
        sa.PrimaryKeyConstraint("client_id", "notice", name=op.f("pk_notifier_preferences")),
    )
    op.create_table(
        "notifier_rule_versions",
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "definition", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("catalog_version", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["notifier_rules.id"],
            name=op.f("fk_notifier_rule_versions_rule_id_notifier_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifier_rule_versions")),
        sa.UniqueConstraint("rule_id", "version", name=op.f("uq_notifier_rule_versions_rule_id")),
    )
    op.create_table(
        "notifier_templates",
        sa.Column("notice", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice"],
            ["notifier_notices.key"],
            name=op.f("fk_notifier_templates_notice_notifier_notices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifier_templates")),
        sa.UniqueConstraint(
            "notice", "locale", "version", name=op.f("uq_notifier_templates_notice")
        ),
    )
    op.create_table(
        "notifier_throttle",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("notice", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["corp_clients.id"],
            name=op.f("fk_notifier_throttle_client_id_corp_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "client_id", "notice", "window_start", name=op.f("pk_notifier_throttle")
        ),
    )
    op.create_table(
        "email_queue",
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("notice", sa.String(length=64), nullable=False),
        sa.Column("rule_version_id", sa.Uuid(), nullable=True),
        sa.Column("rule_key", sa.String(length=64), nullable=True),
        sa.Column(
            "origin",
            sa.Enum("EVENT", "MANUAL", "RESEND", name="emailorigin", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("requested_by", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column(
            "recipients", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "SCHEDULED",
                "SENDING",
                "SENT",
                "CANCELLED",
                "FAILED",
                name="emailstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "cancel_reason",
            sa.Enum(
                "EVENT",
                "CONDITION",
                "EXPIRED",
                "THROTTLED",
                "UNSUBSCRIBED",
                "NO_RECIPIENTS",
                "ADMIN",
                name="cancelreason",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_email_queue_attempts_not_negative")),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["corp_clients.id"],
            name=op.f("fk_email_queue_client_id_corp_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["corp_events.id"],
            name=op.f("fk_email_queue_event_id_corp_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["notice"],
            ["notifier_notices.key"],
            name=op.f("fk_email_queue_notice_notifier_notices"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["email_queue.id"],
            name=op.f("fk_email_queue_parent_id_email_queue"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rule_version_id"],
            ["notifier_rule_versions.id"],
            name=op.f("fk_email_queue_rule_version_id_notifier_rule_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_queue")),
        sa.UniqueConstraint(
            "event_id", "client_id", "notice", "send_at", name=op.f("uq_email_queue_event_id")
        ),
    )
    with op.batch_alter_table("email_queue", schema=None) as batch_op:
        batch_op.create_index(
            "ix_email_queue_client_notice", ["client_id", "notice", "status"], unique=False
        )
        batch_op.create_index(
            "ix_email_queue_due",
            ["due_at"],
            unique=False,
            postgresql_where=sa.text("status IN ('SCHEDULED', 'SENDING')"),
            sqlite_where=sa.text("status IN ('SCHEDULED', 'SENDING')"),
        )
        batch_op.create_index(batch_op.f("ix_email_queue_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_email_queue_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "email_delivery_attempts",
        sa.Column("email_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum("SENT", "RETRY", "FAILED", name="attemptoutcome", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_id"],
            ["email_queue.id"],
            name=op.f("fk_email_delivery_attempts_email_id_email_queue"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_delivery_attempts")),
    )
    with op.batch_alter_table("email_delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_delivery_attempts_email_id"), ["email_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("email_delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_delivery_attempts_email_id"))

    op.drop_table("email_delivery_attempts")
    with op.batch_alter_table("email_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_queue_parent_id"))
        batch_op.drop_index(batch_op.f("ix_email_queue_event_id"))
        batch_op.drop_index(
            "ix_email_queue_due",
            postgresql_where=sa.text("status IN ('SCHEDULED', 'SENDING')"),
            sqlite_where=sa.text("status IN ('SCHEDULED', 'SENDING')"),
        )
        batch_op.drop_index("ix_email_queue_client_notice")

    op.drop_table("email_queue")
    op.drop_table("notifier_throttle")
    op.drop_table("notifier_templates")
    op.drop_table("notifier_rule_versions")
    op.drop_table("notifier_preferences")
    with op.batch_alter_table("corp_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_corp_events_client_id"))

    op.drop_table("corp_events")
    with op.batch_alter_table("notifier_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifier_rules_event_type"))

    op.drop_table("notifier_rules")
    op.drop_table("notifier_notices")
    op.drop_table("notifier_catalogs")
    op.drop_table("corp_clients")
