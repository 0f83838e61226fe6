"""The process's Redis pool queues callers beyond REDIS_MAX_CONNECTIONS instead of failing.

redis-py's default pool raises "Too many connections" for the 101st concurrent caller, which
a login flood on one `engage serve` reaches (each rate-limit check holds a connection).
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from app.redis_pool import connect_redis
from tests.conftest import REDIS_URL
from tests.conftest import test_settings as make_settings

CALLERS = 40


async def _blocking_calls(redis: Redis) -> list[object]:
    # BLPOP with a timeout holds its connection for the whole wait: all callers at once.
    calls = [redis.blpop([f"engage:test:pool:{n}"], timeout=0.05) for n in range(CALLERS)]
    return await asyncio.gather(*calls, return_exceptions=True)


async def test_callers_beyond_the_pool_wait_their_turn() -> None:
    redis = connect_redis(REDIS_URL, make_settings(REDIS_MAX_CONNECTIONS=4))
    try:
        results = await _blocking_calls(redis)
    finally:
        await redis.aclose()
    assert results == [None] * CALLERS


async def test_a_plain_pool_of_the_same_size_would_refuse_them() -> None:
    """What the test above guards against: the default, non-blocking pool."""
    redis = Redis.from_url(REDIS_URL, max_connections=4)
    try:
        results = await _blocking_calls(redis)
    finally:
        await redis.aclose()
    assert any(isinstance(result, RedisConnectionError) for result in results)
