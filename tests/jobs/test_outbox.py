"""The transactional outbox end to end: producer transaction, relay, Redis, a real worker."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
import structlog
from dramatiq import Worker
from sqlalchemy import func, select, update

from app import outbox
from app.models.base import utcnow
from app.models.operations import JobPing
from app.models.outbox import OutboxMessage, ProcessedMessage
from app.runtime import Runtime
from app.services.operations.jobs import PING_ACTOR, request_ping
from jobs.broker import publisher
from tests.jobs import actors
from tests.jobs.conftest import eventually, metric

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


async def _ping(runtime: Runtime, ping_id: uuid.UUID) -> JobPing | None:
    async with runtime.session_factory() as session:
        return await session.get(JobPing, ping_id)


async def _processed(runtime: Runtime, ping_id: uuid.UUID) -> bool:
    ping = await _ping(runtime, ping_id)
    return ping is not None and ping.processed_at is not None


async def _count(runtime: Runtime, model: type) -> int:
    async with runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_committed_job_is_processed_and_rolled_back_one_never_runs(
    jobs_runtime: Runtime, worker: Worker
) -> None:
    async with jobs_runtime.session_factory() as session:
        discarded = await request_ping(session, note="rolled back", by="test")
        await session.flush()
        await session.rollback()
    assert await jobs_runtime.relay.relay_committed(session) == 0

    async with jobs_runtime.session_factory() as session:
        committed = await request_ping(session, note="committed", by="test")
        await session.commit()
    assert await jobs_runtime.relay.relay_committed(session) == 1

    await eventually(lambda: _processed(jobs_runtime, committed.id), what="the committed ping")
    jobs_runtime.broker.join("default", timeout=10_000)
    assert await _ping(jobs_runtime, discarded.id) is None
    async with jobs_runtime.session_factory() as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
        processed = (await session.scalars(select(ProcessedMessage))).all()
    assert [(row.id, row.actor) for row in rows] == [(committed.message_id, PING_ACTOR)]
    assert rows[0].sent_at is not None
    assert [record.message_id for record in processed] == [committed.message_id]
    ping = await _ping(jobs_runtime, committed.id)
    assert ping is not None and ping.deliveries == 1


async def test_job_logs_carry_the_message_id_and_the_originating_request_id(
    jobs_runtime: Runtime, worker: Worker
) -> None:
    with structlog.contextvars.bound_contextvars(request_id="req-e2e-42"):
        async with jobs_runtime.session_factory() as session:
            message_id = outbox.enqueue(session, "test.context", key="traced")
            await session.commit()
    await jobs_runtime.relay.relay_committed(session)

    async def recorded() -> bool:
        return "traced" in actors.contexts

    await eventually(recorded, what="the traced job")
    assert actors.contexts["traced"] == {
        "request_id": "req-e2e-42",
        "message_id": str(message_id),
        "actor": "test.context",
    }
    assert structlog.contextvars.get_contextvars() == {}


async def test_crash_between_commit_and_publish_is_swept_and_applied_once(
    jobs_runtime: Runtime, worker: Worker
) -> None:
    async with jobs_runtime.session_factory() as session:
        ping = await request_ping(session, note="crash window", by="test")
        await session.commit()
    outbox.discard_pending(session)  # the process died before the relay ran

    async with jobs_runtime.session_factory() as session:
        row = await session.get(OutboxMessage, ping.message_id)
    assert row is not None and row.sent_at is None
    assert not await _processed(jobs_runtime, ping.id)

    # Fresh rows are the relay's: the sweeper leaves them alone during the grace period.
    assert await jobs_runtime.relay.sweep(timedelta(minutes=5)) == 0

    async with jobs_runtime.session_factory() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id)
            .values(created_at=utcnow() - timedelta(minutes=10))
        )
    before = metric("engage_jobs_processed_total", PING_ACTOR)
    # The periodic sweep actor runs on the worker and publishes the row...
    jobs_runtime.broker.get_actor("outbox.sweep").send()
    # ...while the same message (same id) is also delivered twice more.
    envelope = outbox.Envelope(row.id, row.actor, row.queue, row.kwargs, row.request_id)
    await publisher(jobs_runtime.broker)([envelope, envelope])

    await eventually(lambda: _processed(jobs_runtime, ping.id), what="the swept ping")

    async def all_deliveries_handled() -> bool:
        return metric("engage_jobs_processed_total", PING_ACTOR) - before >= 3

    await eventually(all_deliveries_handled, what="three deliveries of one message")
    swept = await _ping(jobs_runtime, ping.id)
    assert swept is not None and swept.deliveries == 1
    assert await _count(jobs_runtime, ProcessedMessage) == 1
    async with jobs_runtime.session_factory() as session:
        row = await session.get(OutboxMessage, ping.message_id)
    assert row is not None and row.sent_at is not None and row.publish_attempts == 1


async def test_relay_failure_leaves_row_for_the_sweeper(jobs_runtime: Runtime) -> None:
    async def broken_publish(envelopes: object) -> None:
        raise ConnectionError("broker down")

    relay = outbox.OutboxRelay(jobs_runtime.session_factory, broken_publish)
    async with jobs_runtime.session_factory() as session:
        ping = await request_ping(session, note="broker down", by="test")
        await session.commit()
    assert await relay.relay_committed(session) == 1  # reported, never raised

    async with jobs_runtime.session_factory() as session:
        row = await session.get(OutboxMessage, ping.message_id)
        count, oldest = await outbox.backlog(session)
    assert row is not None and row.sent_at is None
    assert count == 1 and oldest is not None


async def test_relay_marks_rows_sent_in_batches_within_its_window(jobs_runtime: Runtime) -> None:
    relay = outbox.OutboxRelay(
        jobs_runtime.session_factory, publisher(jobs_runtime.broker), mark_sent_window=0.05
    )
    pings = []
    for note in ("one", "two", "three"):
        async with jobs_runtime.session_factory() as session:
            pings.append(await request_ping(session, note=note, by="test"))
            await session.commit()
        await relay.relay_committed(session)

    async def unsent() -> int:
        async with jobs_runtime.session_factory() as session:
            return (await outbox.backlog(session))[0]

    assert await unsent() == 3  # published at once, marked when the window closes
    await eventually(lambda: _zero(unsent), what="the batched mark")
    async with jobs_runtime.session_factory() as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
    assert {row.publish_attempts for row in rows} == {1}
    assert len({row.sent_at for row in rows}) == 1  # one UPDATE for all three
    await relay.close()


async def _zero(count: Callable[[], Awaitable[int]]) -> bool:
    return await count() == 0


async def test_cleanup_removes_only_old_sent_rows(jobs_runtime: Runtime) -> None:
    now = utcnow()
    async with jobs_runtime.session_factory() as session, session.begin():
        for age_hours, sent in ((100, True), (100, False), (1, True)):
            session.add(
                OutboxMessage(
                    actor=PING_ACTOR,
                    queue="default",
                    kwargs={},
                    created_at=now - timedelta(hours=age_hours),
                    sent_at=now - timedelta(hours=age_hours) if sent else None,
                )
            )
        session.add(
            ProcessedMessage(
                message_id=uuid.uuid4(), actor=PING_ACTOR, processed_at=now - timedelta(hours=100)
            )
        )
    assert await jobs_runtime.relay.cleanup(timedelta(hours=72)) == 1
    async with jobs_runtime.session_factory() as session:
        left = (await session.scalars(select(OutboxMessage))).all()
    assert sorted((row.sent_at is None) for row in left) == [False, True]
    assert await _count(jobs_runtime, ProcessedMessage) == 0


async def test_unknown_actor_is_refused_inside_the_transaction(jobs_runtime: Runtime) -> None:
    async with jobs_runtime.session_factory() as session:
        with pytest.raises(LookupError, match="unknown actor"):
            outbox.enqueue(session, "nobody.home", x=1)
        with pytest.raises(TypeError):
            outbox.enqueue(session, PING_ACTOR, ping_id=object())
    assert await _count(jobs_runtime, OutboxMessage) == 0
