"""The outbox's rules without a broker (both backends): what is enqueued and published, what
the relay marks sent or finished, what the sweeper and the redelivery pick, what cleanup
deletes and what the backlog counts. Written for `make mutate` (docs/testing.md): the job
backbone's end-to-end tests in tests/jobs/ need PostgreSQL, Redis and a real worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from prometheus_client import REGISTRY
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.models.base import utcnow
from app.models.outbox import OutboxMessage, ProcessedMessage
from app.runtime import Runtime

ACTOR = "tests.outbox_mutants"
QUEUE = "mutants"
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _actor() -> None:
    outbox.register_actor(ACTOR, QUEUE)


class Recorder:
    """A publish function that keeps every batch; `fail` makes it raise instead."""

    def __init__(self, *, fail: bool = False) -> None:
        self.batches: list[list[outbox.Envelope]] = []
        self.fail = fail

    async def __call__(self, envelopes: Sequence[outbox.Envelope]) -> None:
        if self.fail:
            raise ConnectionError("the broker is down")
        self.batches.append(list(envelopes))

    @property
    def ids(self) -> list[uuid.UUID]:
        return [envelope.id for batch in self.batches for envelope in batch]


class LogRecorder:
    """Stands in for the module's structlog logger: (level, event, fields) per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, object]]] = []

    def __getattr__(self, level: str) -> object:
        def record(event: str, **fields: object) -> None:
            self.calls.append((level, event, fields))

        return record


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> LogRecorder:
    recorder = LogRecorder()
    monkeypatch.setattr(outbox, "log", recorder)
    return recorder


def _broken_factory() -> AsyncSession:
    raise ConnectionError("the database is down")


def _written(actor: str) -> float:
    return REGISTRY.get_sample_value("engage_outbox_written_total", {"actor": actor}) or 0.0


async def _rows(
    runtime: Runtime,
    count: int,
    *,
    age: timedelta,
    sent_age: timedelta | None = None,
    finished: bool = False,
    attempts: int = 0,
) -> list[uuid.UUID]:
    """`count` rows written `age` ago (distinct instants, oldest first), optionally sent."""
    now = utcnow()
    ids = [uuid.uuid4() for _ in range(count)]
    values = [
        {
            "id": message_id,
            "actor": ACTOR,
            "queue": QUEUE,
            "kwargs": {"n": n},
            "request_id": f"req-{n}",
            "created_at": now - age + timedelta(milliseconds=n),
            "sent_at": None if sent_age is None else now - sent_age + timedelta(milliseconds=n),
            "finished_at": now if finished else None,
            "publish_attempts": attempts,
        }
        for n, message_id in enumerate(ids)
    ]
    async with runtime.session_factory() as session, session.begin():
        await session.execute(insert(OutboxMessage), values)
    return ids


async def _state(runtime: Runtime) -> dict[uuid.UUID, OutboxMessage]:
    async with runtime.session_factory() as session:
        return {row.id: row for row in await session.scalars(select(OutboxMessage))}


async def test_enqueue_writes_the_row_and_publishes_it_after_commit(runtime: Runtime) -> None:
    with structlog.contextvars.bound_contextvars(request_id=42):
        async with runtime.session_factory() as session:
            message_id = outbox.enqueue(session, ACTOR, key="value")
            await session.commit()
    envelopes = outbox.take_committed(session)
    assert envelopes == [outbox.Envelope(message_id, ACTOR, QUEUE, {"key": "value"}, "42")]
    assert outbox.take_committed(session) == []  # taken once
    row = (await _state(runtime))[message_id]
    assert (row.actor, row.queue, row.kwargs, row.request_id) == (
        ACTOR,
        QUEUE,
        {"key": "value"},
        "42",
    )


async def test_enqueue_counts_the_job_and_writes_an_unsent_first_attempt_row(
    runtime: Runtime,
) -> None:
    written = _written(ACTOR)
    before = utcnow()
    async with runtime.session_factory() as session:
        message_id = outbox.enqueue(session, ACTOR, n=1)
        await session.commit()
    assert _written(ACTOR) == written + 1
    row = (await _state(runtime))[message_id]
    assert (row.dedupe_key, row.sent_at, row.finished_at, row.publish_attempts) == (
        None,
        None,
        None,
        0,
    )
    assert before <= row.created_at <= utcnow()


async def test_enqueue_refuses_arguments_the_broker_cannot_carry_and_writes_nothing(
    runtime: Runtime,
) -> None:
    written = _written(ACTOR)
    async with runtime.session_factory() as session:
        with pytest.raises(TypeError, match="not JSON serializable"):
            outbox.enqueue(session, ACTOR, when=datetime.now(UTC))
        await session.commit()
    assert outbox.take_committed(session) == []
    assert await _state(runtime) == {}
    assert _written(ACTOR) == written


async def test_enqueue_unique_publishes_once_per_dedupe_key(runtime: Runtime) -> None:
    written = _written(ACTOR)
    async with runtime.session_factory() as session:
        first = await outbox.enqueue_unique(session, ACTOR, "tick-1", at="noon")
        repeat = await outbox.enqueue_unique(session, ACTOR, "tick-1", at="noon")
        other = await outbox.enqueue_unique(session, ACTOR, "tick-2", at="one")
        await session.commit()
    assert first is not None and other is not None and repeat is None
    assert outbox.take_committed(session) == [
        outbox.Envelope(first, ACTOR, QUEUE, {"at": "noon"}, None),
        outbox.Envelope(other, ACTOR, QUEUE, {"at": "one"}, None),
    ]
    rows = await _state(runtime)
    assert sorted(row.dedupe_key or "" for row in rows.values()) == ["tick-1", "tick-2"]
    assert {row.publish_attempts for row in rows.values()} == {0}
    assert rows[first].kwargs == {"at": "noon"} and rows[first].queue == QUEUE
    assert _written(ACTOR) == written + 2


async def test_enqueue_unique_carries_the_request_id(runtime: Runtime) -> None:
    with structlog.contextvars.bound_contextvars(request_id="req-7"):
        async with runtime.session_factory() as session:
            message_id = await outbox.enqueue_unique(session, ACTOR, "tick-7")
            await session.commit()
    assert outbox.take_committed(session) == [
        outbox.Envelope(message_id, ACTOR, QUEUE, {}, "req-7")  # type: ignore[arg-type]
    ]


async def test_discarding_nothing_is_harmless(runtime: Runtime) -> None:
    async with runtime.session_factory() as session:
        outbox.discard_pending(session)
        assert outbox.take_committed(session) == []


async def test_enqueue_unique_refuses_an_unknown_actor_and_bad_arguments(
    runtime: Runtime,
) -> None:
    async with runtime.session_factory() as session:
        with pytest.raises(LookupError, match="unknown actor"):
            await outbox.enqueue_unique(session, "nobody.home", "key")
        with pytest.raises(TypeError):
            await outbox.enqueue_unique(session, ACTOR, "key", value=object())
    assert await _state(runtime) == {}


async def test_discarded_jobs_are_not_published(runtime: Runtime) -> None:
    async with runtime.session_factory() as session:
        outbox.enqueue(session, ACTOR, n=1)
        outbox.discard_pending(session)
        kept = outbox.enqueue(session, ACTOR, n=2)
        await session.commit()
    assert [envelope.id for envelope in outbox.take_committed(session)] == [kept]


async def test_a_relayed_row_is_marked_sent_once_published(runtime: Runtime) -> None:
    recorder = Recorder()
    relay = outbox.OutboxRelay(runtime.session_factory, recorder)
    async with runtime.session_factory() as session:
        message_id = outbox.enqueue(session, ACTOR, n=1)
        await session.commit()
    assert await relay.relay_committed(session) == 1
    assert recorder.ids == [message_id]
    row = (await _state(runtime))[message_id]
    assert row.sent_at is not None and row.publish_attempts == 1 and row.finished_at is None
    assert await relay.relay_committed(session) == 0
    assert len(recorder.batches) == 1


