"""`orderRecord`'s error type: the service's OrderErrorCode is the GraphQL enum."""

from __future__ import annotations

import strawberry

from app.services.orders.codes import OrderErrorCode

strawberry.enum(
    OrderErrorCode, name="OrderRecordErrorCode", description="Why an order was refused."
)


@strawberry.type(description="Error detail of `orderRecord`.")
class OrderRecordError:
    code: OrderErrorCode
    field: str | None
    message: str
