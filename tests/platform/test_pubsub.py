"""Pub/sub: RedisPubSub on the real Redis and MemoryPubSub, through the same interface."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from app.pubsub import MemoryPubSub, PubSub, RedisPubSub
from tests.conftest import REDIS_URL

RECEIVE_TIMEOUT = 5.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + RECEIVE_TIMEOUT
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


async def subscribed(pubsub: PubSub, channel: str, present: bool = True) -> None:
    """Wait until publishers see `channel` subscribed (or no longer subscribed)."""

    async def check() -> bool:
        if isinstance(pubsub, RedisPubSub):  # one Redis subscription per process and channel
            [(_, found)] = await pubsub.redis.pubsub_numsub(channel)
            return (int(found) > 0) == present
        return (pubsub.local_subscribers(channel) > 0) == present

    await eventually(check, f"{channel} {'subscribed' if present else 'unsubscribed'}")


async def receive(messages: AsyncIterator[dict[str, object]]) -> dict[str, object]:
    return await asyncio.wait_for(anext(messages), RECEIVE_TIMEOUT)


def channel() -> str:
    return f"engage:test:{uuid.uuid4()}"


def failures() -> float:
    return REGISTRY.get_sample_value("engage_pubsub_publish_failures_total") or 0.0


@pytest.fixture(params=["redis", "memory"])
async def pubsub(request: pytest.FixtureRequest) -> AsyncIterator[PubSub]:
    if request.param == "memory":
        memory = MemoryPubSub()
        yield memory
        await memory.close()
        return
    redis = Redis.from_url(REDIS_URL)
    redis_pubsub = RedisPubSub(redis)
    yield redis_pubsub
    await redis_pubsub.close()
    await redis.aclose()


async def test_a_subscriber_receives_what_is_published_on_its_channel(pubsub: PubSub) -> None:
    mine, other = channel(), channel()
    async with pubsub.subscribe(mine) as messages, pubsub.subscribe(mine) as second:
        await subscribed(pubsub, mine)
        await pubsub.publish(other, {"n": 0})
        await pubsub.publish(mine, {"n": 1, "nested": {"ok": True}})
        await pubsub.publish_many([(other, {"n": 2}), (mine, {"n": 3}), (mine, {"n": 4})])
        assert await receive(messages) == {"n": 1, "nested": {"ok": True}}
        assert await receive(messages) == {"n": 3}
        assert await receive(messages) == {"n": 4}
        assert [await receive(second) for _ in range(3)] == [
            {"n": 1, "nested": {"ok": True}},
            {"n": 3},
            {"n": 4},
        ]


async def test_nothing_is_delivered_after_unsubscribing(pubsub: PubSub) -> None:
    name = channel()
    async with pubsub.subscribe(name) as messages:
        await subscribed(pubsub, name)
    await subscribed(pubsub, name, present=False)
    assert pubsub.local_subscribers(name) == 0
    await pubsub.publish(name, {"n": "missed"})  # nobody listens: no error either

    async with pubsub.subscribe(name) as messages:
        await subscribed(pubsub, name)
        await pubsub.publish(name, {"n": "seen"})
        assert await receive(messages) == {"n": "seen"}


async def test_close_ends_the_iteration(pubsub: PubSub) -> None:
    name = channel()
    async with pubsub.subscribe(name) as messages:
        await subscribed(pubsub, name)
        await pubsub.close()
        with pytest.raises(StopAsyncIteration):
            await receive(messages)


async def test_an_unencodable_message_is_counted_not_raised(pubsub: PubSub) -> None:
    name = channel()
    before = failures()
    async with pubsub.subscribe(name) as messages:
        await subscribed(pubsub, name)
        await pubsub.publish_many([(name, {"bad": object()}), (name, {"good": 1})])
        assert await receive(messages) == {"good": 1}
    assert failures() == before + 1


async def test_memory_publish_from_another_thread_and_loop_is_delivered() -> None:
    pubsub = MemoryPubSub()
    name = channel()
    async with pubsub.subscribe(name) as messages:

        def worker_thread() -> None:  # like a Dramatiq actor on the worker's own loop
            asyncio.run(pubsub.publish(name, {"from": threading.current_thread().name}))

        thread = threading.Thread(target=worker_thread, name="actor-thread")
        thread.start()
        thread.join()
        assert await receive(messages) == {"from": "actor-thread"}


async def test_memory_subscriber_that_falls_behind_loses_the_oldest() -> None:
    pubsub = MemoryPubSub(max_queued=2)
    name = channel()
    dropped = REGISTRY.get_sample_value("engage_pubsub_dropped_total") or 0.0
    async with pubsub.subscribe(name) as messages:
        await pubsub.publish_many([(name, {"n": n}) for n in range(4)])
        await asyncio.sleep(0)  # deliveries are scheduled on the subscriber's loop
        assert [await receive(messages) for _ in range(2)] == [{"n": 2}, {"n": 3}]
    assert REGISTRY.get_sample_value("engage_pubsub_dropped_total") == dropped + 2


async def test_redis_publish_reaches_subscribers_of_another_client() -> None:
    """API and worker processes each have their own client: channels are Redis's."""
    api_redis, worker_redis = Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)
    api, worker = RedisPubSub(api_redis), RedisPubSub(worker_redis)
    name = channel()
    try:
        async with api.subscribe(name) as messages:
            await subscribed(api, name)
            await worker.publish(name, {"from": "worker"})
            assert await receive(messages) == {"from": "worker"}
    finally:
        await api.close()
        await worker.close()
        await api_redis.aclose()
        await worker_redis.aclose()


async def test_redis_publish_failure_is_counted_not_raised() -> None:
    unreachable = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    pubsub = RedisPubSub(unreachable, command_timeout=0.3)
    before, started = failures(), time.monotonic()
    await pubsub.publish(channel(), {"n": 1})
    await pubsub.publish_many([(channel(), {"n": 2}), (channel(), {"n": 3})])
    assert failures() == before + 3
    assert time.monotonic() - started < 2, "a publish must give up after its timeout"
    await pubsub.close()
    await unreachable.aclose()
