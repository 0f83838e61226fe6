"""Who bought a purchase: visible to the buyer and admins, hidden from services."""

from __future__ import annotations

import httpx
from strawberry.relay import to_base64

from app.models.identity import Role
from app.runtime import Runtime
from app.services.promocodes.attempts import Caller
from app.services.promocodes.purchases import create_purchase
from tests.factories.identity import access_token, create_user, service_token
from tests.factories.promocodes import create_plan
from tests.helpers import gql

NODE = "query N($id: ID!) { node(id: $id) { ... on Purchase { buyer { email } } } }"


async def test_buyer_is_shown_to_the_buyer_and_admins_only(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    buyer = await create_user(runtime, "buyer@example.com")
    admin = await create_user(runtime, "boss@example.com", roles=(Role.USER, Role.ADMIN))
    plan = await create_plan(runtime, "m", name="Monthly", price_minor=100)
    async with runtime.session_factory() as session, session.begin():
        purchase, _ = await create_purchase(
            session,
            Caller(buyer),
            plan_id=plan.id,
            code=None,
            idempotency_key=None,
            settings=runtime.settings,
        )
    node_id = to_base64("Purchase", str(purchase.id))
    expected = {"buyer": {"email": "buyer@example.com"}}
    for token in (await access_token(runtime, buyer), await access_token(runtime, admin)):
        body = await gql(client, NODE, {"id": node_id}, token=token)
        assert body["data"]["node"] == expected, body
    as_service = await gql(client, NODE, {"id": node_id}, token=await service_token(runtime))
    assert as_service["data"]["node"] == {"buyer": None}
