"""Family accounts: shared payment with per-member limits, migrated to passport (SPEC §5).

Invariants the database keeps (not only the code):
- a user owns at most one family and belongs to at most one: one *accepted* membership per
  user (a partial unique index on `user_id` where `accepted_at` is set); invitations are
  member rows not accepted yet, one per (family, user); the owner is a member with role
  OWNER, one per family;
- a member's limit is all or nothing: amount, currency and frame are set together, the
  amount is not negative;
- a family's `passport_family_id` is unique: two families can't link one passport family;
- one hold and one charge per order id: a retried check or charge can't count a ride twice;
- one migration row per family (its state machine), one notification per dedupe key.

Usage is never a stored counter: a member's usage in a frame is the sum of the member's
charges since the frame's start plus the holds still alive, so an edited limit (or frame)
applies at once and an expired hold stops counting the moment it expires. Holds and charges
are keyed by (family, user), not by the membership row, so removing and re-adding a member
doesn't reset the frame's usage.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin, UUIDPrimaryKey


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32)


class FamilyRole(enum.StrEnum):
    OWNER = "OWNER"
    MEMBER = "MEMBER"


class PortalStatus(enum.StrEnum):
    """A member's standing in passport."""

    LOCAL = "LOCAL"  # the family is not migrated yet
    LINKED = "LINKED"  # the member is in the passport family
    NO_PORTAL_ACCOUNT = "NO_PORTAL_ACCOUNT"  # passport knows no account of the member's phone
    REFUSED = "REFUSED"  # passport wouldn't take them (in another passport family, or full)


class LimitFrame(enum.StrEnum):
    """Calendar frames in the owner's timezone; weeks start on Monday."""

    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


class HoldStatus(enum.StrEnum):
    HELD = "HELD"
    CHARGED = "CHARGED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"  # marked by the sweeper; a HELD hold past expires_at counts for nothing


