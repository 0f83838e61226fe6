"""Jobs the broker accepted and then lost (Redis restarted without persistence, an in-process
queue died with its process) are published again: workers mark what they finished, and the
sweeper republishes rows sent long ago that no worker finished (PostgreSQL + Redis, real
commits, a real worker)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from dramatiq import Worker
from sqlalchemy import insert, select, update

from app import outbox
from app.models.base import utcnow
from app.models.operations import JobFailure, JobPing
from app.models.outbox import OutboxMessage
from app.runtime import Runtime
from app.services.operations.jobs import PING_ACTOR, request_ping
from tests.jobs.conftest import eventually
from tests.jobs.test_outbox_sweep import Recorder

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

AFTER = timedelta(minutes=15)
MAX_PUBLISHES = 5


async def _sent_rows(
    runtime: Runtime,
    count: int,
    *,
    sent_ago: timedelta,
    finished: bool = False,
    attempts: int = 1,
) -> list[uuid.UUID]:
    sent_at = utcnow() - sent_ago
    ids = [uuid.uuid4() for _ in range(count)]
    async with runtime.session_factory() as session, session.begin():
        await session.execute(
            insert(OutboxMessage),
            [
                {
                    "id": message_id,
                    "actor": PING_ACTOR,
                    "queue": "default",
                    "kwargs": {"n": n},
                    "created_at": sent_at - timedelta(seconds=1),
                    "sent_at": sent_at + timedelta(microseconds=n),
                    "finished_at": sent_at if finished else None,
                    "publish_attempts": attempts,
                }
                for n, message_id in enumerate(ids)
            ],
        )
    return ids


async def _row(runtime: Runtime, message_id: uuid.UUID) -> OutboxMessage:
    async with runtime.session_factory() as session:
        row = await session.get(OutboxMessage, message_id)
    assert row is not None
    return row


async def _state(runtime: Runtime) -> dict[uuid.UUID, tuple[datetime | None, int]]:
    async with runtime.session_factory() as session:
        rows = await session.scalars(select(OutboxMessage))
        return {row.id: (row.sent_at, row.publish_attempts) for row in rows}


async def test_only_rows_sent_long_ago_and_never_finished_are_published_again(
    jobs_runtime: Runtime,
) -> None:
    lost = await _sent_rows(jobs_runtime, 3, sent_ago=timedelta(minutes=20))
    finished = await _sent_rows(jobs_runtime, 2, sent_ago=timedelta(minutes=20), finished=True)
    in_queue = await _sent_rows(jobs_runtime, 2, sent_ago=timedelta(minutes=14))
    exhausted = await _sent_rows(
        jobs_runtime, 1, sent_ago=timedelta(minutes=20), attempts=MAX_PUBLISHES
    )
    before = await _state(jobs_runtime)
    recorder = Recorder()
    relay = outbox.OutboxRelay(jobs_runtime.session_factory, recorder)

    assert await relay.redeliver(AFTER, MAX_PUBLISHES) == 3
    assert recorder.published == lost  # oldest first
    after = await _state(jobs_runtime)
    for message_id in lost:
        sent_at, attempts = after[message_id]
        assert attempts == 2 and sent_at is not None and sent_at > utcnow() - timedelta(minutes=1)
    for message_id in finished + in_queue + exhausted:
        assert after[message_id] == before[message_id]
    # Just published again: the next sweep waits another period for a worker to finish them.
    assert await relay.redeliver(AFTER, MAX_PUBLISHES) == 0
    assert await relay.sweep(timedelta(seconds=0)) == 0  # none of these is unsent


async def test_a_row_is_published_at_most_max_publishes_times(jobs_runtime: Runtime) -> None:
    [message_id] = await _sent_rows(jobs_runtime, 1, sent_ago=timedelta(minutes=20))
    recorder = Recorder()
    relay = outbox.OutboxRelay(jobs_runtime.session_factory, recorder)
    for _ in range(MAX_PUBLISHES + 2):
        await relay.redeliver(timedelta(seconds=0), MAX_PUBLISHES)
    assert recorder.published == [message_id] * (MAX_PUBLISHES - 1)
    assert (await _row(jobs_runtime, message_id)).publish_attempts == MAX_PUBLISHES


async def test_two_concurrent_redeliveries_publish_each_row_once(jobs_runtime: Runtime) -> None:
    lost = await _sent_rows(jobs_runtime, 30, sent_ago=timedelta(minutes=20))
    first, second = Recorder(pause=0.2), Recorder(pause=0.2)
    relays = [outbox.OutboxRelay(jobs_runtime.session_factory, r) for r in (first, second)]
    counts = await asyncio.gather(*(r.redeliver(AFTER, MAX_PUBLISHES, 10) for r in relays))
    assert sum(counts) == 30
    assert sorted(first.published + second.published) == sorted(lost)


async def test_an_unsent_row_a_worker_already_finished_is_not_swept(
    jobs_runtime: Runtime,
) -> None:
    """The API published and died before marking the row sent; the worker finished it."""
    async with jobs_runtime.session_factory() as session, session.begin():
        ping = await request_ping(session, note="finished before marked", by="test")
    outbox.discard_pending(session)
    async with jobs_runtime.session_factory() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == ping.message_id)
            .values(created_at=utcnow() - timedelta(minutes=10), finished_at=utcnow())
        )
    recorder = Recorder()
    relay = outbox.OutboxRelay(jobs_runtime.session_factory, recorder)
    assert await relay.sweep(timedelta(seconds=30)) == 0
    assert recorder.published == []


async def test_a_message_the_broker_lost_is_redelivered_and_applied_once(
    jobs_runtime: Runtime, worker: Worker
) -> None:
    async def accepted_then_lost(envelopes: Sequence[outbox.Envelope]) -> None:
        """The broker took the messages, then lost them before any worker saw them."""

    losing = outbox.OutboxRelay(jobs_runtime.session_factory, accepted_then_lost)
    async with jobs_runtime.session_factory() as session:
        lost = await request_ping(session, note="lost by the broker", by="test")
        await session.commit()
    await losing.relay_committed(session)
    async with jobs_runtime.session_factory() as session:
        delivered = await request_ping(session, note="delivered", by="test")
        await session.commit()
    await jobs_runtime.relay.relay_committed(session)

    async def finished(message_id: uuid.UUID) -> bool:
        return (await _row(jobs_runtime, message_id)).finished_at is not None

    await eventually(lambda: finished(delivered.message_id), what="the worker's finished mark")
    row = await _row(jobs_runtime, lost.message_id)
    assert row.sent_at is not None and row.finished_at is None

    async with jobs_runtime.session_factory() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == lost.message_id)
            .values(sent_at=utcnow() - timedelta(hours=1))
        )
    jobs_runtime.broker.get_actor("outbox.sweep").send()  # the periodic sweep, on the worker
    await eventually(lambda: finished(lost.message_id), what="the redelivered job to finish")
    async with jobs_runtime.session_factory() as session:
        ping = await session.get(JobPing, lost.id)
    assert ping is not None and ping.processed_at is not None and ping.deliveries == 1
    assert (await _row(jobs_runtime, lost.message_id)).publish_attempts == 2


async def test_a_dead_lettered_message_is_finished_and_not_redelivered(
    jobs_runtime: Runtime, worker: Worker
) -> None:
    async with jobs_runtime.session_factory() as session:
        message_id = outbox.enqueue(session, "test.broken", key="dead-and-finished")
        await session.commit()
    await jobs_runtime.relay.relay_committed(session)

    async def dead_and_finished() -> bool:
        async with jobs_runtime.session_factory() as session:
            failures = (await session.scalars(select(JobFailure))).all()
        row = await _row(jobs_runtime, message_id)
        return len(failures) == 1 and row.finished_at is not None

    await eventually(dead_and_finished, what="the dead letter and the finished mark")
    recorder = Recorder()
    relay = outbox.OutboxRelay(jobs_runtime.session_factory, recorder)
    assert await relay.redeliver(timedelta(seconds=0), MAX_PUBLISHES) == 0
