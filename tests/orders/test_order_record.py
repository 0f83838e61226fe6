"""`orderRecord` over HTTP on both backends: idempotent storage, the queue (the order's
pending marker and one `goals.process_orders` job while the user has none scheduled), status
changes, conflicts, input validation (each error names its field and changes nothing) and
roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from strawberry.relay import to_base64

from app.models.base import utcnow
from app.models.identity import User, UserStatus
from app.models.orders import Order
from app.runtime import Runtime
from tests.factories.identity import PASSWORD, access_token, create_user, service_token
from tests.factories.orders import outbox_messages
from tests.helpers import error_codes, gql, row_counts

PROCESS = "goals.process_orders"

ORDER_RECORD = """
mutation OrderRecord($input: OrderRecordInput!) {
  orderRecord(input: $input) {
    outcome
    order { orderId status recordedAt }
    errors { code field message }
  }
}
"""
ACCOUNT_DELETE = """
mutation Delete($input: AccountDeleteInput!) {
  accountDelete(input: $input) { errors { code field } }
}
"""

CREATED = datetime(2026, 1, 10, 18, 0, tzinfo=UTC)
COMPLETED = CREATED + timedelta(minutes=25)


def order_input(user_id: uuid.UUID | str, **changes: Any) -> dict[str, Any]:
    """A valid COMPLETE ride; `changes` override (or, with None, null out) its fields."""
    fields: dict[str, Any] = {
        "orderId": "ride-1001",
        "userId": str(user_id),
        "createdAt": CREATED.isoformat(),
        "completedAt": COMPLETED.isoformat(),
        "status": "COMPLETE",
        "kind": "RIDE",
        "rideClass": "comfort",
        "paymentMethod": "card",
        "price": {"amountMinor": 45_000, "currency": "RUB"},
        "cityTimezone": "Europe/Moscow",
        "data": {"from": "Tverskaya 1", "to": "Arbat 10"},
    }
    fields.update(changes)
    return {"input": fields}


async def record(
    client: httpx.AsyncClient, token: str | None, variables: dict[str, Any]
) -> dict[str, Any]:
    body = await gql(client, ORDER_RECORD, variables, token=token)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["orderRecord"]
    return payload


def errors_of(payload: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(error["code"], error["field"]) for error in payload["errors"]]


async def stored(runtime: Runtime, order_id: str) -> Order | None:
    async with runtime.session_factory() as session:
        return await session.get(Order, order_id)


@pytest.fixture
async def user(runtime: Runtime) -> User:
    return await create_user(runtime)


@pytest.fixture
async def service(runtime: Runtime) -> str:
    return await service_token(runtime, "orders")


# ---- storing once -----------------------------------------------------------------------------


async def test_a_new_order_is_stored_and_scheduled_once(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    first = await record(client, service, order_input(user.id))
    assert first["errors"] == []
    assert first["outcome"] == "NEW"
    assert first["order"]["orderId"] == "ride-1001"
    assert first["order"]["status"] == "COMPLETE"
    assert await outbox_messages(runtime, PROCESS) == [{"user_ids": [str(user.id)]}]
    row = await stored(runtime, "ride-1001")
    assert row is not None and row.pending_at is not None
    assert (row.user_id, row.price_minor, row.currency, row.ride_class) == (
        user.id,
        45_000,
        "RUB",
        "comfort",
    )
    assert (row.ordered_at, row.completed_at) == (CREATED, COMPLETED)
    assert row.data == {"from": "Tverskaya 1", "to": "Arbat 10"}

    before = await row_counts(runtime)
    again = await record(client, service, order_input(user.id))
    assert again["errors"] == []
    assert again["outcome"] == "DUPLICATE"
    assert again["order"]["recordedAt"] == first["order"]["recordedAt"]
    assert len(await outbox_messages(runtime, PROCESS)) == 1
    assert await row_counts(runtime) == before


async def test_the_same_time_in_another_offset_is_a_duplicate(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    assert (await record(client, service, order_input(user.id)))["outcome"] == "NEW"
    assert (CREATED.isoformat(), COMPLETED.isoformat()) == (
        "2026-01-10T18:00:00+00:00",
        "2026-01-10T18:25:00+00:00",
    )
    local = order_input(
        user.id, createdAt="2026-01-10T18:00:00Z", completedAt="2026-01-10T21:25:00+03:00"
    )
    again = await record(client, service, local)
    assert (again["outcome"], again["errors"]) == ("DUPLICATE", [])
    assert len(await outbox_messages(runtime, PROCESS)) == 1


async def test_an_order_id_reused_with_other_content_is_a_conflict_and_the_first_is_kept(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    await record(client, service, order_input(user.id))
    before = await row_counts(runtime)

    for changed in (
        {"price": {"amountMinor": 1, "currency": "RUB"}},
        {"rideClass": "econom"},
        {"data": {"from": "elsewhere"}},
        {"completedAt": (COMPLETED + timedelta(minutes=5)).isoformat()},
    ):
        payload = await record(client, service, order_input(user.id, **changed))
        assert payload["outcome"] is None, changed
        assert payload["order"] is None
        assert errors_of(payload) == [("ORDER_CONFLICT", "orderId")], changed
        assert "ride-1001" in payload["errors"][0]["message"]

    row = await stored(runtime, "ride-1001")
    assert row is not None
    assert (row.price_minor, row.ride_class, row.status, row.completed_at) == (
        45_000,
        "comfort",
        "COMPLETE",
        COMPLETED,
    )
    assert await row_counts(runtime) == before
    assert len(await outbox_messages(runtime, PROCESS)) == 1


async def test_another_users_order_with_the_same_id_is_a_conflict(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    other = await create_user(runtime)
    await record(client, service, order_input(user.id))
    payload = await record(client, service, order_input(other.id))
    assert errors_of(payload) == [("ORDER_CONFLICT", "orderId")]
    row = await stored(runtime, "ride-1001")
    assert row is not None and row.user_id == user.id


# ---- status changes ---------------------------------------------------------------------------


async def test_a_cancellation_of_a_complete_order_is_scheduled_again(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    await record(client, service, order_input(user.id))

    cancelled = await record(client, service, order_input(user.id, status="CANCELLED"))
    assert cancelled["errors"] == []
    assert cancelled["outcome"] == "STATUS_CHANGED"
    assert cancelled["order"]["status"] == "CANCELLED"
    # Pending again; the user's job is still scheduled (nothing processed it yet), so no
    # second one.
    assert await outbox_messages(runtime, PROCESS) == [{"user_ids": [str(user.id)]}]
    row = await stored(runtime, "ride-1001")
    assert row is not None and row.pending_at is not None
    assert (row.status, row.completed_at, row.price_minor) == ("CANCELLED", COMPLETED, 45_000)

    # The cancellation repeated is a duplicate; a refund after it is another change.
    repeated = await record(client, service, order_input(user.id, status="CANCELLED"))
    assert repeated["outcome"] == "DUPLICATE"
    assert len(await outbox_messages(runtime, PROCESS)) == 1


async def test_a_status_never_goes_back(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    await record(client, service, order_input(user.id))
    await record(client, service, order_input(user.id, status="CANCELLED"))
    before = await row_counts(runtime)

    for status in ("COMPLETE", "IN_PROGRESS"):
        payload = await record(client, service, order_input(user.id, status=status))
        assert errors_of(payload) == [("ORDER_CONFLICT", "orderId")], status

    row = await stored(runtime, "ride-1001")
    assert row is not None and row.status == "CANCELLED"
    assert await row_counts(runtime) == before
    assert len(await outbox_messages(runtime, PROCESS)) == 1


async def test_an_order_in_progress_completes_later(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    pending = order_input(user.id, status="IN_PROGRESS", completedAt=None)
    assert (await record(client, service, pending))["outcome"] == "NEW"

    complete = await record(client, service, order_input(user.id))
    assert (complete["outcome"], complete["errors"]) == ("STATUS_CHANGED", [])
    row = await stored(runtime, "ride-1001")
    assert row is not None
    assert (row.status, row.completed_at) == ("COMPLETE", COMPLETED)
    assert row.pending_at is not None
    assert len(await outbox_messages(runtime, PROCESS)) == 1


# ---- bad input --------------------------------------------------------------------------------


def nested(depth: int, *, lists: bool = False) -> Any:
    """A JSON value of `depth` nested objects (or lists) around a number."""
    value: Any = 1
    for _ in range(depth):
        value = [value] if lists else {"a": value}
    return value


BAD_INPUTS: dict[str, tuple[dict[str, Any], str, str]] = {
    "negative price": (
        {"price": {"amountMinor": -1, "currency": "RUB"}},
        "INVALID_ORDER",
        "price.amountMinor",
    ),
    "unknown currency": (
        {"price": {"amountMinor": 100, "currency": "XYZ"}},
        "INVALID_CURRENCY",
        "price.currency",
    ),
    "lower-case currency": (
        {"price": {"amountMinor": 100, "currency": "rub"}},
        "INVALID_CURRENCY",
        "price.currency",
    ),
    "bad timezone": ({"cityTimezone": "Mars/Olympus"}, "INVALID_TIMEZONE", "cityTimezone"),
    "complete without completedAt": ({"completedAt": None}, "INVALID_ORDER", "completedAt"),
    "completedAt before createdAt": (
        {"completedAt": (CREATED - timedelta(seconds=1)).isoformat()},
        "INVALID_ORDER",
        "completedAt",
    ),
    "order id with spaces": ({"orderId": "ride 1001"}, "INVALID_ORDER_ID", "orderId"),
    "order id with a trailing newline": (
        {"orderId": "ride-1001\n"},
        "INVALID_ORDER_ID",
        "orderId",
    ),
    "empty order id": ({"orderId": ""}, "INVALID_ORDER_ID", "orderId"),
    "order id over 64 characters": ({"orderId": "r" * 65}, "INVALID_ORDER_ID", "orderId"),
    "ride class with spaces": ({"rideClass": "comfort plus"}, "INVALID_ORDER", "rideClass"),
    "ride class with a trailing newline": (
        {"rideClass": "comfort\n"},
        "INVALID_ORDER",
        "rideClass",
    ),
    "payment method in capitals": ({"paymentMethod": "CARD"}, "INVALID_ORDER", "paymentMethod"),
    "unknown user": ({"userId": str(uuid.uuid4())}, "UNKNOWN_USER", "userId"),
    "user id of another type": (
        {"userId": to_base64("Plan", str(uuid.uuid4()))},
        "UNKNOWN_USER",
        "userId",
    ),
    "user id that is no id": ({"userId": "nobody"}, "UNKNOWN_USER", "userId"),
    "data over 4 KB": ({"data": {"blob": "x" * 4100}}, "INVALID_DATA", "data"),
    "data that is not an object": ({"data": ["a", "b"]}, "INVALID_DATA", "data"),
    "data nested 300 levels (1.9 KB)": ({"data": nested(300)}, "INVALID_DATA", "data"),
    "data with lists nested 300 levels": (
        {"data": {"list": nested(299, lists=True)}},
        "INVALID_DATA",
        "data",
    ),
    "data nested one level too deep": ({"data": nested(33)}, "INVALID_DATA", "data"),
    "naive createdAt": (
        {"createdAt": CREATED.replace(tzinfo=None).isoformat()},
        "INVALID_ORDER",
        "createdAt",
    ),
    "naive completedAt": (
        {"completedAt": COMPLETED.replace(tzinfo=None).isoformat()},
        "INVALID_ORDER",
        "completedAt",
    ),
}


@pytest.mark.parametrize(("changes", "code", "field"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
async def test_bad_input_names_the_field_and_changes_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    user: User,
    service: str,
    changes: dict[str, Any],
    code: str,
    field: str,
) -> None:
    before = await row_counts(runtime)
    payload = await record(client, service, order_input(user.id, **changes))
    assert payload["outcome"] is None
    assert payload["order"] is None
    assert errors_of(payload) == [(code, field)]
    assert payload["errors"][0]["message"]
    assert await row_counts(runtime) == before


async def test_data_nested_32_levels_is_accepted(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    payload = await record(client, service, order_input(user.id, data=nested(32)))
    assert (payload["outcome"], payload["errors"]) == ("NEW", [])
    row = await stored(runtime, "ride-1001")
    assert row is not None and row.data == nested(32)


LITERAL_DATA = """
mutation {{
  orderRecord(input: {{
    orderId: "ride-literal", userId: "{user}", createdAt: "{created}", completedAt: "{completed}",
    status: COMPLETE, price: {{amountMinor: 100, currency: "RUB"}}, cityTimezone: "Europe/Moscow",
    data: {data}
  }}) {{ outcome errors {{ code field message }} }}
}}
"""
LITERALS = {
    "an integer beyond 64 bits": "{n: 123456789012345678901234567890}",
    "an infinite number": "{n: 1e999}",
    "150 levels": "{a: " * 150 + "1" + "}" * 150,
}


@pytest.mark.parametrize("data", LITERALS.values(), ids=LITERALS.keys())
async def test_data_written_as_a_graphql_literal_is_checked_too(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str, data: str
) -> None:
    """A literal reaches the service as Python values JSON can't carry (ints of any size)."""
    document = LITERAL_DATA.format(
        user=user.id, created=CREATED.isoformat(), completed=COMPLETED.isoformat(), data=data
    )
    before = await row_counts(runtime)
    body = await gql(client, document, token=service)
    assert "errors" not in body, body
    assert errors_of(body["data"]["orderRecord"]) == [("INVALID_DATA", "data")]
    assert await row_counts(runtime) == before


