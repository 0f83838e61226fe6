"""`orderRecordBatch` over HTTP on both backends: per-order outcomes, idempotent per order,
bad input refuses the whole batch naming the field, 501 orders refused, SERVICE only; and
the queue it leaves (one job for the users that had none)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.models.identity import User
from app.models.orders import Order, OrderQueue
from app.runtime import Runtime
from app.services.orders.recording import MAX_BATCH
from tests.factories.identity import access_token, create_user, service_token
from tests.factories.orders import outbox_messages
from tests.helpers import gql, row_counts
from tests.orders.test_order_record import PROCESS, order_input

BATCH = """
mutation Batch($input: OrderRecordBatchInput!) {
  orderRecordBatch(input: $input) {
    results { orderId outcome order { orderId status recordedAt } errors { code field } }
    errors { code field message }
  }
}
"""


def ride(user_id: uuid.UUID | str, order_id: str, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = order_input(user_id, **{"orderId": order_id, **changes})["input"]
    return fields


async def batch(
    client: httpx.AsyncClient, token: str | None, orders: list[dict[str, Any]]
) -> dict[str, Any]:
    body = await gql(client, BATCH, {"input": {"orders": orders}}, token=token)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["orderRecordBatch"]
    return payload


def outcomes(payload: dict[str, Any]) -> list[tuple[str, str | None, list[tuple[str, str]]]]:
    return [
        (r["orderId"], r["outcome"], [(e["code"], e["field"]) for e in r["errors"]])
        for r in payload["results"]
    ]


@pytest.fixture
async def user(runtime: Runtime) -> User:
    return await create_user(runtime)


@pytest.fixture
async def service(runtime: Runtime) -> str:
    return await service_token(runtime, "orders")


async def pending(runtime: Runtime) -> dict[str, bool]:
    async with runtime.session_factory() as session:
        rows = await session.execute(select(Order.order_id, Order.pending_at))
        return {order_id: at is not None for order_id, at in rows}


async def test_a_batch_records_each_order_and_schedules_one_job(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    other = await create_user(runtime)
    orders = [ride(user.id, "b-1"), ride(other.id, "b-2"), ride(user.id, "b-3")]
    payload = await batch(client, service, orders)
    assert payload["errors"] == []
    assert outcomes(payload) == [("b-1", "NEW", []), ("b-2", "NEW", []), ("b-3", "NEW", [])]
    assert await pending(runtime) == {"b-1": True, "b-2": True, "b-3": True}
    assert await outbox_messages(runtime, PROCESS) == [
        {"user_ids": sorted([str(user.id), str(other.id)])}
    ]

    # The whole batch again: every order a DUPLICATE, nothing written.
    before = await row_counts(runtime)
    again = await batch(client, service, orders)
    assert outcomes(again) == [
        ("b-1", "DUPLICATE", []),
        ("b-2", "DUPLICATE", []),
        ("b-3", "DUPLICATE", []),
    ]
    recorded = [r["order"]["recordedAt"] for r in payload["results"]]
    assert [r["order"]["recordedAt"] for r in again["results"]] == recorded
    assert await row_counts(runtime) == before


async def test_mixed_outcomes_each_order_its_own(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    deleted = str(uuid.uuid4())  # no such user
    await batch(client, service, [ride(user.id, "m-1"), ride(user.id, "m-2")])
    async with runtime.session_factory() as session, session.begin():
        await session.execute(OrderQueue.__table__.delete())  # the job started
    payload = await batch(
        client,
        service,
        [
            ride(user.id, "m-1"),  # duplicate
            ride(user.id, "m-2", price={"amountMinor": 1, "currency": "RUB"}),  # conflict
            ride(user.id, "m-3"),  # new
            ride(deleted, "m-4"),  # unknown user
            ride(user.id, "m-1", status="CANCELLED"),  # status change
            ride(user.id, "m-3"),  # the batch's own order again
        ],
    )
    assert payload["errors"] == []
    assert outcomes(payload) == [
        ("m-1", "DUPLICATE", []),
        ("m-2", None, [("ORDER_CONFLICT", "orderId")]),
        ("m-3", "NEW", []),
        ("m-4", None, [("UNKNOWN_USER", "userId")]),
        ("m-1", "STATUS_CHANGED", []),
        ("m-3", "DUPLICATE", []),
    ]
    async with runtime.session_factory() as session:
        stored = {o.order_id: o for o in await session.scalars(select(Order))}
    assert stored["m-1"].status == "CANCELLED" and stored["m-2"].price_minor == 45_000
    assert "m-4" not in stored
    # The user had no job scheduled any more: the second batch scheduled one.
    assert len(await outbox_messages(runtime, PROCESS)) == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price": {"amountMinor": 100, "currency": "rub"}}, "orders.1.price.currency"),
        ({"orderId": "bad id"}, "orders.1.orderId"),
        ({"cityTimezone": "Mars/Base"}, "orders.1.cityTimezone"),
        ({"userId": "not-a-user-id"}, "orders.1.userId"),
        ({"data": [1]}, "orders.1.data"),
    ],
)
async def test_bad_input_names_the_field_and_changes_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    user: User,
    service: str,
    changes: dict[str, Any],
    field: str,
) -> None:
    before = await row_counts(runtime)
    payload = await batch(client, service, [ride(user.id, "x-1"), ride(user.id, "x-2", **changes)])
    assert payload["results"] == []
    assert [(e["field"]) for e in payload["errors"]] == [field]
    assert await row_counts(runtime) == before


async def test_more_than_500_orders_are_refused(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    before = await row_counts(runtime)
    orders = [ride(user.id, f"n-{i}") for i in range(MAX_BATCH + 1)]
    payload = await batch(client, service, orders)
    assert (payload["results"], [(e["code"], e["field"]) for e in payload["errors"]]) == (
        [],
        [("TOO_MANY_ORDERS", "orders")],
    )
    assert await row_counts(runtime) == before


async def test_500_orders_are_accepted(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    payload = await batch(client, service, [ride(user.id, f"n-{i}") for i in range(MAX_BATCH)])
    assert {r["outcome"] for r in payload["results"]} == {"NEW"}
    assert len(payload["results"]) == MAX_BATCH


async def test_only_services_record_batches(
    client: httpx.AsyncClient, runtime: Runtime, user: User
) -> None:
    before = await row_counts(runtime)
    token = await access_token(runtime, user)
    for caller in (token, None):
        body = await gql(client, BATCH, {"input": {"orders": [ride(user.id, "s-1")]}}, token=caller)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] in {"FORBIDDEN", "UNAUTHENTICATED"}
    assert await row_counts(runtime) == before
