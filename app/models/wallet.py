"""The wallet: the ledger of credits and debits, and cashback grants that credit it.

One wallet entry per `source_key` (a goal's bonus, one order's cashback from one grant).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin, UUIDPrimaryKey


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32)


class WalletEntryKind(enum.StrEnum):
    GOAL_BONUS = "GOAL_BONUS"
    CASHBACK = "CASHBACK"
    CASHBACK_REVERSAL = "CASHBACK_REVERSAL"


class CashbackGrant(UUIDPrimaryKey, TimestampMixin, Base):
    """A CASHBACK bonus: `percent` of wallet-paid orders completed in [starts_at, ends_at)."""

    __tablename__ = "cashback_grants"
    __table_args__ = (
        CheckConstraint("percent BETWEEN 1 AND 100", name="percent_between_1_and_100"),
        CheckConstraint("ends_at > starts_at", name="window_not_empty"),
        Index("ix_cashback_grants_user_ends", "user_id", "ends_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    user_goal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_goals.id", ondelete="CASCADE"), unique=True
    )
    percent: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]


class WalletEntry(UUIDPrimaryKey, TimestampMixin, Base):
    """The wallet ledger: the balance is the sum of a user's entries per currency."""

    __tablename__ = "wallet_entries"
    __table_args__ = (
        CheckConstraint("amount_minor <> 0", name="amount_not_zero"),
        Index("ix_wallet_entries_user_created", "user_id", "created_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[WalletEntryKind] = mapped_column(_enum(WalletEntryKind))
    source_key: Mapped[str] = mapped_column(String(120), unique=True)  # idempotency
    user_goal_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_goals.id", ondelete="SET NULL")
    )
    order_id: Mapped[str | None] = mapped_column(String(64))
