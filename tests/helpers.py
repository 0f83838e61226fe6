"""Test helpers: a GraphQL-over-HTTP caller, error codes, row counts (data: tests/factories)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from app.models.base import Base
from app.runtime import Runtime


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


async def row_counts(runtime: Runtime) -> dict[str, int]:
    """Rows per table: compare before and after to prove a request changed nothing."""
    async with runtime.session_factory() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }
