"""Order registration (`orderRecord`): store each order once and schedule its processing.

The order and its consumers' outbox rows are written in one transaction, so an order that
was accepted is processed even if the broker is down at that moment (the sweeper relays it
later).

An order id seen before is compared with what was stored:
- same content and status: DUPLICATE, nothing changes;
- same content, a status that moves forward (IN_PROGRESS → anything, COMPLETE → CANCELLED or
  REFUNDED, CANCELLED ↔ REFUNDED): STATUS_CHANGED, processed again (a cancelled order gives
  its count back while the goal is ACTIVE);
- anything else: ORDER_CONFLICT, the first report is kept and the conflict logged and counted.

Each recorded order (new, or with a changed status) is sent to every actor in `CONSUMERS`
(today `goals.process_order`); a new consumer such as promotions adds its actor's name there.
The orders domain imports none of its consumers: it names them by actor only.
"""

from __future__ import annotations

import enum
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import upsert_insert
from app.models.base import utcnow
from app.models.identity import User, UserStatus
from app.models.orders import Order
from app.services.errors import DomainError
from app.services.orders.codes import OrderErrorCode
from app.services.orders.facts import OrderFacts, OrderKind, OrderStatus
from app.services.orders.metrics import ORDERS_RECORDED
from app.services.validation import check_json

log = structlog.get_logger("engage.goals")

# The actors each recorded order is sent to, with (order_id, user_id).
CONSUMERS: tuple[str, ...] = ("goals.process_order",)

MAX_DATA_BYTES = 4096
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Matched with `fullmatch`: `$` would also accept a trailing newline.
_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_LABEL = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # ride class, payment method

_FORWARD: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.IN_PROGRESS: frozenset(OrderStatus),
    OrderStatus.COMPLETE: frozenset({OrderStatus.CANCELLED, OrderStatus.REFUNDED}),
    OrderStatus.CANCELLED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.REFUNDED: frozenset({OrderStatus.CANCELLED}),
}


class RecordOutcome(enum.StrEnum):
    NEW = "NEW"
    DUPLICATE = "DUPLICATE"
    STATUS_CHANGED = "STATUS_CHANGED"


@dataclass(frozen=True)
class OrderInput:
    order_id: str
    user_id: uuid.UUID
    kind: OrderKind
    status: OrderStatus
    ride_class: str | None
    payment_method: str | None
    price_minor: int
    currency: str
    ordered_at: datetime
    completed_at: datetime | None
    city_timezone: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedOrder:
    order_id: str
    status: OrderStatus
    recorded_at: datetime


@dataclass(frozen=True)
class RecordResult:
    outcome: RecordOutcome
    order: RecordedOrder


async def record_order(session: AsyncSession, order: OrderInput) -> RecordResult:
    """Store `order` once and enqueue its processing; raises DomainError naming the field."""
    validate(order)
    if not await _user_can_order(session, order.user_id):
        raise DomainError(OrderErrorCode.UNKNOWN_USER, "No such user.", "userId")
    values = _row_values(order)
    recorded_at = await session.scalar(
        upsert_insert(session, Order)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(Order.created_at)
    )
    if recorded_at is not None:  # new: no need to read the row back
        _schedule(session, order.order_id, order.user_id)
        ORDERS_RECORDED.labels(RecordOutcome.NEW.value).inc()
        return RecordResult(
            RecordOutcome.NEW, RecordedOrder(order.order_id, order.status, recorded_at)
        )
    stored = await session.get(Order, order.order_id, with_for_update=True)
    assert stored is not None
    outcome = _compare(stored, order, values["content_hash"])
    if outcome is RecordOutcome.STATUS_CHANGED:
        stored.status = order.status.value
        _schedule(session, stored.order_id, stored.user_id)
    ORDERS_RECORDED.labels(outcome.value).inc()
    return RecordResult(
        outcome,
        RecordedOrder(stored.order_id, OrderStatus(stored.status), stored.created_at),
    )


