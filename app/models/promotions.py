"""Promotion rewards: the newcomer challenge whose reward is a loan offer (SPEC §2).

Invariants the database keeps (not only the code):
- a promotion's key is unique; its target, windows and reward amount are positive;
- one pre-offer per (user, promotion key): a re-import changes nothing;
- one split per (user, promotion) (the seed's `cash_loan_account`);
- one promotion user per (user, promotion): a promotion can't be retried;
  0 <= progress <= target;
- one ride-ledger row per (promotion user, order);
- one loan application per promotion user, one origination session per application, one
  active pre-offer per promotion user: `promotionRewardAccept` can't create two.

A promotion user snapshots the promotion's conditions and the reward when it starts: editing
a promotion changes what later starts promise, never what a user was already promised.
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


class PromotionUserStatus(enum.StrEnum):
    STARTED = "STARTED"
    COMPLETED = "COMPLETED"
    REWARDED = "REWARDED"
    EXPIRED = "EXPIRED"  # the challenge window closed short of the target
    REWARD_EXPIRED = "REWARD_EXPIRED"  # COMPLETED, and the claim window closed unclaimed


class RideReason(enum.StrEnum):
    """Why a ride did (COUNTED) or did not count for a promotion: one ledger row per ride."""

    COUNTED = "COUNTED"
    NOT_A_RIDE = "NOT_A_RIDE"
    NOT_COMPLETE = "NOT_COMPLETE"
    BELOW_MINIMUM = "BELOW_MINIMUM"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    OUTSIDE_WINDOW = "OUTSIDE_WINDOW"
    TARGET_REACHED = "TARGET_REACHED"  # the challenge was already complete


class Promotion(UUIDPrimaryKey, TimestampMixin, Base):
    """A challenge and its reward template."""

    __tablename__ = "promotions"
    __table_args__ = (
        CheckConstraint("target_rides BETWEEN 1 AND 1000", name="target_rides_range"),
        CheckConstraint("min_ride_amount_minor >= 0", name="min_ride_amount_not_negative"),
        CheckConstraint("challenge_days BETWEEN 1 AND 365", name="challenge_days_range"),
        CheckConstraint("claim_days BETWEEN 1 AND 365", name="claim_days_range"),
        CheckConstraint("reward_amount_minor > 0", name="reward_amount_positive"),
    )

    key: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    target_rides: Mapped[int] = mapped_column(Integer)
    min_ride_amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))  # of rides and of the reward
    challenge_days: Mapped[int] = mapped_column(Integer, default=14)
    claim_days: Mapped[int] = mapped_column(Integer, default=7)
    conditions: Mapped[dict[str, Any]]  # other conditions, kept and shown as given
    # The reward template: the loan product, and the terms a pre-offer may override.
    reward_product_id: Mapped[int] = mapped_column(Integer)
    reward_amount_minor: Mapped[int] = mapped_column(BigInteger)
    reward_repayment_rate: Mapped[str] = mapped_column(String(16))  # a decimal percent, "15"
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by: Mapped[str] = mapped_column(String(200))


class PromotionRegion(TimestampMixin, Base):
    """The geo config: whether promotions run in a country or region (`MX`, `MX-CMX`)."""

    __tablename__ = "promotion_regions"

    region: Mapped[str] = mapped_column(String(16), primary_key=True)
    promotions_enabled: Mapped[bool] = mapped_column(Boolean)
    updated_by: Mapped[str] = mapped_column(String(200))


class PreOffer(UUIDPrimaryKey, TimestampMixin, Base):
    """Scoring's newcomer loan pre-offer, mapped to a promotion by its key on import."""

    __tablename__ = "promotion_pre_offers"
    __table_args__ = (
        UniqueConstraint("user_id", "promotion_key", name="uq_promotion_pre_offers_user_key"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    promotion_key: Mapped[str] = mapped_column(String(64))
    promotion_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotions.id", ondelete="CASCADE"), index=True
    )
    region: Mapped[str] = mapped_column(String(16))
    # Scoring's terms for this user; each missing one is the promotion's reward template's.
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    repayment_rate: Mapped[str | None] = mapped_column(String(16))
    imported_by: Mapped[str] = mapped_column(String(200))


class PromotionSplit(UUIDPrimaryKey, TimestampMixin, Base):
    """The user's assignment to the promotion landing (the seed's `cash_loan_account`)."""

    __tablename__ = "promotion_splits"
    __table_args__ = (
        UniqueConstraint("user_id", "promotion_id", name="uq_promotion_splits_user_promotion"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    promotion_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotions.id", ondelete="CASCADE"), index=True
    )
    pre_offer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotion_pre_offers.id", ondelete="CASCADE")
    )
    region: Mapped[str] = mapped_column(String(16))
    created_on_accept: Mapped[bool] = mapped_column(Boolean, default=False)
    used_at: Mapped[datetime | None]


class PromotionUser(UUIDPrimaryKey, TimestampMixin, Base):
    """A user's run at a promotion: the challenge, then the reward."""

    __tablename__ = "promotion_users"
    __table_args__ = (
        UniqueConstraint("user_id", "promotion_id", name="uq_promotion_users_user_promotion"),
        CheckConstraint("progress >= 0 AND progress <= target_rides", name="progress_in_range"),
        Index(
            "ix_promotion_users_started",
            "user_id",
            postgresql_where=text("status = 'STARTED'"),
            sqlite_where=text("status = 'STARTED'"),
        ),
        Index("ix_promotion_users_status_deadline", "status", "challenge_ends_at"),
        Index("ix_promotion_users_claim_deadline", "status", "claim_ends_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    promotion_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotions.id", ondelete="CASCADE"), index=True
    )
    pre_offer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotion_pre_offers.id", ondelete="CASCADE")
    )
    status: Mapped[PromotionUserStatus] = mapped_column(_enum(PromotionUserStatus))
    region: Mapped[str] = mapped_column(String(16))  # the pre-offer's
    # The promotion's conditions as they were at the start.
    target_rides: Mapped[int] = mapped_column(Integer)
    min_ride_amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    claim_days: Mapped[int] = mapped_column(Integer)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    # {"product_id", "amount_minor", "currency", "repayment_rate"}: the offer the user earns.
    reward: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    challenge_ends_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    claim_ends_at: Mapped[datetime | None]
    rewarded_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]


