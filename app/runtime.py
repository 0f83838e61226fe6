"""The long-lived objects one API process shares: engine, Redis, token codec, rate limiter,
the job broker and the outbox relay.

This is a composition root: it is where the jobs package is plugged into the app.
"""

from __future__ import annotations

from dataclasses import dataclass

from dramatiq import Broker
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import AccessTokenCodec
from app.db import SessionFactory, create_engine, create_session_factory
from app.outbox import OutboxRelay
from app.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from app.settings import Settings
from jobs.broker import build_broker, install, publisher
from jobs.embedded import InProcessJobs


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    session_factory: SessionFactory
    codec: AccessTokenCodec
    limiter: RateLimiter
    redis: Redis | None
    broker: Broker
    relay: OutboxRelay
    jobs: InProcessJobs

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        engine: AsyncEngine | None = None,
        session_factory: SessionFactory | None = None,
        redis: Redis | None = None,
        limiter: RateLimiter | None = None,
    ) -> Runtime:
        """Build everything from settings; tests pass their own engine, sessions or Redis."""
        engine = engine or create_engine(settings)
        if redis is None and settings.redis_url:
            redis = Redis.from_url(settings.redis_url)
        session_factory = session_factory or create_session_factory(engine)
        broker = install(build_broker(settings), settings)
        relay = OutboxRelay(
            session_factory,
            publisher(broker),
            mark_sent_window=settings.outbox_mark_sent_window,
        )
        return cls(
            settings=settings,
            engine=engine,
            session_factory=session_factory,
            codec=AccessTokenCodec(settings),
            limiter=limiter or _default_limiter(redis),
            redis=redis,
            broker=broker,
            relay=relay,
            jobs=InProcessJobs(settings, broker, session_factory, relay, redis),
        )

    async def start(self) -> None:
        """Start what runs beside the API in this process (the embedded worker, scheduler)."""
        self.jobs.start()

    async def close(self) -> None:
        await self.jobs.stop()
        await self.relay.close()
        await self.engine.dispose()
        if self.redis is not None:
            await self.redis.aclose()


def _default_limiter(redis: Redis | None) -> RateLimiter:
    return RedisRateLimiter(redis) if redis is not None else MemoryRateLimiter()
