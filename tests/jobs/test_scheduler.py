"""The periodic scheduler: each tick enqueued once however many schedulers run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.models.outbox import OutboxMessage
from app.runtime import Runtime
from jobs.scheduler import RedisLeaderLock, Scheduler, parse_schedules

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

EVERY_SECOND = {"outbox.cleanup": "* * * * * *"}
START = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


async def _ticks(runtime: Runtime) -> list[str]:
    async with runtime.session_factory() as session:
        rows = await session.scalars(
            select(OutboxMessage.dedupe_key).where(OutboxMessage.actor == "outbox.cleanup")
        )
        return sorted(key for key in rows if key is not None)


def _scheduler(runtime: Runtime, **options: object) -> Scheduler:
    return Scheduler(
        parse_schedules(EVERY_SECOND),
        runtime.session_factory,
        runtime.relay,
        **options,  # type: ignore[arg-type]
    )


async def test_two_schedulers_ticking_at_once_enqueue_each_tick_once(
    jobs_runtime: Runtime,
) -> None:
    first = _scheduler(jobs_runtime, clock=lambda: START)
    second = _scheduler(jobs_runtime, clock=lambda: START)
    fired: list[str] = []
    for second_offset in range(1, 11):
        now = START + timedelta(seconds=second_offset)
        results = await asyncio.gather(first.tick(now), second.tick(now))
        fired += results[0] + results[1]
    ticks = await _ticks(jobs_runtime)
    assert len(ticks) == 10 == len(set(ticks))
    assert sorted(fired) == ticks
    assert ticks[0] == f"schedule:outbox.cleanup:{(START + timedelta(seconds=1)).isoformat()}"


async def test_two_running_schedulers_with_leader_lock_enqueue_each_tick_once(
    jobs_runtime: Runtime,
) -> None:
    assert jobs_runtime.redis is not None
    locks = [RedisLeaderLock(jobs_runtime.redis, ttl_seconds=5) for _ in range(2)]
    schedulers = [_scheduler(jobs_runtime, lock=lock, lock_renew_seconds=0.2) for lock in locks]
    stop = asyncio.Event()
    started = datetime.now(UTC)
    tasks = [asyncio.create_task(scheduler.run(stop)) for scheduler in schedulers]
    await asyncio.sleep(3.2)
    stop.set()
    await asyncio.gather(*tasks)
    elapsed = (datetime.now(UTC) - started).total_seconds()

    ticks = await _ticks(jobs_runtime)
    assert len(ticks) == len(set(ticks))
    assert int(elapsed) - 1 <= len(ticks) <= int(elapsed) + 1
    # Only one of them was leader; it released the lock when it stopped.
    assert await jobs_runtime.redis.get("engage:scheduler:leader") is None


async def test_leader_lock_has_one_holder_and_passes_on_after_release(
    jobs_runtime: Runtime,
) -> None:
    assert jobs_runtime.redis is not None
    first = RedisLeaderLock(jobs_runtime.redis, ttl_seconds=5)
    second = RedisLeaderLock(jobs_runtime.redis, ttl_seconds=5)
    assert await first.hold() is True
    assert await second.hold() is False
    assert await first.hold() is True  # renewal
    await second.release()  # not the holder: changes nothing
    assert await second.hold() is False
    await first.release()
    assert await second.hold() is True


async def test_missed_ticks_are_coalesced_into_one(jobs_runtime: Runtime) -> None:
    scheduler = _scheduler(jobs_runtime, clock=lambda: START)
    fired = await scheduler.tick(START + timedelta(minutes=10))
    assert len(fired) == 1
    assert await scheduler.tick(START + timedelta(minutes=10)) == []
    assert len(await _ticks(jobs_runtime)) == 1
