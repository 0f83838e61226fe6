"""The long-lived objects one API process shares: engine, Redis, token codec, rate limiter."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import AccessTokenCodec
from app.db import SessionFactory, create_engine, create_session_factory
from app.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from app.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    session_factory: SessionFactory
    codec: AccessTokenCodec
    limiter: RateLimiter
    redis: Redis | None

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = create_engine(settings)
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        return cls(
            settings=settings,
            engine=engine,
            session_factory=create_session_factory(engine),
            codec=AccessTokenCodec(settings),
            limiter=RedisRateLimiter(redis) if redis is not None else MemoryRateLimiter(),
            redis=redis,
        )

    async def close(self) -> None:
        await self.engine.dispose()
        if self.redis is not None:
            await self.redis.aclose()
