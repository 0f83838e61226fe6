"""`orderRecord` and `orderRecordBatch`: inputs and payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.services.orders.recording import MAX_BATCH, MAX_DATA_BYTES
from app.services.validation import MAX_JSON_DEPTH
from schema.orders.errors import OrderRecordError
from schema.orders.types import OrderKind, OrderStatus, RecordedOrder, RecordOutcome


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
    data: JSON | None = strawberry.field(
        default=None,
        description=(
            f"Free-form: a JSON object of at most {MAX_DATA_BYTES // 1024} KB, nested at most "
            f"{MAX_JSON_DEPTH} levels deep."
        ),
    )


@strawberry.type
class OrderRecordPayload:
    outcome: RecordOutcome | None
    order: RecordedOrder | None
    errors: list[OrderRecordError]


@strawberry.input(description="Up to 500 orders, recorded in one request.")
class OrderRecordBatchInput:
    orders: list[OrderRecordInput] = strawberry.field(
        description=f"At most {MAX_BATCH} orders; each is recorded as `orderRecord` would."
    )


@strawberry.type(description="What became of one order of a batch.")
class OrderRecordResult:
    order_id: str
    outcome: RecordOutcome | None
    order: RecordedOrder | None
    errors: list[OrderRecordError] = strawberry.field(
        description="ORDER_CONFLICT or UNKNOWN_USER: this order was refused, the others stand."
    )


@strawberry.type
class OrderRecordBatchPayload:
    results: list[OrderRecordResult] = strawberry.field(
        description="One per input order, in input order; empty when `errors` is not."
    )
    errors: list[OrderRecordError] = strawberry.field(
        description="The batch was refused and nothing was recorded: too many orders, or an "
        "order's bad input (the field is `orders.<index>.<field>`)."
    )
