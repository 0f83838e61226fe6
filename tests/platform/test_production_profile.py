"""The production profile: introspection off, only unexpected errors masked."""

from __future__ import annotations

import httpx

from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from tests.conftest import TEST_JWT_SECRET, make_client
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