async def test_a_failed_publish_leaves_the_row_unsent(runtime: Runtime, logs: LogRecorder) -> None:
    relay = outbox.OutboxRelay(runtime.session_factory, Recorder(fail=True))
    async with runtime.session_factory() as session:
        message_id = outbox.enqueue(session, ACTOR, n=1)
        await session.commit()
    assert await relay.relay_committed(session) == 1  # never raises
    assert logs.calls == [("exception", "outbox.publish_failed", {"count": 1})]
    await relay.close()
    row = (await _state(runtime))[message_id]
    assert row.sent_at is None and row.publish_attempts == 0


async def test_finish_marks_the_row_finished_within_the_window(runtime: Runtime) -> None:
    relay = outbox.OutboxRelay(runtime.session_factory, Recorder(), mark_sent_window=0.01)
    (message_id,) = await _rows(runtime, 1, age=MINUTE, sent_age=MINUTE, attempts=1)
    relay.finish(message_id)
    # Leave the connection to the marker (PostgreSQL tests share one) until it is done.
    for _ in range(500):
        await asyncio.sleep(0.01)
        if relay._marker is not None and relay._marker.done():
            break
    row = (await _state(runtime))[message_id]
    assert row.finished_at is not None and row.publish_attempts == 1  # finishing is no publish
    await relay.close()


async def test_with_a_window_rows_are_marked_sent_together_later(runtime: Runtime) -> None:
    relay = outbox.OutboxRelay(runtime.session_factory, Recorder(), mark_sent_window=30.0)
    ids = await _rows(runtime, 2, age=timedelta(0))
    envelopes = [outbox.Envelope(i, ACTOR, QUEUE, {}) for i in ids]
    await relay.relay(envelopes[:1])
    await relay.relay(envelopes[1:])
    assert all(row.sent_at is None for row in (await _state(runtime)).values())
    await relay.close()  # cancels the window and marks what is left
    assert relay._marker is not None and relay._marker.cancelled()
    rows = await _state(runtime)
    assert len({row.sent_at for row in rows.values()}) == 1
    assert {row.publish_attempts for row in rows.values()} == {1}


async def test_close_marks_what_was_published_and_finished(runtime: Runtime) -> None:
    relay = outbox.OutboxRelay(runtime.session_factory, Recorder(), mark_sent_window=30.0)
    sent, done = await _rows(runtime, 2, age=MINUTE)
    await relay.relay([outbox.Envelope(sent, ACTOR, QUEUE, {})])
    relay.finish(done)
    await relay.close()
    rows = await _state(runtime)
    assert rows[sent].sent_at is not None and rows[sent].finished_at is None
    assert rows[done].finished_at is not None and rows[done].sent_at is None
    assert rows[done].publish_attempts == 0


async def test_a_sweep_publishes_only_old_unsent_unfinished_rows_oldest_first(
    runtime: Runtime,
) -> None:
    stale = await _rows(runtime, 3, age=10 * MINUTE)
    fresh = await _rows(runtime, 1, age=timedelta(0))
    sent = await _rows(runtime, 1, age=10 * MINUTE, sent_age=10 * MINUTE, attempts=1)
    finished = await _rows(runtime, 1, age=10 * MINUTE, finished=True)
    recorder = Recorder()
    relay = outbox.OutboxRelay(runtime.session_factory, recorder)

    assert await relay.sweep(MINUTE, batch_size=2) == 3

    assert recorder.ids == stale and [len(b) for b in recorder.batches] == [2, 1]
    assert recorder.batches[0][0] == outbox.Envelope(stale[0], ACTOR, QUEUE, {"n": 0}, "req-0")
    rows = await _state(runtime)
    assert all(rows[i].sent_at is not None and rows[i].publish_attempts == 1 for i in stale)
    assert rows[fresh[0]].sent_at is None and rows[finished[0]].sent_at is None
    assert rows[sent[0]].publish_attempts == 1
    assert await relay.sweep(MINUTE) == 0


