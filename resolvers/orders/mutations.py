"""`orderRecord`, `orderRecordBatch`: the order system reports orders (SERVICE role)."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from app.models.identity import Role
from app.services.errors import DomainError
from app.services.orders.codes import OrderErrorCode
from app.services.orders.recording import (
    MAX_BATCH,
    OrderInput,
    RecordResult,
    check_batch_size,
    order_data,
    record_order,
    record_orders,
    within_batch,
)
from schema.context import Context
from schema.errors import payload_errors
from schema.ids import node_uuid
from schema.orders.errors import OrderRecordError
from schema.orders.inputs import (
    OrderRecordBatchInput,
    OrderRecordBatchPayload,
    OrderRecordInput,
    OrderRecordPayload,
    OrderRecordResult,
)
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


def _recorded(result: RecordResult) -> RecordedOrder:
    order = result.order
    return RecordedOrder(
        order_id=order.order_id, status=order.status, recorded_at=order.recorded_at
    )


def _payload(result: RecordResult) -> OrderRecordPayload:
    return OrderRecordPayload(outcome=result.outcome, order=_recorded(result), errors=[])


def _result(order_id: str, outcome: RecordResult | DomainError) -> OrderRecordResult:
    if isinstance(outcome, DomainError):
        errors = payload_errors(OrderRecordError, outcome)
        return OrderRecordResult(order_id=order_id, outcome=None, order=None, errors=errors)
    return OrderRecordResult(
        order_id=order_id, outcome=outcome.outcome, order=_recorded(outcome), errors=[]
    )


def _batch_inputs(data: OrderRecordBatchInput) -> list[OrderInput]:
    inputs = []
    for index, order in enumerate(data.orders):
        try:
            inputs.append(_order_input(order))
        except DomainError as exc:
            raise within_batch(exc, index) from None
    return inputs


async def order_record(info: InfoT, data: OrderRecordInput) -> OrderRecordPayload:
    await require(info, Role.SERVICE)
    try:
        result = await record_order(info.context.session, _order_input(data))
    except DomainError as exc:
        return OrderRecordPayload(
            outcome=None, order=None, errors=payload_errors(OrderRecordError, exc)
        )
    return _payload(result)


async def order_record_batch(info: InfoT, data: OrderRecordBatchInput) -> OrderRecordBatchPayload:
    await require(info, Role.SERVICE)
    try:
        check_batch_size(len(data.orders))
        inputs = _batch_inputs(data)
        outcomes = await record_orders(info.context.session, inputs)
    except DomainError as exc:
        return OrderRecordBatchPayload(results=[], errors=payload_errors(OrderRecordError, exc))
    return OrderRecordBatchPayload(
        results=[
            _result(order.order_id, outcome)
            for order, outcome in zip(inputs, outcomes, strict=True)
        ],
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

    @strawberry.mutation(
        description=f"Record up to {MAX_BATCH} orders (SERVICE) in one request: each is "
        "stored once by order id, like `orderRecord`, with its own outcome; bad input refuses "
        "the whole batch. Processed in the background, each user's orders in order."
    )
    async def order_record_batch(
        self, info: InfoT, input: OrderRecordBatchInput
    ) -> OrderRecordBatchPayload:
        return await order_record_batch(info, input)
