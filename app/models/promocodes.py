"""Promocodes for subscription plans: plans, codes, grants, purchases, usage ledger, attempts."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Column,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin, UUIDPrimaryKey


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32)


class PromocodeKind(enum.StrEnum):
    FIXED_PRICE = "FIXED_PRICE"  # buy the plan for `value`
    FREE = "FREE"  # price 0 (a trial)
    PERCENT = "PERCENT"  # `value` % off, 1-100
    AMOUNT = "AMOUNT"  # `value` off, never below 0


class Audience(enum.StrEnum):
    PUBLIC = "PUBLIC"  # any registered, active user
    GRANTED = "GRANTED"  # only users granted the code, personally or through a group


class SubscriberEligibility(enum.StrEnum):
    ANY = "ANY"
    NEVER_SUBSCRIBED = "NEVER_SUBSCRIBED"
    LAPSED = "LAPSED"
    ACTIVE = "ACTIVE"


class PurchaseStatus(enum.StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"


class UseStatus(enum.StrEnum):
    RESERVED = "RESERVED"
    CONFIRMED = "CONFIRMED"
    RELEASED = "RELEASED"


class ReleaseReason(enum.StrEnum):
    PAYMENT_FAILED = "PAYMENT_FAILED"
    TIMEOUT = "TIMEOUT"
    ADMIN = "ADMIN"


class Rejection(enum.StrEnum):
    """Why a code was refused: the true reason, kept in the attempt log for admins."""

    NOT_FOUND = "NOT_FOUND"
    INACTIVE = "INACTIVE"
    NOT_STARTED = "NOT_STARTED"
    EXPIRED = "EXPIRED"
    EXHAUSTED = "EXHAUSTED"
    ALREADY_USED_BY_USER = "ALREADY_USED_BY_USER"
    NOT_ASSIGNED_TO_USER = "NOT_ASSIGNED_TO_USER"
    PLAN_NOT_ELIGIBLE = "PLAN_NOT_ELIGIBLE"
    SUBSCRIBER_NOT_ELIGIBLE = "SUBSCRIBER_NOT_ELIGIBLE"
    USER_NOT_ACTIVE = "USER_NOT_ACTIVE"
    RATE_LIMITED = "RATE_LIMITED"


class AttemptOperation(enum.StrEnum):
    QUOTE = "QUOTE"
    PURCHASE = "PURCHASE"
    ADMIN_APPLY = "ADMIN_APPLY"


class Plan(UUIDPrimaryKey, TimestampMixin, Base):
    """A paid subscription plan."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("price_minor >= 0", name="price_not_negative"),
        CheckConstraint("duration_days > 0", name="duration_positive"),
    )

    slug: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    price_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    duration_days: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)


promocode_plans = Table(
    "promocode_plans",
    Base.metadata,
    Column("promocode_id", ForeignKey("promocodes.id", ondelete="CASCADE"), primary_key=True),
    Column("plan_id", ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True),
)


class Promocode(UUIDPrimaryKey, TimestampMixin, Base):
    """A code and what it gives; one-time and multi-use codes differ only in their limits.

    `uses` counts RESERVED + CONFIRMED ledger entries. It only changes through one conditional
    UPDATE (`uses < max_uses`), which is also what serialises concurrent reservations.
    """

    __tablename__ = "promocodes"
    __table_args__ = (
        CheckConstraint("value >= 0", name="value_not_negative"),
        CheckConstraint(
            "(kind <> 'PERCENT') OR (value BETWEEN 1 AND 100)", name="percent_between_1_and_100"
        ),
        CheckConstraint("(kind <> 'FREE') OR (value = 0)", name="free_has_no_value"),
        CheckConstraint("max_uses IS NULL OR max_uses >= 1", name="max_uses_positive"),
        CheckConstraint("max_uses_per_user >= 1", name="max_uses_per_user_positive"),
        CheckConstraint(
            "uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)", name="uses_within_limit"
        ),
        CheckConstraint(
            "valid_until IS NULL OR valid_from IS NULL OR valid_until > valid_from",
            name="valid_window",
        ),
        CheckConstraint("trial_days >= 0", name="trial_days_not_negative"),
        CheckConstraint("discounted_cycles >= 1", name="discounted_cycles_positive"),
    )

    # Stored normalised (upper case, trimmed): unique case-insensitively by construction.
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[PromocodeKind] = mapped_column(_enum(PromocodeKind))
    value: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str | None] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(500), default="")
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None] = mapped_column(index=True)
    max_uses: Mapped[int | None] = mapped_column(Integer)
    max_uses_per_user: Mapped[int] = mapped_column(Integer, default=1)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    audience: Mapped[Audience] = mapped_column(_enum(Audience), default=Audience.PUBLIC)
    eligibility: Mapped[SubscriberEligibility] = mapped_column(
        _enum(SubscriberEligibility), default=SubscriberEligibility.ANY
    )
    trial_days: Mapped[int] = mapped_column(Integer, default=0)
    discounted_cycles: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(default=True)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(index=True)  # set by the generator
    created_by: Mapped[str] = mapped_column(String(100), default="")


