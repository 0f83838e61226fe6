"""Test helpers: a GraphQL-over-HTTP caller and plain async factories for test data."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from app.auth import AccessTokenCodec
from app.models.base import Base
from app.models.identity import Role, User
from app.runtime import Runtime
from app.services.identity import sessions as session_service
from app.services.identity import users as user_service

PASSWORD = "correct-horse-battery"


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST a GraphQL operation; return the JSON body (the HTTP status must be 200)."""
    all_headers = {"accept": "application/json", **(headers or {})}
    if token:
        all_headers["authorization"] = f"Bearer {token}"
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


async def create_user(
    runtime: Runtime,
    email: str | None = None,
    *,
    roles: tuple[Role, ...] = (Role.USER,),
    password: str = PASSWORD,
) -> User:
    async with runtime.session_factory() as session, session.begin():
        user = await user_service.register(
            session,
            user_service.Registration(
                email=email or f"user-{uuid.uuid4().hex[:8]}@example.com",
                phone=None,
                password=password,
            ),
            runtime.settings,
        )
        user.roles = [role.value for role in roles]
    return user


async def access_token(runtime: Runtime, user: User) -> str:
    return AccessTokenCodec(runtime.settings).issue(user.id, user.roles)


async def service_token(runtime: Runtime, name: str | None = None) -> str:
    async with runtime.session_factory() as session, session.begin():
        _, secret = await session_service.create_service_token(
            session, name or f"svc-{uuid.uuid4().hex[:8]}", [Role.SERVICE]
        )
    return secret


async def row_counts(runtime: Runtime) -> dict[str, int]:
    """Rows per table: compare before and after to prove a request changed nothing."""
    async with runtime.session_factory() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }
