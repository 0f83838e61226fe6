"""Sibling fields resolve concurrently and share the request's session."""

from __future__ import annotations

import httpx

from app.runtime import Runtime
from tests.factories.identity import access_token, create_user
from tests.factories.promocodes import create_plan
from tests.helpers import gql

SIBLINGS = """
query {
  plans { slug }
  viewer {
    user { email }
    promocodes { code }
    purchases(first: 5) { edges { node { id } } }
  }
  again: plans { slug }
}
"""


async def test_root_and_nested_siblings_share_one_session(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await create_plan(runtime, "monthly", price_minor=100)
    user = await create_user(runtime, "siblings@example.com")
    body = await gql(client, SIBLINGS, token=await access_token(runtime, user))
    assert "errors" not in body, body
    assert body["data"]["plans"] == body["data"]["again"] == [{"slug": "monthly"}]
    assert body["data"]["viewer"]["user"]["email"] == "siblings@example.com"
    assert body["data"]["viewer"]["purchases"]["edges"] == []
