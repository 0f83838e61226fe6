"""Query depth, alias and token limits; masked errors in production only for bugs."""

from __future__ import annotations

import httpx
from strawberry.extensions.validation_cache import _get_validate_cache

from app.runtime import Runtime
from schema.extensions import CACHE_SIZE
from tests.conftest import make_client
from tests.helpers import gql


async def test_query_over_the_depth_limit(runtime: Runtime) -> None:
    query = "query Deep { viewer { user { groups { name } } } }"  # depth 3: the root field counts 0
    async with make_client(runtime, max_query_depth=2) as client:
        body = await gql(client, query)
    assert body.get("data") is None
    assert "'Deep' exceeds maximum operation depth of 2" in body["errors"][0]["message"]
    async with make_client(runtime, max_query_depth=3) as client:
        body = await gql(client, query)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"  # depth passed


async def test_query_over_the_alias_limit(client: httpx.AsyncClient, runtime: Runtime) -> None:
    aliases = " ".join(f"a{i}: __typename" for i in range(runtime.settings.max_aliases + 1))
    body = await gql(client, "query Aliases { " + aliases + " }")
    assert body.get("data") is None
    assert "aliases found. Allowed: 30" in body["errors"][0]["message"]


async def test_query_over_the_token_limit(client: httpx.AsyncClient, runtime: Runtime) -> None:
    fields = " ".join("__typename" for _ in range(runtime.settings.max_tokens))
    body = await gql(client, "query Tokens { " + fields + " }")
    assert body.get("data") is None
    assert "more than 2000 tokens" in body["errors"][0]["message"]


async def test_within_limits_is_fine(client: httpx.AsyncClient) -> None:
    body = await gql(client, "query Fine { __typename a: __typename }")
    assert body == {"data": {"__typename": "Query", "a": "Query"}}


async def test_repeated_documents_hit_the_validation_cache(client: httpx.AsyncClient) -> None:
    query = "query CacheProbe { plans { slug } }"
    await gql(client, query)
    before = _get_validate_cache(CACHE_SIZE).cache_info()
    for _ in range(3):
        await gql(client, query)
    after = _get_validate_cache(CACHE_SIZE).cache_info()
    assert after.hits - before.hits == 3
    assert after.misses == before.misses
