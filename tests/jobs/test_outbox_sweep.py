"""The outbox sweeper and the relay's marking at volume (PostgreSQL, real commits): only unsent
rows are swept, a backlog of many batches is swept whole, two sweepers never publish a row
twice, and a relay of more than one marking batch marks every row sent."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from app import outbox
from app.models.base import utcnow
from app.models.outbox import OutboxMessage
from app.runtime import Runtime
from app.services.operations.jobs import PING_ACTOR

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

GRACE = timedelta(minutes=1)


class Recorder:
    """A publish function that records every envelope; `pause` holds each batch a while."""

    def __init__(self, pause: float = 0.0) -> None:
        self.published: list[uuid.UUID] = []
        self.batches: list[int] = []
        self.pause = pause

    async def __call__(self, envelopes: Sequence[outbox.Envelope]) -> None:
        if self.pause:
            await asyncio.sleep(self.pause)
        self.published.extend(envelope.id for envelope in envelopes)
        self.batches.append(len(envelopes))


async def _rows(
    runtime: Runtime, count: int, *, age: timedelta, sent: bool = False
) -> list[uuid.UUID]:
    """`count` outbox rows written `age` ago, unsent or sent (once) at that time."""
    written = utcnow() - age
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
                    # distinct instants: the sweep's order (created_at) is total
                    "created_at": written + timedelta(microseconds=n),
                    "sent_at": written if sent else None,
                    "publish_attempts": 1 if sent else 0,
                }
                for n, message_id in enumerate(ids)
            ],
        )
    return ids


async def _state(runtime: Runtime) -> dict[uuid.UUID, tuple[datetime | None, int]]:
    async with runtime.session_factory() as session:
        rows = await session.scalars(select(OutboxMessage))
        return {row.id: (row.sent_at, row.publish_attempts) for row in rows}


async def test_a_sweep_publishes_only_the_old_unsent_rows(jobs_runtime: Runtime) -> None:
    sent = await _rows(jobs_runtime, 3, age=timedelta(minutes=10), sent=True)
    stale = await _rows(jobs_runtime, 2, age=timedelta(minutes=10))
    fresh = await _rows(jobs_runtime, 1, age=timedelta(seconds=0))
    before = await _state(jobs_runtime)
    recorder = Recorder()
    relay = outbox.OutboxRelay(jobs_runtime.session_factory, recorder)

    assert await relay.sweep(GRACE) == 2

    assert sorted(recorder.published) == sorted(stale)
    after = await _state(jobs_runtime)
    for message_id in sent:  # already sent: untouched
        assert after[message_id] == before[message_id]
    for message_id in stale:
        sent_at, attempts = after[message_id]
        assert sent_at is not None and attempts == 1
    assert after[fresh[0]] == (None, 0)  # still the relay's, inside the grace period
    assert await relay.sweep(GRACE) == 0
    assert len(recorder.published) == 2


@pytest.mark.parametrize("count", [1234, 1000])
async def test_a_backlog_of_several_batches_is_swept_whole(
    jobs_runtime: Runtime, count: int
) -> None:
    stale = await _rows(jobs_runtime, count, age=timedelta(minutes=10))
    recorder = Recorder()
    relay = outbox.OutboxRelay(jobs_runtime.session_factory, recorder)

    assert await relay.sweep(GRACE, batch_size=500) == count

    assert Counter(recorder.published) == Counter(stale)  # each row once
    assert recorder.batches == [500, 500, *([count - 1000] if count > 1000 else [])]
    state = await _state(jobs_runtime)
    assert all(sent_at is not None and attempts == 1 for sent_at, attempts in state.values())
    async with jobs_runtime.session_factory() as session:
        assert await outbox.backlog(session) == (0, None)


async def test_two_concurrent_sweeps_publish_each_row_once(jobs_runtime: Runtime) -> None:
    stale = await _rows(jobs_runtime, 600, age=timedelta(minutes=10))
    first, second = Recorder(pause=0.05), Recorder(pause=0.05)
    relays = [outbox.OutboxRelay(jobs_runtime.session_factory, r) for r in (first, second)]

    totals = await asyncio.gather(*(relay.sweep(GRACE, batch_size=50) for relay in relays))

    published = Counter(first.published + second.published)
    assert published == Counter(stale), "a row was published twice or not at all"
    assert sum(totals) == 600
    assert first.published and second.published  # both took part: the sweeps overlapped
    assert {attempts for _, attempts in (await _state(jobs_runtime)).values()} == {1}


async def test_more_than_one_marking_batch_relayed_at_once_is_all_marked_sent(
    jobs_runtime: Runtime,
) -> None:
    ids = await _rows(jobs_runtime, 2500, age=timedelta(seconds=0))
    async with jobs_runtime.session_factory() as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
    envelopes = [outbox.Envelope(r.id, r.actor, r.queue, r.kwargs, r.request_id) for r in rows]
    recorder = Recorder()
    relay = outbox.OutboxRelay(jobs_runtime.session_factory, recorder)

    await relay.relay(envelopes)

    assert recorder.batches == [2500]  # published at once
    state = await _state(jobs_runtime)
    assert sorted(state) == sorted(ids)
    assert all(sent_at is not None and attempts == 1 for sent_at, attempts in state.values())
    async with jobs_runtime.session_factory() as session:
        assert await outbox.backlog(session) == (0, None)
    # Nothing is left for the sweeper to publish again.
    assert await relay.sweep(timedelta(0)) == 0
    assert len(recorder.published) == 2500