class PromotionRide(UUIDPrimaryKey, TimestampMixin, Base):
    """The ride ledger: each ride offered to a promotion user, whether it counted and why."""

    __tablename__ = "promotion_rides"
    __table_args__ = (
        UniqueConstraint(
            "promotion_user_id", "order_id", name="uq_promotion_rides_promotion_user_order"
        ),
        Index("ix_promotion_rides_order", "order_id"),
    )

    promotion_user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotion_users.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    order_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[RideReason] = mapped_column(_enum(RideReason))
    counted: Mapped[bool] = mapped_column(Boolean)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    ride_at: Mapped[datetime | None]
    reversed_at: Mapped[datetime | None]


class ActivePreOffer(UUIDPrimaryKey, TimestampMixin, Base):
    """Step 2 of accepting: the product joined with the pre-offer's terms."""

    __tablename__ = "promotion_active_pre_offers"

    promotion_user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotion_users.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    pre_offer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotion_pre_offers.id", ondelete="CASCADE")
    )
    product_id: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    repayment_rate: Mapped[str] = mapped_column(String(16))


class LoanApplication(UUIDPrimaryKey, TimestampMixin, Base):
    """Step 3: the loan application the reward becomes."""

    __tablename__ = "promotion_loan_applications"

    promotion_user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotion_users.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    active_pre_offer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotion_active_pre_offers.id", ondelete="CASCADE")
    )
    product_id: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    repayment_rate: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="CREATED")


class OriginationSession(UUIDPrimaryKey, TimestampMixin, Base):
    """Step 4: the origination session of the application (standard flow: sequence 8)."""

    __tablename__ = "promotion_origination_sessions"

    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotion_loan_applications.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    split_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotion_splits.id", ondelete="CASCADE")
    )
    sequence_id: Mapped[int] = mapped_column(Integer)


class PromotionNotificationKind(enum.StrEnum):
    CHALLENGE_ENDING = "CHALLENGE_ENDING"  # the challenge window closes soon, progress short
    CLAIM_ENDING = "CLAIM_ENDING"  # a COMPLETED run's claim window closes soon


class PromotionNotification(UUIDPrimaryKey, TimestampMixin, Base):
    """An in-app reminder about a promotion run; at most one per run and kind."""

    __tablename__ = "promotion_notifications"
    __table_args__ = (
        UniqueConstraint("promotion_user_id", "kind", name="uq_promotion_notifications_run_kind"),
        Index("ix_promotion_notifications_user_created", "user_id", "created_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    promotion_user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotion_users.id", ondelete="CASCADE")
    )
    kind: Mapped[PromotionNotificationKind] = mapped_column(_enum(PromotionNotificationKind))
    deadline: Mapped[datetime]  # the instant the reminder is about
