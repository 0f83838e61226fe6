"""Importing pre-offers over the API (both backends): an outcome per row, the bad rows
refused with their reason and field while the good ones go in, re-imports changing nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from app.models.promotions import PreOffer
from app.runtime import Runtime
from tests.factories.identity import access_token, create_user, service_token
from tests.factories.promotions import create_promotion
from tests.helpers import error_codes, gql, row_counts
from tests.promotions.test_admin import admin_token

IMPORT = """
mutation Import($rows: [PreOfferInput!]!) {
  promotionPreOffersImport(input: {rows: $rows}) {
    rows { index outcome preOfferId reason field }
    created
    errors { code field }
  }
}"""


def row(user_id: object, key: str, **fields: Any) -> dict[str, Any]:
    return {"userId": str(user_id), "promotionKey": key, "region": "MX", **fields}


async def _import(
    client: httpx.AsyncClient, token: str, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    body = await gql(client, IMPORT, {"rows": rows}, token=token)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["promotionPreOffersImport"]
    return payload


async def _pre_offers(runtime: Runtime) -> list[PreOffer]:
    async with runtime.session_factory() as session:
        return list(await session.scalars(select(PreOffer).order_by(PreOffer.created_at)))


async def test_each_row_gets_its_outcome_and_the_good_rows_go_in(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    promotion = await create_promotion(runtime)
    users = [await create_user(runtime) for _ in range(3)]
    token = await service_token(runtime)  # scoring pushes them
    rows = [
        row(users[0].id, promotion.key),
        row(users[1].id, "no-such-key"),
        row(users[1].id, promotion.key, currency="mxn"),
        row(users[1].id, promotion.key, amountMinor=-100),
        row(users[1].id, promotion.key, repaymentRate="200"),
        row(users[1].id, promotion.key, region="Mexico"),
        row("not-a-uuid", promotion.key),
        row(uuid.uuid4(), promotion.key),
        row(users[0].id, promotion.key),  # the same user and key again in this import
        row(users[2].id, f"  {promotion.key} ", amountMinor=50_000, currency="USD",
            repaymentRate="12.50", region="mx-cmx"),
    ]  # fmt: skip
    payload = await _import(client, token, rows)
    assert payload["errors"] == [] and payload["created"] == 2
    assert [(r["index"], r["outcome"], r["reason"], r["field"]) for r in payload["rows"]] == [
        (0, "CREATED", None, None),
        (1, "REJECTED", "UNKNOWN_PROMOTION", "promotionKey"),
        (2, "REJECTED", "INVALID_CURRENCY", "currency"),
        (3, "REJECTED", "INVALID_AMOUNT", "amount"),
        (4, "REJECTED", "INVALID_RATE", "repaymentRate"),
        (5, "REJECTED", "INVALID_REGION", "region"),
        (6, "REJECTED", "UNKNOWN_USER", "userId"),
        (7, "REJECTED", "UNKNOWN_USER", "userId"),
        (8, "REJECTED", "DUPLICATE_USER", "userId"),
        (9, "CREATED", None, None),
    ]
    stored = await _pre_offers(runtime)
    assert {(p.user_id, p.promotion_id) for p in stored} == {
        (users[0].id, promotion.id),
        (users[2].id, promotion.id),
    }
    terms = next(p for p in stored if p.user_id == users[2].id)
    assert (terms.region, terms.amount_minor, terms.currency, terms.repayment_rate) == (
        "MX-CMX",
        50_000,
        "USD",
        "12.5",
    )


async def test_a_re_import_changes_nothing_and_other_terms_are_a_conflict(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    promotion = await create_promotion(runtime)
    user = await create_user(runtime)
    token = await admin_token(runtime)
    first = await _import(client, token, [row(user.id, promotion.key, amountMinor=70_000)])
    before = await row_counts(runtime)
    again = await _import(
        client,
        token,
        [row(user.id, promotion.key, amountMinor=70_000), row(user.id, promotion.key)],
    )
    assert [(r["outcome"], r["reason"]) for r in again["rows"]] == [
        ("UNCHANGED", None),
        ("REJECTED", "DUPLICATE_USER"),
    ]
    assert again["rows"][0]["preOfferId"] == first["rows"][0]["preOfferId"]
    conflict = await _import(client, token, [row(user.id, promotion.key, amountMinor=1)])
    assert [(r["outcome"], r["reason"]) for r in conflict["rows"]] == [("REJECTED", "CONFLICT")]
    counts = await row_counts(runtime)
    assert {k: v for k, v in counts.items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"
    }
    [stored] = await _pre_offers(runtime)
    assert stored.amount_minor == 70_000


async def test_an_import_over_the_limit_is_refused_whole(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    promotion = await create_promotion(runtime)
    user = await create_user(runtime)
    token = await admin_token(runtime)
    before = await row_counts(runtime)
    payload = await _import(client, token, [row(user.id, promotion.key)] * 1001)
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("TOO_MANY_ROWS", "rows")]
    assert payload["rows"] == [] and payload["created"] == 0
    assert await row_counts(runtime) == before


async def test_a_user_may_not_import(client: httpx.AsyncClient, runtime: Runtime) -> None:
    promotion = await create_promotion(runtime)
    user = await create_user(runtime)
    token = await access_token(runtime, user)
    before = await row_counts(runtime)
    body = await gql(client, IMPORT, {"rows": [row(user.id, promotion.key)]}, token=token)
    assert error_codes(body) == ["FORBIDDEN"] and body["data"] is None
    assert await row_counts(runtime) == before
