"""The long-lived objects one API process shares: engine, Redis, token codec, rate limiter,
the job broker, the outbox relay and the pub/sub that feeds GraphQL subscriptions.

This is a composition root: it is where the jobs package is plugged into the app.
"""

from __future__ import annotations

from dataclasses import dataclass

from dramatiq import Broker
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import AccessTokenCodec
from app.db import SessionFactory, create_engine, create_session_factory
from app.integrations.passport.client import PassportClient, passport_client
from app.notifier_commands import ensure_catalog_on_start
from app.outbox import OutboxRelay
from app.pubsub import MemoryPubSub, PubSub, RedisPubSub
from app.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from app.redis_pool import connect_redis
from app.settings import Settings
from jobs.broker import build_broker, install, publisher
from jobs.embedded import InProcessJobs
from jobs.runtime import share_pubsub


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
    pubsub: PubSub
    passport: PassportClient | None = None  # None: no PASSPORT_URL, migration is off

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        engine: AsyncEngine | None = None,
        session_factory: SessionFactory | None = None,
        redis: Redis | None = None,
        limiter: RateLimiter | None = None,
        pubsub: PubSub | None = None,
    ) -> Runtime:
        """Build everything from settings; tests pass their own engine, sessions or Redis."""
        engine = engine or create_engine(settings)
        if redis is None and settings.redis_url:
            redis = connect_redis(settings.redis_url, settings)
        session_factory = session_factory or create_session_factory(engine)
        broker = install(build_broker(settings), settings)
        relay = OutboxRelay(
            session_factory,
            publisher(broker),
            mark_sent_window=settings.outbox_mark_sent_window,
        )
        pubsub = pubsub or _default_pubsub(redis)
        # Without Redis the in-process worker publishes its events into this very instance.
        share_pubsub(pubsub if redis is None else None)
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
            pubsub=pubsub,
            passport=passport_client(settings),
        )

    async def start(self) -> None:
        """Load the notifier's catalog if it is new, then start what runs beside the API in
        this process (the embedded worker, scheduler)."""
        await ensure_catalog_on_start(self.session_factory)
        self.jobs.start()

    async def close(self) -> None:
        await self.jobs.stop()
        if self.passport is not None:
            await self.passport.aclose()
        await self.relay.close()
        await self.pubsub.close()
        await self.engine.dispose()
        if self.redis is not None:
            await self.redis.aclose()


def _default_pubsub(redis: Redis | None) -> PubSub:
    return RedisPubSub(redis) if redis is not None else MemoryPubSub()


def _default_limiter(redis: Redis | None) -> RateLimiter:
    return RedisRateLimiter(redis) if redis is not None else MemoryRateLimiter()