class MigrationState(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    PARTIAL = "PARTIAL"  # linked, with members that have no portal account
    FAILED = "FAILED"


class FamilyNotificationKind(enum.StrEnum):
    LIMIT_80 = "LIMIT_80"  # to the owner: a member used 80 % of the frame's limit
    LIMIT_100 = "LIMIT_100"  # to the owner: a member used all of it
    RIDE_REFUSED = "RIDE_REFUSED"  # to the owner: a member's ride didn't fit the limit
    FAMILY_MOVED = "FAMILY_MOVED"  # to each member: the family moved to passport
    MEMBERS_WITHOUT_PORTAL = "MEMBERS_WITHOUT_PORTAL"  # to the owner: who stayed local


class PaymentCard(TimestampMixin, Base):
    """A user's own bank card, as the card store knows it (its id, never the number)."""

    __tablename__ = "payment_cards"
    __table_args__ = (
        CheckConstraint("length(last4) = 4", name="last4_length"),
        CheckConstraint("expires_month BETWEEN 1 AND 12", name="expires_month_range"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # "card-x8b7ef…"
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    brand: Mapped[str] = mapped_column(String(16))
    last4: Mapped[str] = mapped_column(String(4))
    expires_month: Mapped[int] = mapped_column(Integer)
    expires_year: Mapped[int] = mapped_column(Integer)


class FamilyAccount(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "family_accounts"
    __table_args__ = (CheckConstraint("type = 'FAMILY'", name="type_family"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    type: Mapped[str] = mapped_column(String(16), default="FAMILY")
    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[str] = mapped_column(String(6))  # RRGGBB
    passport_family_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    has_plus_multi: Mapped[bool] = mapped_column(Boolean, default=False)
    main_card_id: Mapped[str | None] = mapped_column(
        ForeignKey("payment_cards.id", ondelete="SET NULL")
    )


class FamilyMember(UUIDPrimaryKey, TimestampMixin, Base):
    """A person in a family; `accepted_at` is null while they are only invited."""

    __tablename__ = "family_members"
    __table_args__ = (
        UniqueConstraint("account_id", "user_id", name="uq_family_members_account_user"),
        Index(
            "uq_family_members_one_family",
            "user_id",
            unique=True,
            postgresql_where=text("accepted_at IS NOT NULL"),
            sqlite_where=text("accepted_at IS NOT NULL"),
        ),
        Index(
            "uq_family_members_one_owner",
            "account_id",
            unique=True,
            postgresql_where=text("role = 'OWNER'"),
            sqlite_where=text("role = 'OWNER'"),
        ),
        CheckConstraint(
            "(limit_amount_minor IS NULL AND limit_currency IS NULL AND limit_frame IS NULL)"
            " OR (limit_amount_minor IS NOT NULL AND limit_currency IS NOT NULL"
            " AND limit_frame IS NOT NULL)",
            name="limit_all_or_nothing",
        ),
        CheckConstraint("limit_amount_minor >= 0", name="limit_not_negative"),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("family_accounts.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[FamilyRole] = mapped_column(_enum(FamilyRole))
    accepted_at: Mapped[datetime | None]
    portal_status: Mapped[PortalStatus] = mapped_column(
        _enum(PortalStatus), default=PortalStatus.LOCAL
    )
    portal_uid: Mapped[str | None] = mapped_column(String(64))
    limit_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    limit_currency: Mapped[str | None] = mapped_column(String(3))
    limit_frame: Mapped[LimitFrame | None] = mapped_column(_enum(LimitFrame))


class FamilyPaymentMethod(TimestampMixin, Base):
    """A card of the owner's shared with the family; `position` is the owner's order."""

    __tablename__ = "family_payment_methods"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("family_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    card_id: Mapped[str] = mapped_column(
        ForeignKey("payment_cards.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer)


class FamilyHold(UUIDPrimaryKey, TimestampMixin, Base):
    """A ride's estimated fare held against a member's limit until charged or released."""

    __tablename__ = "family_holds"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        # The live-hold sum of every ride check: the member's HELD holds, amounts in the index
        # on PostgreSQL (an index-only scan), so no plan sums other members' holds.
        Index(
            "ix_family_holds_user_live",
            "account_id",
            "user_id",
            "expires_at",
            postgresql_where=text("status = 'HELD'"),
            sqlite_where=text("status = 'HELD'"),
            postgresql_include=["amount_minor", "currency"],
        ),
        Index(
            "ix_family_holds_held_expiry",
            "expires_at",
            postgresql_where=text("status = 'HELD'"),
            sqlite_where=text("status = 'HELD'"),
        ),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("family_accounts.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[HoldStatus] = mapped_column(_enum(HoldStatus), default=HoldStatus.HELD)
    expires_at: Mapped[datetime]


class FamilyCharge(UUIDPrimaryKey, TimestampMixin, Base):
    """A ride paid by the family: the usage ledger the limits are summed from."""

    __tablename__ = "family_charges"
    __table_args__ = (
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        Index("ix_family_charges_user_time", "account_id", "user_id", "charged_at"),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("family_accounts.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    charged_at: Mapped[datetime]


class FamilyMigration(TimestampMixin, Base):
    """A family's migration to passport: PENDING → RUNNING → DONE | PARTIAL | FAILED."""

    __tablename__ = "family_migrations"
    __table_args__ = (
        Index("ix_family_migrations_state", "state"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("family_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[MigrationState] = mapped_column(_enum(MigrationState))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300))
    trigger: Mapped[str] = mapped_column(String(16))  # APP, BULK or ADMIN
    scheduled_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # A RUNNING row whose worker died is claimed again after this.
    lease_until: Mapped[datetime | None]


class FamilyNotification(UUIDPrimaryKey, TimestampMixin, Base):
    """An in-app notification about a family, at most one per dedupe key."""

    __tablename__ = "family_notifications"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_family_notifications_dedupe_key"),
        Index("ix_family_notifications_user_time", "user_id", "created_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("family_accounts.id", ondelete="SET NULL")
    )
    kind: Mapped[FamilyNotificationKind] = mapped_column(_enum(FamilyNotificationKind))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, Any]]
    seen_at: Mapped[datetime | None]
