"""Pub/sub: push messages to whoever is subscribed to a channel right now.

It carries domain events to GraphQL subscriptions (`goalProgress`); `app/events.py` publishes
them after commit. Two backends share one interface:

- `RedisPubSub`: Redis PUBLISH / SUBSCRIBE, so API and worker processes share channels. A
  process holds one subscriber connection, whatever its number of subscriptions: channels are
  subscribed on first local interest and unsubscribed when the last local subscriber leaves,
  and one reader task fans messages out to the local subscribers.
- `MemoryPubSub`: the embedded mode (no Redis). The in-process Dramatiq worker runs actors on
  other threads with their own event loops, so `publish` may be called from any thread and
  loop; each subscriber receives on the loop it subscribed from.

Messages are JSON objects (`dict[str, Any]`), encoded with orjson. Delivery is best effort
and at most once: a subscriber that isn't connected misses the message (there is no replay),
publishing never raises into the caller (failures are logged and counted in
`engage_pubsub_publish_failures_total`), and a subscriber that falls behind by more than
`max_queued` messages loses its OLDEST queued messages (`engage_pubsub_dropped_total`):
progress events supersede each other, so the newest are the ones worth keeping.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub as RedisSubscriber

from app.metrics import PUBSUB_DROPPED, PUBSUB_PUBLISH_FAILURES

log = structlog.get_logger("engage.pubsub")

Message = dict[str, Any]
DEFAULT_MAX_QUEUED = 256
# Publishing runs after commit in the request's path: an unreachable Redis must not hold the
# response for the client's whole retry schedule.
DEFAULT_COMMAND_TIMEOUT_SECONDS = 2.0
_READ_TIMEOUT_SECONDS = 5.0
_RETRY_DELAY_SECONDS = 1.0


class Subscription:
    """One subscriber: an async iterator of decoded messages, fed from any thread.

    Messages wait in the subscriber's loop as raw JSON and are decoded when read, so no two
    subscribers share a dict. The queue is bounded by dropping the oldest message.
    """

    def __init__(self, channel: str, max_queued: int) -> None:
        self.channel = channel
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self._max_queued = max_queued
        self._ended = False

    def offer(self, data: bytes | str) -> None:
        """Queue a raw message; safe from any thread."""
        self._call_in_loop(self._put, data)

    def end(self) -> None:
        """Stop the iteration once the queued messages are read; safe from any thread."""
        self._call_in_loop(self._put, None)

    def _call_in_loop(self, callback: Any, data: bytes | str | None) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, data)
        except RuntimeError:  # the subscriber's loop is closed: nobody is reading any more
            log.debug("pubsub.subscriber_gone", channel=self.channel)

    def _put(self, data: bytes | str | None) -> None:
        if self._ended:
            return
        if data is None:
            self._ended = True
        elif self._queue.qsize() >= self._max_queued:
            self._queue.get_nowait()
            PUBSUB_DROPPED.inc()
            log.warning("pubsub.subscriber_lagging", channel=self.channel, kept=self._max_queued)
        self._queue.put_nowait(data)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        while True:
            data = await self._queue.get()
            if data is None:
                self._queue.put_nowait(None)  # stay ended for a later call
                raise StopAsyncIteration
            message = _decode(data, self.channel)
            if message is not None:
                return message


def _decode(data: bytes | str, channel: str) -> Message | None:
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        log.warning("pubsub.undecodable_message", channel=channel)
        return None
    if not isinstance(message, dict):
        log.warning("pubsub.non_object_message", channel=channel)
        return None
    return message


class _Fanout:
    """The local subscribers of each channel; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, set[Subscription]] = {}

    def add(self, subscription: Subscription) -> bool:
        """Register a subscriber; True when it is the channel's first."""
        with self._lock:
            subscribers = self._channels.setdefault(subscription.channel, set())
            subscribers.add(subscription)
            return len(subscribers) == 1

    def remove(self, subscription: Subscription) -> bool:
        """Unregister a subscriber; True when the channel has none left."""
        with self._lock:
            subscribers = self._channels.get(subscription.channel, set())
            subscribers.discard(subscription)
            if subscribers:
                return False
            self._channels.pop(subscription.channel, None)
            return True

    def count(self, channel: str) -> int:
        with self._lock:
            return len(self._channels.get(channel, ()))

    def deliver(self, channel: str, data: bytes | str) -> None:
        with self._lock:
            subscribers = list(self._channels.get(channel, ()))
        for subscription in subscribers:
            subscription.offer(data)

    def end_all(self) -> None:
        with self._lock:
            subscribers = [s for group in self._channels.values() for s in group]
        for subscription in subscribers:
            subscription.end()


def _encode(items: Sequence[tuple[str, Message]]) -> list[tuple[str, bytes]]:
    encoded: list[tuple[str, bytes]] = []
    for channel, message in items:
        try:
            encoded.append((channel, orjson.dumps(message)))
        except TypeError:
            PUBSUB_PUBLISH_FAILURES.inc()
            log.exception("pubsub.unencodable_message", channel=channel)
    return encoded


