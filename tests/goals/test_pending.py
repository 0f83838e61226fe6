"""Orders as their own queue (`goals.process_orders`), on both backends: each user's pending
orders processed in order in one job, every order counted once when batches overlap and jobs
race, a report arriving after a job started gets a job of its own."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from datetime import timedelta

from sqlalchemy import func, select

from app.models.base import utcnow
from app.models.goals import GoalProgressEntry, UserGoalStatus
from app.models.orders import Order
from app.runtime import Runtime
from app.services.orders.facts import OrderStatus
from app.services.orders.queue import CONSUMER
from tests.factories.goals import assign, create_template, goals_of, process_users
from tests.factories.identity import create_user
from tests.factories.orders import order, outbox_messages, record, record_batch


async def ledger(runtime: Runtime) -> dict[str, tuple[str, bool]]:
    async with runtime.session_factory() as session:
        rows = await session.execute(
            select(GoalProgressEntry.order_id, GoalProgressEntry.reason, GoalProgressEntry.counted)
        )
        return {order_id: (reason, counted) for order_id, reason, counted in rows}


async def pending_orders(runtime: Runtime) -> int:
    async with runtime.session_factory() as session:
        count = await session.scalar(
            select(func.count()).select_from(Order).where(Order.pending_at.is_not(None))
        )
        return int(count or 0)


async def test_a_users_pending_orders_are_processed_in_completion_order(runtime: Runtime) -> None:
    user = await create_user(runtime)
    first = await create_template(runtime, conditions={"target": 2, "periodDays": 5})
    second = await create_template(runtime, conditions={"target": 5, "periodDays": 5})
    start = utcnow() - timedelta(minutes=30)
    await assign(runtime, user.id, first.id, now=start - timedelta(minutes=1))
    await assign(runtime, user.id, second.id, now=start - timedelta(minutes=1))
    times = [start + timedelta(minutes=m) for m in (3, 1, 2)]
    rides = [order(user.id, order_id=f"r-{i}", completed_at=t) for i, t in enumerate(times)]
    # Reported in another order than they completed in, in one batch.
    await record_batch(runtime, rides)

    results = await process_users(runtime, [user.id])

    # r-1 (minute 1) and r-2 (minute 2) close the first goal; r-0 (minute 3) counts for the
    # next one, which started at minute 2, when r-2 completed.
    assert [r.closed for r in results] == [False, True, False]
    goals = await goals_of(runtime, user.id)
    assert [(g.status, g.progress) for g in goals] == [
        (UserGoalStatus.DONE, 2),
        (UserGoalStatus.ACTIVE, 1),
    ]
    assert goals[1].starts_at == times[2]
    assert set((await ledger(runtime)).values()) == {("COUNTED", True)}
    assert await pending_orders(runtime) == 0
    # The job is idempotent: run again, nothing happens.
    assert await process_users(runtime, [user.id]) == []
    assert [g.progress for g in await goals_of(runtime, user.id)] == [2, 1]


async def test_a_report_after_the_job_started_gets_a_job_of_its_own(runtime: Runtime) -> None:
    user = await create_user(runtime)
    await assign(runtime, user.id, (await create_template(runtime)).id)
    ride = order(user.id)
    await record(runtime, ride)
    await record(runtime, order(user.id))  # the user's job is still scheduled: no second one
    assert len(await outbox_messages(runtime, CONSUMER)) == 1
    await process_users(runtime, [user.id])
    assert [g.progress for g in await goals_of(runtime, user.id)] == [2]

    await record(runtime, dataclasses.replace(ride, status=OrderStatus.CANCELLED))
    assert len(await outbox_messages(runtime, CONSUMER)) == 2
    await process_users(runtime, [user.id])
    assert [g.progress for g in await goals_of(runtime, user.id)] == [1]
    assert await pending_orders(runtime) == 0


async def test_overlapping_batches_and_racing_jobs_count_every_order_once(
    racing_runtime: Runtime,
) -> None:
    runtime = racing_runtime
    users = [await create_user(runtime) for _ in range(3)]
    first = await create_template(runtime, conditions={"target": 5, "periodDays": 5})
    second = await create_template(runtime, conditions={"target": 50, "periodDays": 5})
    for user in users:
        await assign(runtime, user.id, first.id)
        await assign(runtime, user.id, second.id)
    start = utcnow() + timedelta(seconds=1)
    # One completion time: however the jobs interleave with the batches, every order falls
    # in the period of the goal it meets, so the counts are exact.
    rides = {user.id: [order(user.id, completed_at=start) for _ in range(12)] for user in users}
    everything = [ride for per_user in rides.values() for ride in per_user]
    rng = random.Random(12)
    # Four batches, each a random half of all orders (so they overlap), shuffled.
    batches = [rng.sample(everything, len(everything) // 2) for _ in range(4)]
    batches.append(everything)
    user_ids = [user.id for user in users]
    later = start + timedelta(minutes=1)

    async def jobs() -> None:
        for _ in range(3):
            await process_users(runtime, rng.sample(user_ids, 2), now=later)

    await asyncio.gather(*(record_batch(runtime, b) for b in batches), jobs(), jobs())
    await asyncio.gather(*(process_users(runtime, user_ids, now=later) for _ in range(3)))

    entries = await ledger(runtime)
    assert sorted(entries) == sorted(ride.order_id for ride in everything)
    assert set(entries.values()) == {("COUNTED", True)}
    for user in users:
        goals = await goals_of(runtime, user.id)
        assert [(g.status, g.progress) for g in goals] == [
            (UserGoalStatus.DONE, 5),
            (UserGoalStatus.ACTIVE, 7),
        ]
    assert await pending_orders(runtime) == 0
    assert len(await outbox_messages(runtime, "goals.finish")) == len(users)
