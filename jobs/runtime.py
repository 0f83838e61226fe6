"""What an actor needs inside the worker's event loop: an engine, sessions, the outbox relay,
the pub/sub its committed events go to.

An async engine belongs to the loop that created it, so the worker builds its own, lazily,
inside the loop Dramatiq's AsyncIO middleware runs actors on, and never shares the API's.
The same goes for the Redis client of the pub/sub (`REDIS_URL` set). Without Redis the worker
runs inside `engage serve`, and its events go to the API's own `MemoryPubSub`, which
`Runtime.build` shares here with `share_pubsub()` (it is safe to publish to from any loop).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from dramatiq import Message
from dramatiq.middleware import CurrentMessage
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import uow
from app.db import SessionFactory, create_engine, create_session_factory
from app.integrations.passport.client import PassportClient, passport_client
from app.outbox import OutboxRelay, Publish
from app.pubsub import MemoryPubSub, PubSub, RedisPubSub
from app.redis_pool import connect_redis
from app.services.operations.jobs import claim_message
from app.settings import Settings


@dataclass
class JobRuntime:
    settings: Settings
    engine: AsyncEngine
    session_factory: SessionFactory
    relay: OutboxRelay
    pubsub: PubSub
    redis: Redis | None = None  # the pub/sub's client, owned by this loop's runtime
    passport: PassportClient | None = None  # this loop's passport client (None: not configured)


@dataclass
class _Config:
    settings: Settings
    publish: Publish


_config: _Config | None = None
_runtimes: dict[asyncio.AbstractEventLoop, JobRuntime] = {}
_shared_pubsub: PubSub | None = None


def configure(settings: Settings, publish: Publish) -> None:
    """Set what worker loops build their runtime from (called when the broker is installed)."""
    global _config
    _config = _Config(settings, publish)


def share_pubsub(pubsub: PubSub | None) -> None:
    """The pub/sub that worker loops publish into when there is no Redis: the API's own
    `MemoryPubSub` in the embedded mode, so the API's subscribers get the worker's events."""
    global _shared_pubsub
    _shared_pubsub = pubsub


def job_runtime() -> JobRuntime:
    loop = asyncio.get_running_loop()
    runtime = _runtimes.get(loop)
    if runtime is None:
        if _config is None:
            raise RuntimeError("jobs.runtime.configure() was not called: no broker installed")
        settings = _config.settings
        # One connection per worker thread plus the relay's and the dead-letter writer's.
        engine = create_engine(settings, **_pool_options(settings))
        factory = create_session_factory(engine)
        relay = OutboxRelay(
            factory, _config.publish, mark_sent_window=settings.outbox_mark_sent_window
        )
        pubsub, redis = _loop_pubsub(settings)
        runtime = JobRuntime(
            settings, engine, factory, relay, pubsub, redis, passport_client(settings)
        )
        _runtimes[loop] = runtime
    return runtime


def _loop_pubsub(settings: Settings) -> tuple[PubSub, Redis | None]:
    if settings.redis_url:
        redis = connect_redis(settings.redis_url, settings)
        return RedisPubSub(redis), redis
    # No Redis and no API in this process: nobody could receive the events anyway.
    return _shared_pubsub or MemoryPubSub(), None


def _pool_options(settings: Settings) -> dict[str, Any]:
    if settings.is_sqlite:
        return {}
    return {"pool_size": settings.worker_threads + 2, "max_overflow": 4}


async def dispose_runtime() -> None:
    runtime = _runtimes.pop(asyncio.get_running_loop(), None)
    if runtime is not None:
        await runtime.relay.close()
        await runtime.engine.dispose()
        if runtime.passport is not None:
            await runtime.passport.aclose()
        if runtime.redis is not None:  # a shared MemoryPubSub belongs to the API
            await runtime.pubsub.close()
            await runtime.redis.aclose()


def current_message() -> Message[Any]:
    message = CurrentMessage.get_current_message()
    if message is None:
        raise RuntimeError("not inside an actor")
    return message


@asynccontextmanager
async def unit_of_work() -> AsyncIterator[AsyncSession]:
    """An actor's unit of work (`app.uow`): commit on success, then relay the jobs it
    enqueued, publish the events it published and run its after-commit hooks."""
    runtime = job_runtime()
    async with uow.unit_of_work(runtime.session_factory, runtime.relay, runtime.pubsub) as session:
        yield session


async def claim(session: AsyncSession) -> bool:
    """Record the current message as processed in `session`'s transaction.

    False means an earlier delivery of the same message already committed its effect:
    the actor returns without doing anything.
    """
    message = current_message()
    return await claim_message(session, uuid.UUID(message.message_id), message.actor_name)