class PubSub(abc.ABC):
    """Publish JSON messages to channels; subscribe to a channel's messages."""

    def __init__(self, *, max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        self.max_queued = max_queued
        self._fanout = _Fanout()

    async def publish(self, channel: str, message: Message) -> None:
        """Send `message` to `channel`'s current subscribers. Never raises."""
        await self.publish_many([(channel, message)])

    async def publish_many(self, items: Sequence[tuple[str, Message]]) -> None:
        """Send several messages, in order. Never raises."""
        encoded = _encode(items)
        if not encoded:
            return
        try:
            await self._send(encoded)
        except Exception:
            PUBSUB_PUBLISH_FAILURES.inc(len(encoded))
            log.exception("pubsub.publish_failed", count=len(encoded))

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[Message]]:
        """`async with pubsub.subscribe(channel) as messages: async for message in messages:`

        Messages published after the block is entered are delivered until it exits (Redis:
        once the server has processed the SUBSCRIBE, a moment later). Iteration ends when
        the pub/sub is closed.
        """
        return self._subscription(channel)

    @asynccontextmanager
    async def _subscription(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        subscription = Subscription(channel, self.max_queued)
        await self._join(subscription)
        try:
            yield subscription
        finally:
            await self._leave(subscription)

    def local_subscribers(self, channel: str) -> int:
        """How many subscribers of `channel` this process has."""
        return self._fanout.count(channel)

    async def close(self) -> None:
        """End every subscriber's iteration and release connections."""
        self._fanout.end_all()

    @abc.abstractmethod
    async def _send(self, items: list[tuple[str, bytes]]) -> None: ...

    @abc.abstractmethod
    async def _join(self, subscription: Subscription) -> None: ...

    @abc.abstractmethod
    async def _leave(self, subscription: Subscription) -> None: ...


class MemoryPubSub(PubSub):
    """In-process pub/sub: publish from any thread or loop, receive on the subscriber's loop."""

    async def _send(self, items: list[tuple[str, bytes]]) -> None:
        for channel, data in items:
            self._fanout.deliver(channel, data)

    async def _join(self, subscription: Subscription) -> None:
        self._fanout.add(subscription)

    async def _leave(self, subscription: Subscription) -> None:
        self._fanout.remove(subscription)


class RedisPubSub(PubSub):
    """Redis PUBLISH / SUBSCRIBE, one subscriber connection per process.

    Use it from the loop that created `redis` (an asyncio client belongs to its loop). The
    caller owns `redis`; `close()` releases only the subscriber connection. After a lost
    connection the reader reconnects and redis-py subscribes the channels again; messages
    published meanwhile are lost. A command gives up after `command_timeout` seconds.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        max_queued: int = DEFAULT_MAX_QUEUED,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(max_queued=max_queued)
        self.redis = redis
        self.command_timeout = command_timeout
        self._subscriber: RedisSubscriber | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def _send(self, items: list[tuple[str, bytes]]) -> None:
        async with asyncio.timeout(self.command_timeout):
            if len(items) == 1:
                await self.redis.publish(*items[0])
                return
            async with self.redis.pipeline(transaction=False) as pipe:
                for channel, data in items:
                    pipe.publish(channel, data)
                await pipe.execute()

    async def _join(self, subscription: Subscription) -> None:
        async with self._lock:
            if self._closed:
                raise RuntimeError("the pub/sub is closed")
            if not self._fanout.add(subscription):
                return
            try:
                async with asyncio.timeout(self.command_timeout):
                    await self._redis_subscriber().subscribe(subscription.channel)
            except BaseException:
                self._fanout.remove(subscription)
                raise
            self._start_reader()

    async def _leave(self, subscription: Subscription) -> None:
        async with self._lock:
            if not self._fanout.remove(subscription) or self._subscriber is None:
                return
            try:
                async with asyncio.timeout(self.command_timeout):
                    await self._subscriber.unsubscribe(subscription.channel)
            except Exception:  # the reconnect re-subscribes it; its messages find nobody
                log.warning(
                    "pubsub.unsubscribe_failed", channel=subscription.channel, exc_info=True
                )

    def _redis_subscriber(self) -> RedisSubscriber:
        if self._subscriber is None:
            self._subscriber = self.redis.pubsub(ignore_subscribe_messages=True)
        return self._subscriber

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="engage-pubsub-reader")

    async def _read(self) -> None:
        subscriber = self._redis_subscriber()
        while True:
            try:
                message = await subscriber.get_message(
                    ignore_subscribe_messages=True, timeout=_READ_TIMEOUT_SECONDS
                )
            except Exception:
                log.warning("pubsub.read_failed", exc_info=True)
                await asyncio.sleep(_RETRY_DELAY_SECONDS)
                continue
            if message is not None and message.get("type") == "message":
                self._fanout.deliver(_text(message["channel"]), message["data"])

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
        await super().close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._subscriber is not None:
            await self._subscriber.aclose()
            self._subscriber = None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
