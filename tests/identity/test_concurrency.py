"""Concurrent callers on PostgreSQL: invariants hold under real parallel transactions.

These tests commit for real (each request its own connection), so they run on a runtime of
their own and empty the tables afterwards.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from app.models.identity import Group, Role, User
from app.runtime import Runtime
from tests.conftest import make_client
from tests.factories.identity import PASSWORD, access_token, create_user
from tests.helpers import gql

REGISTER = """mutation R($input: RegisterInput!) {
  register(input: $input) { user { id } errors { code } } }"""
LOGIN = """mutation L($input: LoginInput!) {
  login(input: $input) { tokens { refreshToken } errors { code } } }"""
REFRESH = """mutation F($input: TokenRefreshInput!) {
  tokenRefresh(input: $input) { tokens { refreshToken } errors { code } } }"""
GROUP_CREATE = """mutation G($input: GroupCreateInput!) {
  groupCreate(input: $input) { group { id } errors { code } } }"""
PARALLEL = 8

# SQLite serialises writers, so races are proven where they can happen: on PostgreSQL.
pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


async def _count(runtime: Runtime, statement: object) -> int:
    async with runtime.session_factory() as session:
        return int(await session.scalar(statement) or 0)  # type: ignore[call-overload]


async def test_concurrent_registrations_of_one_email_create_one_user(
    committing_runtime: Runtime,
) -> None:
    async with make_client(committing_runtime) as client:
        variables = {"input": {"email": "race@example.com", "password": PASSWORD}}
        bodies = await asyncio.gather(*(gql(client, REGISTER, variables) for _ in range(PARALLEL)))
    outcomes = sorted(
        "ok" if not b["data"]["register"]["errors"] else b["data"]["register"]["errors"][0]["code"]
        for b in bodies
    )
    assert outcomes == ["EMAIL_TAKEN"] * (PARALLEL - 1) + ["ok"]
    assert await _count(committing_runtime, select(func.count()).select_from(User)) == 1


async def test_concurrent_refreshes_with_one_token_let_one_through(
    committing_runtime: Runtime,
) -> None:
    await create_user(committing_runtime, "anna@example.com")
    async with make_client(committing_runtime) as client:
        login = await gql(
            client, LOGIN, {"input": {"login": "anna@example.com", "password": PASSWORD}}
        )
        refresh_token = login["data"]["login"]["tokens"]["refreshToken"]
        bodies = await asyncio.gather(
            *(
                gql(client, REFRESH, {"input": {"refreshToken": refresh_token}})
                for _ in range(PARALLEL)
            )
        )
    winners = [b for b in bodies if b["data"]["tokenRefresh"]["tokens"]]
    assert len(winners) == 1
    losers = [b["data"]["tokenRefresh"]["errors"][0]["code"] for b in bodies if b not in winners]
    # The first loser detects reuse and revokes the family; later ones find it revoked.
    assert "REFRESH_TOKEN_REUSED" in losers
    assert set(losers) <= {"REFRESH_TOKEN_REUSED", "INVALID_REFRESH_TOKEN"}


async def test_concurrent_retries_with_one_idempotency_key_create_one_group(
    committing_runtime: Runtime,
) -> None:
    admin = await create_user(committing_runtime, "root@example.com", roles=(Role.USER, Role.ADMIN))
    token = await access_token(committing_runtime, admin)
    variables = {"input": {"name": "Race", "idempotencyKey": "same-key"}}
    async with make_client(committing_runtime) as client:
        bodies = await asyncio.gather(
            *(gql(client, GROUP_CREATE, variables, token=token) for _ in range(PARALLEL))
        )
    payloads = [b["data"]["groupCreate"] for b in bodies]
    assert all(p["errors"] == [] for p in payloads), payloads
    assert len({p["group"]["id"] for p in payloads}) == 1
    assert await _count(committing_runtime, select(func.count()).select_from(Group)) == 1


async def test_concurrent_wrong_passwords_respect_the_limit(
    committing_runtime: Runtime,
) -> None:
    await create_user(committing_runtime, "anna@example.com")
    limit = committing_runtime.settings.login_max_attempts
    variables = {"input": {"login": "anna@example.com", "password": "wrong-password-1"}}
    async with make_client(committing_runtime) as client:
        bodies = await asyncio.gather(*(gql(client, LOGIN, variables) for _ in range(3 * limit)))
    codes = [b["data"]["login"]["errors"][0]["code"] for b in bodies]
    assert codes.count("INVALID_CREDENTIALS") == limit
    assert codes.count("RATE_LIMITED") == 2 * limit
