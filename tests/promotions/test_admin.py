"""Promotions, admin side over the API (both backends): create and edit promotions, the geo
config, lists; every refusal names the field and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from strawberry.relay import to_base64

from app.models.identity import Role
from app.runtime import Runtime
from tests.factories.identity import access_token, create_user
from tests.factories.promotions import create_promotion
from tests.helpers import error_codes, gql, row_counts

FIELDS = """
  id key title targetRides minRideAmount { amountMinor currency } challengeDays claimDays
  conditions reward { productId amount { amountMinor currency } repaymentRate } active
"""
CREATE = f"""
mutation Create($input: PromotionCreateInput!) {{
  promotionCreate(input: $input) {{ promotion {{ {FIELDS} }} errors {{ code field message }} }}
}}"""
UPDATE = f"""
mutation Update($input: PromotionUpdateInput!) {{
  promotionUpdate(input: $input) {{ promotion {{ {FIELDS} }} errors {{ code field message }} }}
}}"""
REGION_SET = """
mutation Region($input: PromotionRegionSetInput!) {
  promotionRegionSet(input: $input) {
    region { region promotionsEnabled updatedBy } errors { code field }
  }
}"""
LISTS = "query { promotions { key } promotionRegions { region promotionsEnabled } }"


def promotion_input(**changes: Any) -> dict[str, Any]:
    return {
        "key": "newcomer-mx",
        "title": "Take 5 rides in 14 days",
        "targetRides": 5,
        "minRideAmountMinor": 5_000,
        "currency": "MXN",
        "reward": {"productId": 80, "amountMinor": 100_000, "repaymentRate": "15.0"},
        **changes,
    }


async def admin_token(runtime: Runtime) -> str:
    return await access_token(runtime, await create_user(runtime, roles=(Role.USER, Role.ADMIN)))


def gid(promotion_id: object) -> str:
    return to_base64("Promotion", str(promotion_id))


async def test_an_admin_creates_a_promotion_with_the_defaults(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    body = await gql(client, CREATE, {"input": promotion_input()}, token=await admin_token(runtime))
    payload = body["data"]["promotionCreate"]
    assert payload["errors"] == []
    promotion = payload["promotion"]
    assert promotion | {"id": None} == {
        "id": None,
        "key": "newcomer-mx",
        "title": "Take 5 rides in 14 days",
        "targetRides": 5,
        "minRideAmount": {"amountMinor": 5_000, "currency": "MXN"},
        "challengeDays": 14,
        "claimDays": 7,
        "conditions": {},
        "reward": {
            "productId": 80,
            "amount": {"amountMinor": 100_000, "currency": "MXN"},
            "repaymentRate": "15",
        },
        "active": True,
    }
    lists = await gql(client, LISTS, token=await admin_token(runtime))
    assert lists["data"]["promotions"] == [{"key": "newcomer-mx"}]


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"key": "Bad Key"}, "INVALID_KEY", "key"),
        ({"key": ""}, "INVALID_KEY", "key"),
        ({"title": "  "}, "INVALID_TITLE", "title"),
        ({"title": "x" * 201}, "INVALID_TITLE", "title"),
        ({"targetRides": 0}, "INVALID_TARGET", "targetRides"),
        ({"targetRides": 1001}, "INVALID_TARGET", "targetRides"),
        ({"minRideAmountMinor": -1}, "INVALID_AMOUNT", "minRideAmount"),
        ({"currency": "mxn"}, "INVALID_CURRENCY", "currency"),
        ({"currency": "XXX"}, "INVALID_CURRENCY", "currency"),
        ({"challengeDays": 0}, "INVALID_DAYS", "challengeDays"),
        ({"claimDays": 366}, "INVALID_DAYS", "claimDays"),
        (
            {"reward": {"productId": 0, "amountMinor": 1, "repaymentRate": "1"}},
            "INVALID_PRODUCT",
            "reward.productId",
        ),
        (
            {"reward": {"productId": 1, "amountMinor": 0, "repaymentRate": "1"}},
            "INVALID_AMOUNT",
            "reward.amount",
        ),
        (
            {"reward": {"productId": 1, "amountMinor": -5, "repaymentRate": "1"}},
            "INVALID_AMOUNT",
            "reward.amount",
        ),
        (
            {"reward": {"productId": 1, "amountMinor": 1, "repaymentRate": "0"}},
            "INVALID_RATE",
            "reward.repaymentRate",
        ),
        (
            {"reward": {"productId": 1, "amountMinor": 1, "repaymentRate": "101"}},
            "INVALID_RATE",
            "reward.repaymentRate",
        ),
        (
            {"reward": {"productId": 1, "amountMinor": 1, "repaymentRate": "1.005"}},
            "INVALID_RATE",
            "reward.repaymentRate",
        ),
        (
            {"reward": {"productId": 1, "amountMinor": 1, "repaymentRate": "NaN"}},
            "INVALID_RATE",
            "reward.repaymentRate",
        ),
        (
            {"reward": {"productId": 1, "amountMinor": 1, "repaymentRate": "fifteen"}},
            "INVALID_RATE",
            "reward.repaymentRate",
        ),
        ({"conditions": [1, 2]}, "INVALID_CONDITIONS", "conditions"),
        ({"conditions": {"note": "x" * 5000}}, "INVALID_CONDITIONS", "conditions"),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, changes: dict[str, Any], code: str, field: str
) -> None:
    token = await admin_token(runtime)
    before = await row_counts(runtime)
    body = await gql(client, CREATE, {"input": promotion_input(**changes)}, token=token)
    payload = body["data"]["promotionCreate"]
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert payload["promotion"] is None
    assert await row_counts(runtime) == before


async def test_a_taken_key_is_refused(client: httpx.AsyncClient, runtime: Runtime) -> None:
    token = await admin_token(runtime)
    await gql(client, CREATE, {"input": promotion_input()}, token=token)
    before = await row_counts(runtime)
    again = await gql(client, CREATE, {"input": promotion_input(title="Other")}, token=token)
    assert [e["code"] for e in again["data"]["promotionCreate"]["errors"]] == ["KEY_TAKEN"]
    assert await row_counts(runtime) == before


async def test_an_update_changes_what_it_names_and_keeps_the_rest(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    promotion = await create_promotion(runtime)
    data = {"id": gid(promotion.id), "targetRides": 7, "active": False}
    body = await gql(client, UPDATE, {"input": data}, token=await admin_token(runtime))
    payload = body["data"]["promotionUpdate"]
    assert payload["errors"] == []
    assert (payload["promotion"]["targetRides"], payload["promotion"]["active"]) == (7, False)
    assert payload["promotion"]["title"] == promotion.title
    assert payload["promotion"]["key"] == promotion.key


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        ({"id": "not-an-id"}, "NOT_FOUND", "id"),
        ({"id": to_base64("Plan", "00000000-0000-0000-0000-000000000000")}, "NOT_FOUND", "id"),
        ({"id": gid("00000000-0000-0000-0000-000000000000")}, "NOT_FOUND", "id"),
        ({"targetRides": -3}, "INVALID_TARGET", "targetRides"),
        (
            {"reward": {"productId": 1, "amountMinor": 1, "repaymentRate": "-1"}},
            "INVALID_RATE",
            "reward.repaymentRate",
        ),
    ],
)
async def test_a_bad_update_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, data: dict[str, Any], code: str, field: str
) -> None:
    promotion = await create_promotion(runtime)
    token = await admin_token(runtime)
    before = await row_counts(runtime)
    body = await gql(client, UPDATE, {"input": {"id": gid(promotion.id)} | data}, token=token)
    payload = body["data"]["promotionUpdate"]
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert await row_counts(runtime) == before


async def test_the_geo_flag_is_set_normalised_and_set_again(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = await admin_token(runtime)
    first = await gql(
        client, REGION_SET, {"input": {"region": " mx-cmx ", "enabled": True}}, token=token
    )
    assert first["data"]["promotionRegionSet"]["region"]["region"] == "MX-CMX"
    await gql(client, REGION_SET, {"input": {"region": "MX-CMX", "enabled": False}}, token=token)
    lists = await gql(client, LISTS, token=token)
    assert lists["data"]["promotionRegions"] == [{"region": "MX-CMX", "promotionsEnabled": False}]


@pytest.mark.parametrize("region", ["", "M", "MEX", "12", "MX-", "MX-ABCD", "MX_CMX"])
async def test_a_bad_region_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, region: str
) -> None:
    token = await admin_token(runtime)
    before = await row_counts(runtime)
    body = await gql(
        client, REGION_SET, {"input": {"region": region, "enabled": True}}, token=token
    )
    errors = body["data"]["promotionRegionSet"]["errors"]
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_REGION", "region")]
    assert await row_counts(runtime) == before


async def test_a_user_gets_nothing_of_the_admin_surface(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await create_promotion(runtime)
    user_token = await access_token(runtime, await create_user(runtime))
    before = await row_counts(runtime)
    body = await gql(client, CREATE, {"input": promotion_input()}, token=user_token)
    assert error_codes(body) == ["FORBIDDEN"]
    lists = await gql(client, LISTS, token=user_token)
    assert error_codes(lists) == ["FORBIDDEN"] and lists["data"] is None
    assert await row_counts(runtime) == before
