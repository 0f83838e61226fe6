"""Plain async factories for the order stream: an order as the ordering service sends it,
recording it, and the outbox rows recorded orders leave."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.models.base import utcnow
from app.models.outbox import OutboxMessage
from app.runtime import Runtime
from app.services.errors import DomainError
from app.services.orders.facts import OrderKind, OrderStatus
from app.services.orders.recording import OrderInput, RecordResult, record_order, record_orders


def order(
    user_id: uuid.UUID,
    *,
    order_id: str | None = None,
    status: OrderStatus = OrderStatus.COMPLETE,
    ride_class: str | None = "comfort",
    payment_method: str | None = "card",
    price_minor: int = 50_000,
    currency: str = "RUB",
    completed_at: datetime | None = None,
    city_timezone: str = "Europe/Moscow",
    data: dict[str, Any] | None = None,
) -> OrderInput:
    done = completed_at or utcnow()
    return OrderInput(
        order_id=order_id or f"o-{uuid.uuid4().hex[:12]}",
        user_id=user_id,
        kind=OrderKind.RIDE,
        status=status,
        ride_class=ride_class,
        payment_method=payment_method,
        price_minor=price_minor,
        currency=currency,
        ordered_at=done - timedelta(minutes=30),
        completed_at=None if status is OrderStatus.IN_PROGRESS else done,
        city_timezone=city_timezone,
        data=data or {},
    )


async def record(runtime: Runtime, data: OrderInput) -> RecordResult:
    async with runtime.session_factory() as session, session.begin():
        return await record_order(session, data)


async def record_batch(
    runtime: Runtime, orders: list[OrderInput]
) -> list[RecordResult | DomainError]:
    async with runtime.session_factory() as session, session.begin():
        return await record_orders(session, orders)


async def outbox_messages(runtime: Runtime, actor: str) -> list[dict[str, Any]]:
    async with runtime.session_factory() as session:
        rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.actor == actor))
        return [row.kwargs for row in rows]
