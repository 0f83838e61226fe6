"""The order stream's types: `orderRecord`'s input, payload, outcome and error codes."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.services.goals.conditions import OrderKind, OrderStatus
from app.services.orders.recording import OrderErrorCode, RecordOutcome

strawberry.enum(OrderKind, name="OrderKind", description="What kind of event an order is.")
strawberry.enum(OrderStatus, name="OrderStatus", description="An order's status.")
strawberry.enum(
    RecordOutcome,
    name="OrderRecordOutcome",
    description="NEW: stored and scheduled; DUPLICATE: seen before, nothing changed; "
    "STATUS_CHANGED: a cancellation or completion of a known order, processed again.",
)
strawberry.enum(
    OrderErrorCode, name="OrderRecordErrorCode", description="Why an order was refused."
)


@strawberry.type(description="Error detail of `orderRecord`.")
class OrderRecordError:
    code: OrderErrorCode
    field: str | None
    message: str


@strawberry.type(description="An order as recorded.")
class RecordedOrder:
    order_id: str
    status: OrderStatus
    recorded_at: datetime


@strawberry.type
class OrderRecordPayload:
    outcome: RecordOutcome | None
    order: RecordedOrder | None
    errors: list[OrderRecordError]


@strawberry.input(description="Money in integer minor units.")
class MoneyInput:
    amount_minor: int
    currency: str = strawberry.field(description="ISO 4217, e.g. RUB.")


@strawberry.input(description="An order as the ordering service knows it.")
class OrderRecordInput:
    order_id: str = strawberry.field(description="The ordering service's id, 1-64 characters.")
    user_id: strawberry.ID = strawberry.field(description="A User global id or a raw UUID.")
    created_at: datetime
    completed_at: datetime | None = None
    status: OrderStatus
    kind: OrderKind = OrderKind.RIDE
    ride_class: str | None = None
    payment_method: str | None = None
    price: MoneyInput
    city_timezone: str = strawberry.field(description="IANA name, e.g. Europe/Moscow.")
    data: JSON | None = strawberry.field(default=None, description="Free-form, at most 4 KB.")
