"""The outbox's publisher on Redis (PostgreSQL + Redis, a real worker): concurrent relays go
out in shared batches of one pipelined round trip, stored exactly as `RedisBroker.enqueue`
stores a message, processed once each; a failed batch fails each of its callers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from dramatiq import Message, Worker
from sqlalchemy import select

from app.models.operations import JobPing
from app.outbox import Envelope
from app.runtime import Runtime
from app.services.operations.jobs import PING_ACTOR, request_ping
from jobs import broker as broker_module
from jobs.broker import _Batcher, enqueue_batch, publisher, to_message
from tests.jobs.conftest import eventually, metric

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def _stored(runtime: Runtime, queue: str) -> list[dict[str, Any]]:
    """The messages waiting on `queue` in Redis, decoded, without their Redis-only ids."""
    broker = runtime.broker
    client = broker.client  # type: ignore[attr-defined]
    namespace = broker.namespace  # type: ignore[attr-defined]
    ids = client.lrange(f"{namespace}:{queue}", 0, -1)
    stored = []
    for redis_id in ids:
        data = json.loads(client.hget(f"{namespace}:{queue}.msgs", redis_id))
        data["options"].pop("redis_message_id")
        data.pop("message_timestamp")
        stored.append(data)
    return stored


def _message(n: int, queue: str) -> Message[Any]:
    return Message(
        queue_name=queue,
        actor_name=PING_ACTOR,
        args=(),
        kwargs={"n": n},
        options={"request_id": "r"},
        message_id=str(uuid.UUID(int=n + 1)),
    )


async def test_a_batch_is_stored_as_enqueue_stores_each_message(jobs_runtime: Runtime) -> None:
    broker = jobs_runtime.broker
    one_by_one, batched = "pub-one", "pub-batch"
    for queue in (one_by_one, batched):
        broker.declare_queue(queue)
    before = metric("engage_jobs_enqueued_total", PING_ACTOR)
    for n in range(3):
        broker.enqueue(_message(n, one_by_one))
    enqueue_batch(broker, [_message(n, batched) for n in range(3)])
    assert metric("engage_jobs_enqueued_total", PING_ACTOR) - before == 6  # the hooks ran
    expected = _stored(jobs_runtime, one_by_one)
    got = _stored(jobs_runtime, batched)
    assert len(got) == 3
    assert [{**m, "queue_name": one_by_one} for m in got] == expected


async def test_concurrent_relays_share_batches_and_each_job_runs_once(
    jobs_runtime: Runtime, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []

    def counting(broker: Any, messages: Sequence[Message[Any]]) -> None:
        batches.append(len(messages))
        enqueue_batch(broker, messages)

    monkeypatch.setattr(broker_module, "enqueue_batch", counting)
    publish = publisher(jobs_runtime.broker)
    pings = []
    for n in range(40):
        async with jobs_runtime.session_factory() as session, session.begin():
            pings.append(await request_ping(session, note=f"batch {n}", by="test"))
    envelopes = [_envelope(ping.message_id, str(ping.id)) for ping in pings]
    await asyncio.gather(*(publish([envelope]) for envelope in envelopes))
    assert sum(batches) == 40 and len(batches) < 40  # shared batches
    assert max(batches) > 1

    async def all_processed() -> bool:
        async with jobs_runtime.session_factory() as session:
            found = [await session.get(JobPing, ping.id) for ping in pings]
        return all(p is not None and p.processed_at is not None for p in found)

    await eventually(all_processed, what="every batched ping")
    async with jobs_runtime.session_factory() as session:
        deliveries = (await session.scalars(select(JobPing.deliveries))).all()
    assert deliveries == [1] * 40


def _envelope(message_id: uuid.UUID, ping_id: str = "") -> Envelope:
    return Envelope(message_id, PING_ACTOR, "default", {"ping_id": ping_id}, None)


async def test_a_failed_batch_fails_each_of_its_callers(jobs_runtime: Runtime) -> None:
    def broken(messages: list[Message[Any]]) -> None:
        raise ConnectionError("Redis is down")

    executor = ThreadPoolExecutor(max_workers=1)
    batcher = _Batcher(asyncio.get_running_loop(), executor, broken)
    results = await asyncio.gather(
        *(batcher.publish([to_message(_envelope(uuid.uuid4()))]) for _ in range(5)),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [ConnectionError] * 5
    executor.shutdown()