async def test_a_sweep_takes_the_oldest_rows_first_whatever_the_insertion_order(
    runtime: Runtime, logs: LogRecorder
) -> None:
    newer = await _rows(runtime, 1, age=5 * MINUTE)
    older = await _rows(runtime, 1, age=10 * MINUTE)
    recorder = Recorder()
    relay = outbox.OutboxRelay(runtime.session_factory, recorder)
    assert await relay.sweep(MINUTE, batch_size=1) == 2
    assert recorder.ids == older + newer
    assert [(level, event, fields["count"]) for level, event, fields in logs.calls] == [
        ("warning", "outbox.swept", 1),
        ("warning", "outbox.swept", 1),
    ]
    assert logs.calls[0][2]["ids"] == [str(older[0])]


async def test_redelivery_takes_the_longest_lost_first_and_logs_it(
    runtime: Runtime, logs: LogRecorder
) -> None:
    newer = await _rows(runtime, 1, age=20 * MINUTE, sent_age=5 * MINUTE, attempts=1)
    older = await _rows(runtime, 1, age=20 * MINUTE, sent_age=10 * MINUTE, attempts=1)
    recorder = Recorder()
    relay = outbox.OutboxRelay(runtime.session_factory, recorder)
    assert await relay.redeliver(MINUTE, max_attempts=5, batch_size=1) == 2
    assert recorder.ids == older + newer
    assert [event for _, event, _ in logs.calls] == ["outbox.redelivered"] * 2


async def test_marking_failures_are_logged_and_left_to_the_sweeper(logs: LogRecorder) -> None:
    relay = outbox.OutboxRelay(_broken_factory, Recorder())  # type: ignore[arg-type]  # a stub
    await relay.relay([outbox.Envelope(uuid.uuid4(), ACTOR, QUEUE, {})])
    relay.finish(uuid.uuid4())
    await relay.close()
    assert logs.calls[0] == ("exception", "outbox.mark_sent_failed", {"count": 1})
    assert ("exception", "outbox.mark_finished_failed", {"count": 1}) in logs.calls


async def test_without_a_window_a_finish_is_marked_at_once(runtime: Runtime) -> None:
    relay = outbox.OutboxRelay(runtime.session_factory, Recorder())
    (message_id,) = await _rows(runtime, 1, age=MINUTE, sent_age=MINUTE, attempts=1)
    relay.finish(message_id)
    for _ in range(40):  # well under a second
        await asyncio.sleep(0.01)
        if relay._marker is not None and relay._marker.done():
            break
    assert (await _state(runtime))[message_id].finished_at is not None
    await relay.close()


async def test_a_sweep_of_exactly_one_batch_stops_after_an_empty_one(runtime: Runtime) -> None:
    stale = await _rows(runtime, 2, age=10 * MINUTE)
    recorder = Recorder()
    relay = outbox.OutboxRelay(runtime.session_factory, recorder)
    assert await relay.sweep(MINUTE, batch_size=2) == 2
    assert recorder.ids == stale and len(recorder.batches) == 1


async def test_redeliver_republishes_lost_rows_up_to_the_attempt_limit(runtime: Runtime) -> None:
    lost = await _rows(runtime, 2, age=20 * MINUTE, sent_age=10 * MINUTE, attempts=1)
    worn = await _rows(runtime, 1, age=20 * MINUTE, sent_age=10 * MINUTE, attempts=3)
    recent = await _rows(runtime, 1, age=20 * MINUTE, sent_age=timedelta(0), attempts=1)
    done = await _rows(runtime, 1, age=20 * MINUTE, sent_age=10 * MINUTE, finished=True)
    unsent = await _rows(runtime, 1, age=20 * MINUTE)
    recorder = Recorder()
    relay = outbox.OutboxRelay(runtime.session_factory, recorder)

    assert await relay.redeliver(MINUTE, max_attempts=3, batch_size=1) == 2

    assert recorder.ids == lost
    rows = await _state(runtime)
    assert [rows[i].publish_attempts for i in lost] == [2, 2]
    assert rows[worn[0]].publish_attempts == 3 and rows[recent[0]].publish_attempts == 1
    assert rows[done[0]].publish_attempts == 0 and rows[unsent[0]].sent_at is None
    assert await relay.redeliver(MINUTE, max_attempts=3) == 0  # sent again just now


