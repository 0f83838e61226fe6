"""The permission classes every later resolver uses, through the real /graphql endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import strawberry
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from app.auth import digest
from app.graphql_http import GraphQLEndpoint
from app.middleware import RequestContextMiddleware
from app.models.identity import Role, ServiceToken
from app.runtime import Runtime
from schema.permissions import IsAdmin, IsAuthenticated, IsService, IsUser
from tests.factories.identity import access_token, create_user, service_token
from tests.helpers import error_codes, gql


@strawberry.type
class GuardedQuery:
    @strawberry.field(permission_classes=[IsAuthenticated])
    def anyone_signed_in(self) -> str:
        return "ok"

    @strawberry.field(permission_classes=[IsUser])
    def user_only(self) -> str:
        return "ok"

    @strawberry.field(permission_classes=[IsAdmin])
    def admin_only(self) -> str:
        return "ok"

    @strawberry.field(permission_classes=[IsService])
    def service_only(self) -> str:
        return "ok"


@pytest.fixture
async def guarded(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    endpoint = GraphQLEndpoint(strawberry.Schema(query=GuardedQuery), runtime)
    app = Starlette(
        routes=[Route("/graphql", endpoint, methods=["GET", "POST"])],
        middleware=[Middleware(RequestContextMiddleware)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://engage.test") as client:
        yield client


FIELDS = ("anyoneSignedIn", "userOnly", "adminOnly", "serviceOnly")


async def _outcomes(client: httpx.AsyncClient, token: str | None) -> dict[str, str]:
    outcomes = {}
    for field in FIELDS:
        body = await gql(client, f"query {{ {field} }}", token=token)
        outcomes[field] = "ok" if body["data"] else error_codes(body)[0]
    return outcomes


async def test_roles_decide_what_each_caller_reaches(
    guarded: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await access_token(runtime, await create_user(runtime))
    admin = await access_token(runtime, await create_user(runtime, roles=(Role.USER, Role.ADMIN)))
    service = await service_token(runtime)
    forbidden, unauthenticated = "FORBIDDEN", "UNAUTHENTICATED"
    assert await _outcomes(guarded, None) == dict.fromkeys(FIELDS, unauthenticated)
    assert await _outcomes(guarded, user) == {
        "anyoneSignedIn": "ok",
        "userOnly": "ok",
        "adminOnly": forbidden,
        "serviceOnly": forbidden,
    }
    assert await _outcomes(guarded, admin) == {
        "anyoneSignedIn": "ok",
        "userOnly": "ok",
        "adminOnly": "ok",
        "serviceOnly": forbidden,
    }
    assert await _outcomes(guarded, service) == {
        "anyoneSignedIn": "ok",
        "userOnly": forbidden,
        "adminOnly": forbidden,
        "serviceOnly": "ok",
    }


async def test_a_revoked_or_made_up_service_token_is_refused(guarded: httpx.AsyncClient) -> None:
    body = await gql(guarded, "query { serviceOnly }", token="eng_svc_made-up")
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "reason": "INVALID"}


async def test_a_revoked_service_token_is_refused(
    guarded: httpx.AsyncClient, runtime: Runtime
) -> None:
    secret = await service_token(runtime)
    assert (await gql(guarded, "query { serviceOnly }", token=secret))["data"] == {
        "serviceOnly": "ok"
    }
    async with runtime.session_factory() as session, session.begin():
        await session.execute(
            update(ServiceToken)
            .where(ServiceToken.token_hash == digest(secret))
            .values(revoked_at=datetime.now(UTC))
        )
    body = await gql(guarded, "query { serviceOnly }", token=secret)
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "reason": "INVALID"}
