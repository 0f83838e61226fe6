"""Concurrent callers, on both backends: invariants hold under real parallel transactions.

These tests commit for real (each request its own connection): on PostgreSQL a runtime of
their own that empties the tables afterwards, on SQLite the test's own copy of the file, the
embedded default with its pool of connections (`racing_runtime`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from app.models.identity import Group, RefreshToken, Role, User
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
GROUP_UPDATE = """mutation U($input: GroupUpdateInput!) {
  groupUpdate(input: $input) { group { id } errors { code } } }"""
PARALLEL = 8


async def _count(runtime: Runtime, statement: object) -> int:
    async with runtime.session_factory() as session:
        return int(await session.scalar(statement) or 0)  # type: ignore[call-overload]


async def test_concurrent_registrations_of_one_email_create_one_user(
    racing_runtime: Runtime,
) -> None:
    async with make_client(racing_runtime) as client:
        variables = {"input": {"email": "race@example.com", "password": PASSWORD}}
        bodies = await asyncio.gather(*(gql(client, REGISTER, variables) for _ in range(PARALLEL)))
    outcomes = sorted(
        "ok" if not b["data"]["register"]["errors"] else b["data"]["register"]["errors"][0]["code"]
        for b in bodies
    )
    assert outcomes == ["EMAIL_TAKEN"] * (PARALLEL - 1) + ["ok"]
    assert await _count(racing_runtime, select(func.count()).select_from(User)) == 1


async def test_concurrent_refreshes_with_one_token_let_one_through(
    racing_runtime: Runtime,
) -> None:
    await create_user(racing_runtime, "anna@example.com")
    async with make_client(racing_runtime) as client:
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
    # One rotation, never a fork: the login's token and its one successor, both revoked.
    tokens = await _count(racing_runtime, select(func.count()).select_from(RefreshToken))
    live = await _count(
        racing_runtime,
        select(func.count()).select_from(RefreshToken).where(RefreshToken.revoked_at.is_(None)),
    )
    assert (tokens, live) == (2, 0)


async def test_concurrent_retries_with_one_idempotency_key_create_one_group(
    racing_runtime: Runtime,
) -> None:
    admin = await create_user(racing_runtime, "root@example.com", roles=(Role.USER, Role.ADMIN))
    token = await access_token(racing_runtime, admin)
    variables = {"input": {"name": "Race", "idempotencyKey": "same-key"}}
    async with make_client(racing_runtime) as client:
        bodies = await asyncio.gather(
            *(gql(client, GROUP_CREATE, variables, token=token) for _ in range(PARALLEL))
        )
    payloads = [b["data"]["groupCreate"] for b in bodies]
    assert all(p["errors"] == [] for p in payloads), payloads
    assert len({p["group"]["id"] for p in payloads}) == 1
    assert await _count(racing_runtime, select(func.count()).select_from(Group)) == 1


async def test_concurrent_wrong_passwords_respect_the_limit(
    racing_runtime: Runtime,
) -> None:
    await create_user(racing_runtime, "anna@example.com")
    limit = racing_runtime.settings.login_max_attempts
    variables = {"input": {"login": "anna@example.com", "password": "wrong-password-1"}}
    async with make_client(racing_runtime) as client:
        bodies = await asyncio.gather(*(gql(client, LOGIN, variables) for _ in range(3 * limit)))
    codes = [b["data"]["login"]["errors"][0]["code"] for b in bodies]
    assert codes.count("INVALID_CREDENTIALS") == limit
    assert codes.count("RATE_LIMITED") == 2 * limit


def _group_outcome(body: dict[str, Any], field: str) -> str:
    if "errors" in body:
        return f"error: {body['errors'][0]['message']}"
    payload = body["data"][field]
    return payload["errors"][0]["code"] if payload["errors"] else "ok"


async def test_concurrent_creates_of_one_name_in_any_case_create_one_group(
    racing_runtime: Runtime,
) -> None:
    admin = await create_user(racing_runtime, "root@example.com", roles=(Role.USER, Role.ADMIN))
    token = await access_token(racing_runtime, admin)
    names = ["Race", "race", "RACE", "rAce"] * 2
    async with make_client(racing_runtime) as client:
        bodies = await asyncio.gather(
            *(gql(client, GROUP_CREATE, {"input": {"name": n}}, token=token) for n in names)
        )
    outcomes = Counter(_group_outcome(body, "groupCreate") for body in bodies)
    assert outcomes == {"ok": 1, "NAME_TAKEN": len(names) - 1}
    assert await _count(racing_runtime, select(func.count()).select_from(Group)) == 1


async def test_concurrent_renames_to_one_name_rename_one_group(racing_runtime: Runtime) -> None:
    admin = await create_user(racing_runtime, "root@example.com", roles=(Role.USER, Role.ADMIN))
    token = await access_token(racing_runtime, admin)
    async with make_client(racing_runtime) as client:
        ids = [
            (await gql(client, GROUP_CREATE, {"input": {"name": f"g{i}"}}, token=token))["data"][
                "groupCreate"
            ]["group"]["id"]
            for i in range(PARALLEL)
        ]
        bodies = await asyncio.gather(
            *(
                gql(
                    client,
                    GROUP_UPDATE,
                    {"input": {"groupId": gid, "name": "Same"}},
                    token=token,
                )
                for i, gid in enumerate(ids)
            )
        )
    outcomes = Counter(_group_outcome(body, "groupUpdate") for body in bodies)
    assert outcomes == {"ok": 1, "NAME_TAKEN": PARALLEL - 1}
