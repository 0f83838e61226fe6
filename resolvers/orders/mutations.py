"""`orderRecord`: the order system reports an order (SERVICE role)."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from app.models.identity import Role
from app.services.errors import DomainError
from app.services.orders.recording import OrderErrorCode, OrderInput, record_order
from schema.context import Context
from schema.ids import node_uuid
from schema.orders.types import (
    OrderRecordError,
    OrderRecordInput,
    OrderRecordPayload,
    RecordedOrder,
)
from schema.permissions import require

InfoT = Info[Context, Any]


def _order_error(exc: DomainError) -> OrderRecordPayload:
    code = OrderErrorCode.__members__.get(exc.code.name, OrderErrorCode.INVALID_ORDER)
    return OrderRecordPayload(
        outcome=None,
        order=None,
        errors=[OrderRecordError(code=code, field=exc.field, message=exc.message)],
    )


def _user_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        pass
    return node_uuid(strawberry.ID(raw), "User", "userId", OrderErrorCode.UNKNOWN_USER)


async def order_record(info: InfoT, data: OrderRecordInput) -> OrderRecordPayload:
    await require(info, Role.SERVICE)
    payload: dict[str, Any] = data.data if isinstance(data.data, dict) else {}
    try:
        if data.data is not None and not isinstance(data.data, dict):
            raise DomainError(OrderErrorCode.INVALID_DATA, "Give a JSON object.", "data")
        result = await record_order(
            info.context.session,
            OrderInput(
                order_id=data.order_id,
                user_id=_user_id(str(data.user_id)),
                kind=data.kind,
                status=data.status,
                ride_class=data.ride_class,
                payment_method=data.payment_method,
                price_minor=data.price.amount_minor,
                currency=data.price.currency,
                ordered_at=data.created_at,
                completed_at=data.completed_at,
                city_timezone=data.city_timezone,
                data=payload,
            ),
        )
    except DomainError as exc:
        return _order_error(exc)
    order = result.order
    return OrderRecordPayload(
        outcome=result.outcome,
        order=RecordedOrder(
            order_id=order.order_id,
            status=order.status,
            recorded_at=order.recorded_at,
        ),
        errors=[],
    )


@strawberry.type
class OrderMutation:
    @strawberry.mutation(
        description="Record an order (SERVICE): stored once by order id and processed "
        "against the user's active goal in the background."
    )
    async def order_record(self, info: InfoT, input: OrderRecordInput) -> OrderRecordPayload:
        return await order_record(info, input)
