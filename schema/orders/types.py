"""The order stream's types: order kinds and statuses, and an order as `orderRecord` stored it."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.services.orders.facts import OrderKind, OrderStatus
from app.services.orders.recording import RecordOutcome

strawberry.enum(OrderKind, name="OrderKind", description="What kind of event an order is.")
strawberry.enum(OrderStatus, name="OrderStatus", description="An order's status.")
strawberry.enum(
    RecordOutcome,
    name="OrderRecordOutcome",
    description="NEW: stored and scheduled; DUPLICATE: seen before, nothing changed; "
    "STATUS_CHANGED: a cancellation or completion of a known order, processed again.",
)

__all__ = ["OrderKind", "OrderStatus", "RecordOutcome", "RecordedOrder"]


@strawberry.type(description="An order as recorded.")
class RecordedOrder:
    order_id: str
    status: OrderStatus
    recorded_at: datetime