def order_data(value: object) -> dict[str, Any]:
    """The order's free-form `data`: a JSON object, {} when absent."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DomainError(OrderErrorCode.INVALID_DATA, "Give a JSON object.", "data")
    return value


def validate(order: OrderInput) -> None:
    if not _ORDER_ID.fullmatch(order.order_id):
        raise DomainError(
            OrderErrorCode.INVALID_ORDER_ID,
            "Give 1-64 characters: letters, digits and . _ : -",
            "orderId",
        )
    for value, name in ((order.ride_class, "rideClass"), (order.payment_method, "paymentMethod")):
        if value is not None and not _LABEL.fullmatch(value):
            raise DomainError(
                OrderErrorCode.INVALID_ORDER, "Give a lowercase name of 1-32 characters.", name
            )
    # The DateTime scalar accepts times without an offset: refuse them before comparing.
    for moment, name in ((order.ordered_at, "createdAt"), (order.completed_at, "completedAt")):
        if moment is not None and moment.tzinfo is None:
            raise DomainError(
                OrderErrorCode.INVALID_ORDER, "Give the time with a timezone offset.", name
            )
    if order.completed_at is not None and order.completed_at < order.ordered_at:
        raise DomainError(
            OrderErrorCode.INVALID_ORDER, "An order completes after it is created.", "completedAt"
        )
    _check_not_future(order)
    _facts(order)  # price, currency, timezone, completion time
    check_json(order.data, "data", OrderErrorCode.INVALID_DATA, max_bytes=MAX_DATA_BYTES)


def _check_not_future(order: OrderInput) -> None:
    """Times from the future beyond a clock skew would count towards goals not yet running."""
    latest = utcnow() + MAX_CLOCK_SKEW
    for moment, name in ((order.ordered_at, "createdAt"), (order.completed_at, "completedAt")):
        if moment is not None and moment > latest:
            raise DomainError(
                OrderErrorCode.INVALID_ORDER,
                f"The time is more than {MAX_CLOCK_SKEW.seconds // 60} minutes in the future.",
                name,
            )


def _facts(order: OrderInput) -> OrderFacts:
    return OrderFacts(
        order_id=order.order_id,
        kind=order.kind,
        status=order.status,
        ride_class=order.ride_class,
        payment_method=order.payment_method,
        price_minor=order.price_minor,
        currency=order.currency,
        completed_at=order.completed_at,
        city_timezone=order.city_timezone,
    )


async def _user_can_order(session: AsyncSession, user_id: uuid.UUID) -> bool:
    status = await session.scalar(select(User.status).where(User.id == user_id))
    return status is not None and status is not UserStatus.DELETED


def content_hash(order: OrderInput) -> str:
    """Everything but the status and completion time, which may legitimately change."""
    canonical = {
        "userId": str(order.user_id),
        "kind": order.kind.value,
        "rideClass": order.ride_class,
        "paymentMethod": order.payment_method,
        "priceMinor": order.price_minor,
        "currency": order.currency,
        "orderedAt": order.ordered_at.timestamp(),
        "cityTimezone": order.city_timezone,
        "data": order.data,
    }
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _row_values(order: OrderInput) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "kind": order.kind.value,
        "status": order.status.value,
        "ride_class": order.ride_class,
        "payment_method": order.payment_method,
        "price_minor": order.price_minor,
        "currency": order.currency,
        "ordered_at": order.ordered_at,
        "completed_at": order.completed_at,
        "city_timezone": order.city_timezone,
        "data": order.data,
        "content_hash": content_hash(order),
    }


def _compare(stored: Order, order: OrderInput, new_hash: str) -> RecordOutcome:
    stored_status = OrderStatus(stored.status)
    if stored.content_hash != new_hash:
        _conflict(stored, "the order's content differs from its first report")
    if order.status is stored_status:
        if order.completed_at is not None and order.completed_at != stored.completed_at:
            _conflict(stored, "the completion time differs from the first report")
        return RecordOutcome.DUPLICATE
    if order.status not in _FORWARD[stored_status]:
        _conflict(stored, f"the status can't go from {stored_status} to {order.status}")
    if stored.completed_at is None:
        stored.completed_at = order.completed_at
    elif order.completed_at is not None and order.completed_at != stored.completed_at:
        _conflict(stored, "the completion time differs from the first report")
    return RecordOutcome.STATUS_CHANGED


def _conflict(stored: Order, why: str) -> None:
    log.warning("goals.order_conflict", order_id=stored.order_id, reason=why)
    ORDERS_RECORDED.labels("CONFLICT").inc()
    raise DomainError(
        OrderErrorCode.ORDER_CONFLICT,
        f"Order {stored.order_id} was already recorded and {why}; the first report is kept.",
        "orderId",
    )


def _schedule(session: AsyncSession, order_id: str, user_id: uuid.UUID) -> None:
    for consumer in CONSUMERS:
        outbox.enqueue(session, consumer, order_id=order_id, user_id=str(user_id))
