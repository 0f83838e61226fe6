"""The Dramatiq broker: Redis when `REDIS_URL` is set, in-process otherwise.

Actors are declared with `jobs.broker.actor(...)` at import time, before the process knows
which broker it will use; `install()` binds them all to the chosen broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import dramatiq
from dramatiq import Actor, Broker, Message, Middleware
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from app import outbox
from app.outbox import Envelope, Publish
from app.settings import Settings
from jobs import runtime
from jobs.middleware import DeadLetters, FinishedMessages, JobObservability, WorkerLoopResources

F = TypeVar("F", bound=Callable[..., Any])

_actors: list[Actor[Any, Any]] = []


def middleware_stack(settings: Settings | None) -> list[Middleware]:
    # Dramatiq runs `before_*` hooks in this order and `after_*` hooks in reverse. So the
    # dead-letter writer and the metrics come first, to see the verdict Retries gives after a
    # failure, and the worker loop's engine is disposed before AsyncIO stops the loop.
    return [
        JobObservability(),
        DeadLetters(),
        FinishedMessages(),
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        _retries(settings),
        AsyncIO(),
        WorkerLoopResources(),
        CurrentMessage(),
    ]


def _retries(settings: Settings | None) -> Retries:
    if settings is None:
        return Retries()
    return Retries(
        max_retries=settings.job_max_retries,
        min_backoff=settings.job_min_backoff_ms,
        max_backoff=settings.job_max_backoff_ms,
    )


def build_broker(settings: Settings) -> Broker:
    stack = middleware_stack(settings)
    if settings.redis_url:
        return RedisBroker(url=settings.redis_url, middleware=stack)
    return StubBroker(middleware=stack)


# Actors are declared against this broker until `install()` rebinds them. It reads no
# settings: importing an actors module must not depend on the environment.
_declaring_broker: Broker = StubBroker(middleware=middleware_stack(None))


def actor(name: str, *, queue: str = "default", **options: Any) -> Callable[[F], Actor[Any, Any]]:
    """Declare an async actor; `options` are Dramatiq's (max_retries, min_backoff, ...)."""

    def decorate(fn: F) -> Actor[Any, Any]:
        declared: Actor[Any, Any] = dramatiq.actor(  # type: ignore[call-overload]
            fn, actor_name=name, queue_name=queue, broker=_declaring_broker, **options
        )
        _actors.append(declared)
        outbox.register_actor(name, queue)
        return declared

    return decorate


def install(broker: Broker, settings: Settings) -> Broker:
    """Make `broker` the process's broker: bind every declared actor to it."""
    global _declaring_broker
    from jobs import registry

    registry.load_actor_modules()
    for declared in _actors:
        declared.broker = broker
        broker.declare_actor(declared)
    _declaring_broker = broker
    dramatiq.set_broker(broker)
    runtime.configure(settings, publisher(broker))
    return broker


def to_message(envelope: Envelope) -> Message[Any]:
    options = {"request_id": envelope.request_id} if envelope.request_id else {}
    return Message(
        queue_name=envelope.queue,
        actor_name=envelope.actor,
        args=(),
        kwargs=envelope.kwargs,
        options=options,
        message_id=str(envelope.id),
        message_timestamp=int(time.time() * 1000),
    )


def publisher(broker: Broker) -> Publish:
    """The outbox's way to the broker.

    Redis calls block, so they leave the event loop for one dedicated thread per publisher:
    fewer threads contending for the GIL than the default executor, and publish order kept.
    """
    if isinstance(broker, StubBroker):

        async def publish_in_memory(envelopes: Sequence[Envelope]) -> None:
            for envelope in envelopes:
                broker.enqueue(to_message(envelope))

        return publish_in_memory

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-publisher")

    def enqueue_all(messages: Sequence[Message[Any]]) -> None:
        for message in messages:
            broker.enqueue(message)

    async def publish(envelopes: Sequence[Envelope]) -> None:
        messages = [to_message(envelope) for envelope in envelopes]
        await asyncio.get_running_loop().run_in_executor(executor, enqueue_all, messages)

    return publish
