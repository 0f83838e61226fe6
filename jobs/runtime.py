"""What an actor needs inside the worker's event loop: an engine, sessions, the outbox relay.

An async engine belongs to the loop that created it, so the worker builds its own, lazily,
inside the loop Dramatiq's AsyncIO middleware runs actors on, and never shares the API's.
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
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import outbox
from app.db import SessionFactory, create_engine, create_session_factory
from app.outbox import OutboxRelay, Publish
from app.services.jobs import claim_message
from app.settings import Settings


@dataclass
class JobRuntime:
    settings: Settings
    engine: AsyncEngine
    session_factory: SessionFactory
    relay: OutboxRelay


@dataclass
class _Config:
    settings: Settings
    publish: Publish


_config: _Config | None = None
_runtimes: dict[asyncio.AbstractEventLoop, JobRuntime] = {}


def configure(settings: Settings, publish: Publish) -> None:
    """Set what worker loops build their runtime from (called when the broker is installed)."""
    global _config
    _config = _Config(settings, publish)


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
        runtime = JobRuntime(settings, engine, factory, relay)
        _runtimes[loop] = runtime
    return runtime


def _pool_options(settings: Settings) -> dict[str, Any]:
    if settings.is_sqlite:
        return {}
    return {"pool_size": settings.worker_threads + 2, "max_overflow": 4}


async def dispose_runtime() -> None:
    runtime = _runtimes.pop(asyncio.get_running_loop(), None)
    if runtime is not None:
        await runtime.relay.close()
        await runtime.engine.dispose()


def current_message() -> Message[Any]:
    message = CurrentMessage.get_current_message()
    if message is None:
        raise RuntimeError("not inside an actor")
    return message


@asynccontextmanager
async def unit_of_work() -> AsyncIterator[AsyncSession]:
    """An actor's transaction: commit on success, then publish the jobs it enqueued."""
    relay = job_runtime().relay
    async with relay.session_factory() as session:
        try:
            async with session.begin():
                yield session
        except BaseException:
            outbox.discard_pending(session)
            raise
    await relay.relay_committed(session)


async def claim(session: AsyncSession) -> bool:
    """Record the current message as processed in `session`'s transaction.

    False means an earlier delivery of the same message already committed its effect:
    the actor returns without doing anything.
    """
    message = current_message()
    return await claim_message(session, uuid.UUID(message.message_id), message.actor_name)
