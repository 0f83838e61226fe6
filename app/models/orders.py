"""The order stream: orders (and other countable events) as the ordering service reports them.

Goals, and later promotions and cashback, consume it. One row per order id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin


class Order(TimestampMixin, Base):
    """An order (or other countable event) as the ordering service reported it.

    `content_hash` covers every field but the status, so a later CANCELLED/REFUNDED report of
    the same order is a status change while any other difference is a conflict.
    """

    __tablename__ = "goal_orders"
    __table_args__ = (
        CheckConstraint("price_minor >= 0", name="price_not_negative"),
        Index("ix_goal_orders_user_id", "user_id"),
    )

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    ride_class: Mapped[str | None] = mapped_column(String(32))
    payment_method: Mapped[str | None] = mapped_column(String(32))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    ordered_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    city_timezone: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
