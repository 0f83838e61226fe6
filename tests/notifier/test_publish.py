"""`corpClientUpsert` and `corpEventPublish` over the API (both backends): who may call them,
every bad input refused with its field and nothing changed, a key published twice one event,
and the client's state moving only forward."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.models.outbox import OutboxMessage
from app.runtime import Runtime
from tests.factories.identity import access_token, create_user, service_token
from tests.factories.notifier import client_row, create_client, events_of, load_catalog
from tests.helpers import error_codes, gql, row_counts
from tests.promotions.test_admin import admin_token

UPSERT = """
mutation Upsert($input: CorpClientInput!) {
  corpClientUpsert(input: $input) {
    client { clientId name emails contractType balance { amountMinor currency } locale timezone }
    errors { code field message }
  }
}"""
PUBLISH = """
mutation Publish($input: CorpEventPublishInput!) {
  corpEventPublish(input: $input) { eventId duplicate errors { code field message } }
}"""


BAL, ACT, RIDE = "BALANCE_CHANGED", "CONTRACT_ACTIVATED", "RIDE_TAKEN"
RUB = {"currency": "RUB"}


def client_input(**fields: Any) -> dict[str, Any]:
    return {
        "clientId": "corp-42",
        "name": "Acme Logistics",
        "emails": ["Finance@Acme.example.com", "ceo@acme.example.com"],
        "contractType": "PREPAID",
        "currency": "RUB",
        "lowBalanceThresholdMinor": 500_000,
        "locale": "en",
        "timezone": "Asia/Yekaterinburg",
    } | fields


def event_input(client_id: str, type_: str, payload: Any, **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "clientId": client_id,
        "payload": payload,
        "idempotencyKey": uuid.uuid4().hex,
    } | fields


async def _call(
    client: httpx.AsyncClient, query: str, data: dict[str, Any], token: str, field: str
) -> dict[str, Any]:
    body = await gql(client, query, {"input": data}, token=token)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"][field]
    return payload


async def test_a_service_registers_a_client_and_registering_again_updates_it(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = await service_token(runtime)
    first = await _call(client, UPSERT, client_input(), token, "corpClientUpsert")
    assert first["errors"] == []
    assert first["client"] == {
        "clientId": "corp-42",
        "name": "Acme Logistics",
        "emails": ["finance@acme.example.com", "ceo@acme.example.com"],
        "contractType": "PREPAID",
        "balance": {"amountMinor": 0, "currency": "RUB"},
        "locale": "en",
        "timezone": "Asia/Yekaterinburg",
    }
    again = await _call(
        client, UPSERT, client_input(name="Acme", balanceMinor=700), token, "corpClientUpsert"
    )
    assert again["client"]["name"] == "Acme"
    assert again["client"]["balance"]["amountMinor"] == 700
    counts = await row_counts(runtime)
    assert counts["corp_clients"] == 1


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"clientId": ""}, "INVALID_CLIENT_ID", "clientId"),
        ({"clientId": "a b"}, "INVALID_CLIENT_ID", "clientId"),
        ({"clientId": "x" * 65}, "INVALID_CLIENT_ID", "clientId"),
        ({"name": "  "}, "INVALID_NAME", "name"),
        ({"name": "a\nb"}, "INVALID_NAME", "name"),
        ({"emails": []}, "INVALID_EMAIL", "emails"),
        ({"emails": ["ok@acme.example.com", "not-an-email"]}, "INVALID_EMAIL", "emails[1]"),
        ({"emails": [f"u{i}@acme.example.com" for i in range(11)]}, "INVALID_EMAIL", "emails"),
        ({"currency": "rub"}, "INVALID_CURRENCY", "currency"),
        ({"lowBalanceThresholdMinor": -1}, "INVALID_AMOUNT", "lowBalanceThresholdMinor"),
        ({"balanceMinor": -2_000_000_001}, "INVALID_AMOUNT", "balanceMinor"),
        ({"locale": "de"}, "INVALID_LOCALE", "locale"),
        ({"timezone": "Mars/Olympus"}, "INVALID_TIMEZONE", "timezone"),
    ],
)
async def test_a_bad_client_is_refused_naming_the_field(
    client: httpx.AsyncClient, runtime: Runtime, fields: dict[str, Any], code: str, field: str
) -> None:
    token = await service_token(runtime)
    before = await row_counts(runtime)
    payload = await _call(client, UPSERT, client_input(**fields), token, "corpClientUpsert")
    assert payload["client"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert await row_counts(runtime) == before


async def test_users_and_strangers_can_not_register_or_publish(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    corp = await create_client(runtime)
    user_token = await access_token(runtime, await create_user(runtime))
    admin = await admin_token(runtime)
    before = await row_counts(runtime)
    for token, code in ((user_token, "FORBIDDEN"), (None, "UNAUTHENTICATED")):
        body = await gql(client, UPSERT, {"input": client_input()}, token=token)
        assert error_codes(body) == [code] and body["data"] is None
        event = event_input(
            corp.external_id, "RIDE_TAKEN", {"orderId": "o1", "takenAt": "2026-12-01T10:00:00Z"}
        )
        body = await gql(client, PUBLISH, {"input": event}, token=token)
        assert error_codes(body) == [code] and body["data"] is None
    body = await gql(client, PUBLISH, {"input": event}, token=admin)  # publishing is SERVICE's
    assert error_codes(body) == ["FORBIDDEN"]
    assert await row_counts(runtime) == before


async def test_an_event_is_stored_and_its_handling_enqueued(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    corp = await create_client(runtime)
    token = await service_token(runtime)
    data = event_input(
        corp.external_id, "BALANCE_CHANGED", {"balanceMinor": 1200, "currency": "RUB"}
    )
    payload = await _call(client, PUBLISH, data, token, "corpEventPublish")
    assert payload["errors"] == [] and payload["duplicate"] is False
    [event] = await events_of(runtime, corp)
    assert str(event.id) == payload["eventId"]
    assert event.payload == {"balanceMinor": 1200, "currency": "RUB"}
    assert event.handled_at is None
    async with runtime.session_factory() as session:
        jobs = (await session.scalars(select(OutboxMessage))).all()
    assert [(job.actor, job.kwargs) for job in jobs] == [
        ("notifier.handle_event", {"event_id": payload["eventId"]})
    ]
    assert (await client_row(runtime, corp)).balance_minor == 1200


async def test_the_same_key_twice_is_one_event_and_other_content_is_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    corp = await create_client(runtime)
    token = await service_token(runtime)
    data = event_input(
        corp.external_id, "BALANCE_CHANGED", {"balanceMinor": 1200, "currency": "RUB"}
    )
    first = await _call(client, PUBLISH, data, token, "corpEventPublish")
    before = await row_counts(runtime)
    again = await _call(client, PUBLISH, data, token, "corpEventPublish")
    assert again == {"eventId": first["eventId"], "duplicate": True, "errors": []}
    changed = data | {"payload": {"balanceMinor": 1300, "currency": "RUB"}}
    refused = await _call(client, PUBLISH, changed, token, "corpEventPublish")
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [
        ("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")
    ]
    assert await row_counts(runtime) == before
    assert (await client_row(runtime, corp)).balance_minor == 1200


@pytest.mark.parametrize(
    ("type_", "payload", "code", "field"),
    [
        ("BALANCE_GONE", {}, "UNKNOWN_EVENT_TYPE", "type"),
        ("balance_changed", {}, "UNKNOWN_EVENT_TYPE", "type"),
        (BAL, {**RUB}, "MISSING_FIELD", "~balanceMinor"),
        (BAL, {"balanceMinor": None, **RUB}, "MISSING_FIELD", "~balanceMinor"),
        (BAL, {"balanceMinor": "12", **RUB}, "INVALID_FIELD", "~balanceMinor"),
        (BAL, {"balanceMinor": 1.5, **RUB}, "INVALID_FIELD", "~balanceMinor"),
        (BAL, {"balanceMinor": True, **RUB}, "INVALID_FIELD", "~balanceMinor"),
        (BAL, {"balanceMinor": 10**12, **RUB}, "INVALID_FIELD", "~balanceMinor"),
        (BAL, {"balanceMinor": 1, "currency": "XXX"}, "INVALID_FIELD", "~currency"),
        (BAL, {"balanceMinor": 1, **RUB, "balanceMinr": 2}, "INVALID_FIELD", "~balanceMinr"),
        (BAL, [1, 2], "INVALID_FIELD", "payload"),
        (BAL, "text", "INVALID_FIELD", "payload"),
        (ACT, {"contractType": "PREPAID", "service": "BUS"}, "INVALID_FIELD", "~service"),
        (ACT, {"contractType": "prepaid", "service": "TAXI"}, "INVALID_FIELD", "~contractType"),
        ("CLIENT_CREATED_BY_OFFER", {}, "MISSING_FIELD", "~contractType"),
        ("RIDE_TAKEN", {"orderId": "o1", "takenAt": "yesterday"}, "INVALID_FIELD", "~takenAt"),
        (RIDE, {"orderId": "o1", "takenAt": "2026-12-01T10:00:00"}, "INVALID_FIELD", "~takenAt"),
        (RIDE, {"orderId": "", "takenAt": "2026-12-01T10:00:00Z"}, "INVALID_FIELD", "~orderId"),
        ("PAYMENT_RECEIVED", {"amountMinor": 100}, "MISSING_FIELD", "~currency"),
        ("LIMIT_REACHED", {"limitMinor": 1, "currency": 643}, "INVALID_FIELD", "~currency"),
    ],
)  # fmt: skip
async def test_a_bad_event_is_refused_naming_the_field(
    client: httpx.AsyncClient,
    runtime: Runtime,
    type_: str,
    payload: Any,
    code: str,
    field: str,
) -> None:
    corp = await create_client(runtime)
    token = await service_token(runtime)
    before = await row_counts(runtime)
    data = event_input(corp.external_id, type_, payload)
    result = await _call(client, PUBLISH, data, token, "corpEventPublish")
    assert result["eventId"] is None
    assert [(e["code"], e["field"]) for e in result["errors"]] == [
        (code, field.replace("~", "payload."))
    ]
    assert await row_counts(runtime) == before


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"clientId": "corp-nobody"}, "UNKNOWN_CLIENT", "clientId"),
        ({"clientId": "not valid!"}, "INVALID_CLIENT_ID", "clientId"),
        ({"idempotencyKey": ""}, "INVALID_IDEMPOTENCY_KEY", "idempotencyKey"),
        ({"idempotencyKey": "k" * 101}, "INVALID_IDEMPOTENCY_KEY", "idempotencyKey"),
        ({"occurredAt": "2099-01-01T00:00:00+00:00"}, "INVALID_FIELD", "occurredAt"),
    ],
)
async def test_a_bad_envelope_is_refused_naming_the_field(
    client: httpx.AsyncClient, runtime: Runtime, fields: dict[str, Any], code: str, field: str
) -> None:
    corp = await create_client(runtime)
    token = await service_token(runtime)
    before = await row_counts(runtime)
    data = event_input(corp.external_id, "PAYMENT_RECEIVED", {"amountMinor": 1, "currency": "RUB"})
    result = await _call(client, PUBLISH, data | fields, token, "corpEventPublish")
    assert [(e["code"], e["field"]) for e in result["errors"]] == [(code, field)]
    assert await row_counts(runtime) == before


async def test_the_client_state_only_moves_forward(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    corp = await create_client(runtime, balance_minor=None)  # no registered balance
    token = await service_token(runtime)
    now = datetime.now(UTC).replace(microsecond=0)
    newer, older = now - timedelta(minutes=1), now - timedelta(hours=1)

    async def publish(type_: str, payload: dict[str, Any], at: datetime) -> None:
        data = event_input(corp.external_id, type_, payload, occurredAt=at.isoformat())
        assert (await _call(client, PUBLISH, data, token, "corpEventPublish"))["errors"] == []

    await publish("BALANCE_CHANGED", {"balanceMinor": 900, "currency": "RUB"}, newer)
    await publish("BALANCE_CHANGED", {"balanceMinor": 100, "currency": "RUB"}, older)  # late
    ride = {"orderId": "o2", "takenAt": newer.isoformat()}
    await publish("RIDE_TAKEN", ride, newer)
    await publish("RIDE_TAKEN", {"orderId": "o1", "takenAt": older.isoformat()}, older)
    await publish("RIDE_TAKEN", {"orderId": "o3", "takenAt": now.isoformat()}, now)
    await publish("CONTRACT_ACTIVATED", {"contractType": "PREPAID", "service": "TAXI"}, newer)
    await publish("CONTRACT_ACTIVATED", {"contractType": "PREPAID", "service": "TAXI"}, now)
    await publish("PAYMENT_RECEIVED", {"amountMinor": 5, "currency": "RUB"}, now)
    await publish("PAYMENT_RECEIVED", {"amountMinor": 5, "currency": "RUB"}, older)
    row = await client_row(runtime, corp)
    assert row.balance_minor == 900 and row.balance_as_of == newer
    assert row.first_ride_at == older  # the earliest ride, whatever the order of arrival
    assert row.activated_at == newer
    assert row.last_payment_at == now


async def test_the_catalog_loads_once_per_version(runtime: Runtime) -> None:
    first = await load_catalog(runtime)
    assert first.loaded and len([c for c in first.created if c.startswith("notice:")]) == 13
    assert len([c for c in first.created if c.startswith("template:")]) == 26
    assert len([c for c in first.created if c.startswith("rule:")]) == 9
    before = await row_counts(runtime)
    again = await load_catalog(runtime)
    assert not again.loaded
    assert await row_counts(runtime) == before
