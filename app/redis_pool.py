"""The Redis client of a process (or of a worker loop): one connection pool that queues."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from app.settings import Settings


def connect_redis(url: str, settings: Settings) -> Redis:
    """A Redis client whose connection pool makes callers wait for a free connection (up to
    REDIS_POOL_TIMEOUT_SECONDS) instead of failing when REDIS_MAX_CONNECTIONS are busy."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_seconds,
    )
    return Redis(connection_pool=pool)
