"""The order stream: orders (and other countable events) as the ordering service reports them.

Goals, and later promotions and cashback, consume it. One row per order id.

The order rows are also the consumers' queue: `pending_at` is set when a report (new, or a
status change) awaits processing and cleared by the consumer that processed it; a user with
pending orders has one `order_queue` row while a job for them is scheduled and not yet
started (`app/services/orders/queue.py` says how the two keep every order processed).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, text
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
        Index(
            "ix_goal_orders_pending",
            "user_id",
            postgresql_where=text("pending_at IS NOT NULL"),
            sqlite_where=text("pending_at IS NOT NULL"),
        ),
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
    # When the latest report (new, or a status change) was queued for processing; NULL once
    # processed. Compared exactly when cleared, so a report that arrives meanwhile stays.
    pending_at: Mapped[datetime | None]


class OrderQueue(TimestampMixin, Base):
    """A user whose pending orders have a processing job scheduled that has not started yet.

    Recording upserts the row (the upsert's row lock is held to commit) and schedules a job
    only when it created the row (or found it stale); the job deletes the row first, under
    the user's lock, then reads the pending orders. See `app/services/orders/queue.py`.
    """

    __tablename__ = "order_queue"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    queued_at: Mapped[datetime]
