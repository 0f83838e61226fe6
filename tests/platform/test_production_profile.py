"""The production profile: introspection off, only unexpected errors masked, no suggestions."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import strawberry
from strawberry.relay import to_base64

from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from schema.extensions import build_extensions, quiet_validation_cache_info
from tests.conftest import TEST_JWT_SECRET, make_client
from tests.conftest import test_settings as make_settings
from tests.helpers import gql

INTROSPECTION = "query { __schema { queryType { name } } }"


async def test_introspection_is_off_in_production(runtime: Runtime) -> None:
    async with make_client(runtime, env="production") as client:
        body = await gql(client, INTROSPECTION)
    assert body.get("data") is None
    assert "introspection" in body["errors"][0]["message"].lower()


async def test_validation_and_auth_errors_are_not_masked(runtime: Runtime) -> None:
    async with make_client(runtime, env="production") as client:
        invalid = await gql(client, "query { nope }")
        unauthenticated = await gql(client, "query { viewer { user { id } } }")
    assert "Cannot query field 'nope'" in invalid["errors"][0]["message"]
    assert unauthenticated["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_unexpected_errors_are_masked_and_carry_the_request_id() -> None:
    # A database that refuses connections makes `login` fail in an unplanned way.
    settings = Settings(
        _env_file=None,
        ENGAGE_ENV="production",
        JWT_SECRET=TEST_JWT_SECRET,
        DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        LOG_LEVEL="CRITICAL",
    )
    runtime = Runtime.build(settings)
    transport = httpx.ASGITransport(app=create_app(settings, runtime=runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://engage.test") as client:
        response = await client.post(
            "/graphql",
            json={
                "query": 'mutation { login(input: {login: "a@b.io", password: "x"}) '
                "{ errors { code } } }"
            },
            headers={"x-request-id": "req-123"},
        )
    await runtime.close()
    body = response.json()
    assert response.headers["x-request-id"] == "req-123"
    assert body["data"] is None
    assert [e["message"] for e in body["errors"]] == ["Unexpected error."]
    assert "127.0.0.1" not in response.text


# ---- no suggestions: with introspection off, "Did you mean …?" would map the schema ------------

MISSPELT: dict[str, tuple[str, dict[str, Any] | None]] = {
    "a field": ("query { usrs { totalCount } }", None),
    "an argument": ("query { users(frist: 1) { edges { cursor } } }", None),
    "a type": ("query Q($x: Strin) { __typename }", None),
    "a fragment's type": ('query { node(id: "x") { ... on Usr { id } } }', None),
    "an enum value": ("query { goalTemplates(status: ACTIV) { edges { cursor } } }", None),
    "an input field": ('mutation { orderRecord(input: {ordrId: "x"}) { outcome } }', None),
    "an enum value in a variable": (
        "query Q($s: GoalTemplateStatus) { goalTemplates(status: $s) { edges { cursor } } }",
        {"s": "ACTIV"},
    ),
    "an input field in a variable": (
        "mutation M($i: OrderRecordInput!) { orderRecord(input: $i) { outcome } }",
        {"i": {"ordrId": "x"}},
    ),
}


def messages(body: dict[str, Any]) -> list[str]:
    return [error["message"] for error in body.get("errors", [])]


@pytest.mark.parametrize(("query", "variables"), MISSPELT.values(), ids=MISSPELT.keys())
async def test_production_suggests_nothing(
    runtime: Runtime, query: str, variables: dict[str, Any] | None
) -> None:
    async with make_client(runtime, env="production") as client:
        body = await gql(client, query, variables)
    assert body.get("data") is None
    assert messages(body), body
    assert not any("Did you mean" in message for message in messages(body)), body


@pytest.mark.parametrize(("query", "variables"), MISSPELT.values(), ids=MISSPELT.keys())
async def test_development_suggests(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None
) -> None:
    body = await gql(client, query, variables)
    assert any("Did you mean" in message for message in messages(body)), body


async def test_the_setting_overrides_the_profile(runtime: Runtime) -> None:
    query, variables = MISSPELT["an enum value in a variable"]
    async with make_client(runtime, env="production", graphql_suggestions=True) as client:
        shown = await gql(client, query, variables)
    async with make_client(runtime, graphql_suggestions=False) as client:
        hidden = await gql(client, query, variables)
        valid = await gql(client, "query { __typename }")
    assert any("Did you mean" in message for message in messages(shown)), shown
    assert messages(hidden) and not any("Did you mean" in m for m in messages(hidden)), hidden
    assert valid == {"data": {"__typename": "Query"}}


async def test_without_suggestions_a_valid_operation_runs_with_its_variables(
    runtime: Runtime,
) -> None:
    query = "query Q($id: ID!) { node(id: $id) { id } } "
    async with make_client(runtime, env="production") as client:
        body = await gql(client, query, {"id": to_base64("User", str(uuid.uuid4()))})
    assert body == {"data": {"node": None}}


async def test_without_suggestions_repeated_documents_hit_a_validation_cache(
    runtime: Runtime,
) -> None:
    async with make_client(runtime, env="production") as client:
        await gql(client, "query Probe { usrs }")
        before = quiet_validation_cache_info()
        for _ in range(3):
            await gql(client, "query Probe { usrs }")
        after = quiet_validation_cache_info()
    assert after.hits - before.hits == 3
    assert after.misses == before.misses


@strawberry.enum
class _Color(enum.Enum):
    GREEN = "GREEN"


@strawberry.type
class _Query:
    ok: bool = True


@strawberry.type
class _Subscription:
    @strawberry.subscription
    async def colors(self, color: _Color) -> AsyncIterator[_Color]:
        yield color


async def test_a_subscription_suggests_nothing_either() -> None:
    """Subscriptions coerce their variables on their own path (graphql-core's subscribe)."""
    settings = make_settings(ENGAGE_ENV="production")
    schema = strawberry.Schema(
        query=_Query, subscription=_Subscription, extensions=build_extensions(settings)
    )
    query = "subscription S($c: _Color!) { colors(color: $c) }"
    stream = await schema.subscribe(query, variable_values={"c": "GREN"})
    results = [result async for result in stream] if hasattr(stream, "__aiter__") else [stream]
    errors = [error for result in results for error in result.errors or []]
    assert errors, results
    assert not any("Did you mean" in error.message for error in errors), errors