class PromocodeGrant(UUIDPrimaryKey, TimestampMixin, Base):
    """A GRANTED code given to one user or to every member of one group."""

    __tablename__ = "promocode_grants"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (group_id IS NULL)", name="exactly_one_grantee"),
        UniqueConstraint("promocode_id", "user_id", name="uq_promocode_grants_code_user"),
        UniqueConstraint("promocode_id", "group_id", name="uq_promocode_grants_code_group"),
    )

    promocode_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promocodes.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_groups.id", ondelete="CASCADE"), index=True
    )
    granted_by: Mapped[str] = mapped_column(String(100))


class Purchase(UUIDPrimaryKey, TimestampMixin, Base):
    """A plan bought by a user, priced at creation; the payment result arrives later."""

    __tablename__ = "purchases"
    __table_args__ = (
        CheckConstraint("list_price_minor >= 0", name="list_price_not_negative"),
        CheckConstraint(
            "final_price_minor >= 0 AND final_price_minor <= list_price_minor",
            name="final_price_within_list_price",
        ),
        Index("ix_purchases_user_status", "user_id", "status"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plans.id"))
    promocode_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("promocodes.id"), index=True)
    status: Mapped[PurchaseStatus] = mapped_column(
        _enum(PurchaseStatus), default=PurchaseStatus.PENDING
    )
    list_price_minor: Mapped[int] = mapped_column(Integer)
    final_price_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    trial_days: Mapped[int] = mapped_column(Integer, default=0)
    discounted_cycles: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    confirmed_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(String(200))


class PromocodeUse(UUIDPrimaryKey, TimestampMixin, Base):
    """The usage ledger: RESERVED (until `reserved_until`) → CONFIRMED, or → RELEASED."""

    __tablename__ = "promocode_uses"
    __table_args__ = (
        Index(
            "ix_promocode_uses_holding",
            "promocode_id",
            "user_id",
            postgresql_where=text("status <> 'RELEASED'"),
            sqlite_where=text("status <> 'RELEASED'"),
        ),
        Index(
            "ix_promocode_uses_reserved_until",
            "reserved_until",
            postgresql_where=text("status = 'RESERVED'"),
            sqlite_where=text("status = 'RESERVED'"),
        ),
    )

    promocode_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("promocodes.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    purchase_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("purchases.id"), unique=True)
    status: Mapped[UseStatus] = mapped_column(_enum(UseStatus), default=UseStatus.RESERVED)
    reserved_until: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    release_reason: Mapped[ReleaseReason | None] = mapped_column(_enum(ReleaseReason))


class PromocodeAttempt(UUIDPrimaryKey, TimestampMixin, Base):
    """Every rejected attempt with its true reason (who, which code, which plan, when)."""

    __tablename__ = "promocode_attempts"
    __table_args__ = (Index("ix_promocode_attempts_user_created", "user_id", "created_at"),)

    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    promocode_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("promocodes.id", ondelete="SET NULL"), index=True
    )
    plan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("plans.id"))
    code_entered: Mapped[str] = mapped_column(String(64))
    operation: Mapped[AttemptOperation] = mapped_column(_enum(AttemptOperation))
    reason: Mapped[Rejection] = mapped_column(_enum(Rejection))
    ip: Mapped[str | None] = mapped_column(String(64))