async def test_cleanup_deletes_old_sent_rows_and_old_proof_of_processing(
    runtime: Runtime, logs: LogRecorder
) -> None:
    old_sent = await _rows(runtime, 2, age=100 * MINUTE, sent_age=100 * MINUTE)
    old_unsent = await _rows(runtime, 1, age=100 * MINUTE)
    new_sent = await _rows(runtime, 1, age=MINUTE, sent_age=MINUTE)
    old_proof, new_proof = uuid.uuid4(), uuid.uuid4()
    async with runtime.session_factory() as session, session.begin():
        for message_id, age in ((old_proof, 100 * MINUTE), (new_proof, MINUTE)):
            session.add(
                ProcessedMessage(message_id=message_id, actor=ACTOR, processed_at=utcnow() - age)
            )
    relay = outbox.OutboxRelay(runtime.session_factory, Recorder())

    assert await relay.cleanup(10 * MINUTE) == len(old_sent)
    assert logs.calls == [("info", "outbox.cleanup", {"sent_rows": 2, "processed": 1})]
    assert await relay.cleanup(10 * MINUTE) == 0

    assert sorted(await _state(runtime)) == sorted(old_unsent + new_sent)
    async with runtime.session_factory() as session:
        proofs = list(await session.scalars(select(ProcessedMessage.message_id)))
    assert proofs == [new_proof]


async def test_backlog_counts_unsent_rows_and_their_oldest_time(runtime: Runtime) -> None:
    async with runtime.session_factory() as session:
        assert await outbox.backlog(session) == (0, None)
    await _rows(runtime, 1, age=MINUTE, sent_age=MINUTE)
    unsent = await _rows(runtime, 2, age=5 * MINUTE)
    async with runtime.session_factory() as session:
        count, oldest = await outbox.backlog(session)
    written = (await _state(runtime))[unsent[0]].created_at
    assert count == 2
    assert oldest is not None and oldest.tzinfo is not None
    assert oldest.astimezone(UTC).replace(tzinfo=None) == _naive_utc(written)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


async def test_an_actor_declared_without_a_queue_is_queued_on_default(runtime: Runtime) -> None:
    outbox.register_actor("tests.outbox_mutants.default")
    async with runtime.session_factory() as session:
        outbox.enqueue(session, "tests.outbox_mutants.default")
        await session.commit()
    [envelope] = outbox.take_committed(session)
    assert (envelope.queue, envelope.kwargs, envelope.request_id) == ("default", {}, None)


async def test_jobs_enqueued_in_a_rolled_back_savepoint_are_dropped_and_only_those(
    runtime: Runtime,
) -> None:
    async with runtime.session_factory() as session:
        kept = outbox.enqueue(session, ACTOR, n="outer")
        released = await session.begin_nested()  # a savepoint that is kept, before
        kept_in_savepoint = outbox.enqueue(session, ACTOR, n="released")
        await released.commit()
        savepoint = await session.begin_nested()
        dropped = outbox.enqueue(session, ACTOR, n="inner")
        inner = await session.begin_nested()  # a savepoint inside the one rolled back
        dropped_too = outbox.enqueue(session, ACTOR, n="innermost")
        await inner.commit()
        await savepoint.rollback()
        survivor = await session.begin_nested()
        kept_too = outbox.enqueue(session, ACTOR, n="after")
        await survivor.commit()
        await session.commit()
    published = [envelope.id for envelope in outbox.take_committed(session)]
    assert published == [kept, kept_in_savepoint, kept_too]
    assert set(await _state(runtime)) == {kept, kept_in_savepoint, kept_too}
    assert dropped not in published and dropped_too not in published
