"""`orderRecord`: the order system reports an order (SERVICE role)."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from app.models.identity import Role
from app.services.errors import DomainError
from app.services.orders.codes import OrderErrorCode
from app.services.orders.recording import OrderInput, RecordResult, order_data, record_order
from schema.context import Context
from schema.errors import payload_errors
from schema.ids import node_uuid
from schema.orders.errors import OrderRecordError
from schema.orders.inputs import OrderRecordInput, OrderRecordPayload
from schema.orders.types import RecordedOrder
from schema.permissions import require

InfoT = Info[Context, Any]


def _user_id(raw: str) -> uuid.UUID:
    """A raw UUID or a User global id."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        pass
    return node_uuid(strawberry.ID(raw), "User", "userId", OrderErrorCode.UNKNOWN_USER)


def _order_input(data: OrderRecordInput) -> OrderInput:
    payload = order_data(data.data)  # checked first: it was the first refusal reported
    return OrderInput(
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
    )


def _payload(result: RecordResult) -> OrderRecordPayload:
    order = result.order
    return OrderRecordPayload(
        outcome=result.outcome,
        order=RecordedOrder(
            order_id=order.order_id, status=order.status, recorded_at=order.recorded_at
        ),
        errors=[],
    )


async def order_record(info: InfoT, data: OrderRecordInput) -> OrderRecordPayload:
    await require(info, Role.SERVICE)
    try:
        result = await record_order(info.context.session, _order_input(data))
    except DomainError as exc:
        return OrderRecordPayload(
            outcome=None, order=None, errors=payload_errors(OrderRecordError, exc)
        )
    return _payload(result)


@strawberry.type
class OrderMutation:
    @strawberry.mutation(
        description="Record an order (SERVICE): stored once by order id and processed "
        "against the user's active goal in the background."
    )
    async def order_record(self, info: InfoT, input: OrderRecordInput) -> OrderRecordPayload:
        return await order_record(info, input)