async def test_the_longest_order_id_and_a_zero_price_are_accepted(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    order_id = "A" + "b.c_d:e-" * 7 + "fghijkl"
    assert len(order_id) == 64
    payload = await record(
        client,
        service,
        order_input(user.id, orderId=order_id, price={"amountMinor": 0, "currency": "EUR"}),
    )
    assert (payload["outcome"], payload["errors"]) == ("NEW", [])
    row = await stored(runtime, order_id)
    assert row is not None and (row.price_minor, row.currency) == (0, "EUR")


async def test_a_price_beyond_graphql_int_is_a_request_error(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    before = await row_counts(runtime)
    body = await gql(
        client,
        ORDER_RECORD,
        order_input(user.id, price={"amountMinor": 2**31, "currency": "RUB"}),
        token=service,
    )
    assert body.get("data") is None
    assert "amountMinor" in body["errors"][0]["message"]
    assert await row_counts(runtime) == before


async def test_a_deleted_users_order_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    deleted = await gql(
        client,
        ACCOUNT_DELETE,
        {"input": {"password": PASSWORD}},
        token=await access_token(runtime, user),
    )
    assert deleted["data"]["accountDelete"]["errors"] == []
    before = await row_counts(runtime)

    payload = await record(client, service, order_input(user.id))
    assert errors_of(payload) == [("UNKNOWN_USER", "userId")]
    assert await row_counts(runtime) == before


async def test_a_blocked_users_order_is_still_recorded(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    """Blocking stops the user signing in; their rides still happened."""
    async with runtime.session_factory() as session, session.begin():
        await session.execute(
            update(User).where(User.id == user.id).values(status=UserStatus.BLOCKED)
        )
    payload = await record(client, service, order_input(user.id))
    assert (payload["outcome"], payload["errors"]) == ("NEW", [])


# ---- callers and ids --------------------------------------------------------------------------


async def test_user_id_may_be_a_raw_uuid_or_a_user_global_id(
    client: httpx.AsyncClient, runtime: Runtime, user: User, service: str
) -> None:
    raw = await record(client, service, order_input(user.id, orderId="by-uuid"))
    global_id = await record(
        client, service, order_input(to_base64("User", str(user.id)), orderId="by-global-id")
    )
    assert (raw["outcome"], global_id["outcome"]) == ("NEW", "NEW")
    for order_id in ("by-uuid", "by-global-id"):
        row = await stored(runtime, order_id)
        assert row is not None and row.user_id == user.id


async def test_a_user_token_is_forbidden_and_writes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, user: User
) -> None:
    before = await row_counts(runtime)
    body = await gql(
        client, ORDER_RECORD, order_input(user.id), token=await access_token(runtime, user)
    )
    assert body["data"] is None
    assert error_codes(body) == ["FORBIDDEN"]
    assert await row_counts(runtime) == before
    assert await stored(runtime, "ride-1001") is None


async def test_an_anonymous_caller_is_unauthenticated(
    client: httpx.AsyncClient, runtime: Runtime, user: User
) -> None:
    before = await row_counts(runtime)
    body = await gql(client, ORDER_RECORD, order_input(user.id))
    assert body["data"] is None
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert await row_counts(runtime) == before


async def test_an_order_from_the_future_is_refused(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    token = await service_token(runtime)
    user = await create_user(runtime)
    later = utcnow() + timedelta(minutes=10)
    before = await row_counts(runtime)
    body = await gql(
        client,
        ORDER_RECORD_FUTURE,
        {
            "input": {
                "orderId": "future-1",
                "userId": str(user.id),
                "createdAt": later.isoformat(),
                "completedAt": (later + timedelta(minutes=1)).isoformat(),
                "status": "COMPLETE",
                "rideClass": "comfort",
                "price": {"amountMinor": 100, "currency": "RUB"},
                "cityTimezone": "Europe/Moscow",
            }
        },
        token=token,
    )
    errors = body["data"]["orderRecord"]["errors"]
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_ORDER", "createdAt")]
    assert await row_counts(runtime) == before


ORDER_RECORD_FUTURE = """
mutation R($input: OrderRecordInput!) {
  orderRecord(input: $input) { outcome errors { code field message } }
}"""
