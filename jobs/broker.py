"""The Dramatiq broker: Redis when `REDIS_URL` is set, in-process otherwise.

Actors are declared with `jobs.broker.actor(...)` at import time, before the process knows
which broker it will use; `install()` binds them all to the chosen broker.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from uuid import uuid4

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
    Commits that relay while a publish is in flight wait for the next one, which takes them
    all in one thread hop and one pipelined Redis round trip (`enqueue_batch`).
    """
    if isinstance(broker, StubBroker):

        async def publish_in_memory(envelopes: Sequence[Envelope]) -> None:
            for envelope in envelopes:
                broker.enqueue(to_message(envelope))

        return publish_in_memory

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-publisher")
    send = functools.partial(enqueue_batch, broker)
    batchers: dict[asyncio.AbstractEventLoop, _Batcher] = {}  # per loop: API, worker loops

    async def publish(envelopes: Sequence[Envelope]) -> None:
        loop = asyncio.get_running_loop()
        batcher = batchers.get(loop)
        if batcher is None:
            batcher = batchers[loop] = _Batcher(loop, executor, send)
        await batcher.publish([to_message(envelope) for envelope in envelopes])

    return publish


class _Batcher:
    """Publishes what concurrent callers hand it while a publish is in flight as one batch.

    Each caller waits for the batch that holds its messages; a failure fails the whole batch
    (its rows stay unsent and the sweeper publishes them later).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        executor: ThreadPoolExecutor,
        send: Callable[[list[Message[Any]]], None],
    ) -> None:
        self.loop = loop
        self.executor = executor
        self.send = send
        self._waiting: list[tuple[list[Message[Any]], asyncio.Future[None]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def publish(self, messages: list[Message[Any]]) -> None:
        done: asyncio.Future[None] = self.loop.create_future()
        self._waiting.append((messages, done))
        if self._draining is None or self._draining.done():
            self._draining = self.loop.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            messages = [message for part, _ in batch for message in part]
            try:
                await self.loop.run_in_executor(self.executor, self.send, messages)
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


def enqueue_batch(broker: Broker, messages: Sequence[Message[Any]]) -> None:
    """`broker.enqueue` for each message, in one round trip on Redis.

    The Redis broker has no batch enqueue, so this sends its own dispatch script's
    "enqueue" calls for all the messages in one pipeline, with the same arguments and the
    same middleware hooks as `RedisBroker.enqueue` (dramatiq 2.2; `tests/jobs/
    test_publisher.py` holds it to what `enqueue` stores). Other brokers: one by one.
    """
    if not isinstance(broker, RedisBroker) or len(messages) < 2:
        for message in messages:
            broker.enqueue(message)
        return
    prepared = [message.copy(options={"redis_message_id": str(uuid4())}) for message in messages]
    for message in prepared:
        broker.emit_before("enqueue", message, None)
    dispatch = broker.scripts["dispatch"]
    with broker.client.pipeline(transaction=False) as pipe:
        for message in prepared:
            dispatch(
                keys=[broker.namespace],
                args=[
                    "enqueue",
                    int(time.time() * 1000),
                    message.queue_name,
                    broker.broker_id,
                    broker.heartbeat_timeout,
                    broker.dead_message_ttl,
                    broker._should_do_maintenance("enqueue"),
                    broker._max_unpack_size(),
                    message.options["redis_message_id"],
                    message.encode(),
                ],
                client=pipe,
            )
        pipe.execute()
    for message in prepared:
        broker.emit_after("enqueue", message, None)
