"""Orders for one user processed at once on PostgreSQL, with duplicates and redeliveries:
the count is exact, the goal closes once, the bonus is granted once, surplus orders go on."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.models.base import utcnow
from app.models.goals import GoalProgressEntry, UserGoalStatus
from app.models.wallet import WalletEntry
from app.runtime import Runtime
from app.services.orders.recording import OrderInput
from tests.factories.goals import assign, create_template, finish, goals_of, process
from tests.factories.identity import create_user
from tests.factories.orders import order, outbox_messages, record

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

TARGET = 5
ORDERS = 12


async def test_concurrent_orders_count_exactly_and_close_once(
    committing_runtime: Runtime,
) -> None:
    runtime = committing_runtime
    user = await create_user(runtime)
    first = await create_template(runtime, conditions={"target": TARGET, "periodDays": 5})
    second = await create_template(runtime, conditions={"target": 50, "periodDays": 5})
    await assign(runtime, user.id, first.id)
    await assign(runtime, user.id, second.id)
    start = utcnow() + timedelta(seconds=1)
    rides = [order(user.id, completed_at=start) for _ in range(ORDERS)]

    async def deliver(ride: OrderInput) -> None:
        await record(runtime, ride)
        await process(runtime, ride.order_id, user.id, now=start + timedelta(seconds=5))

    # Each order is reported and its message delivered one to three times, all at once.
    deliveries = [ride for ride in rides for _ in range(random.randint(1, 3))]
    random.shuffle(deliveries)
    await asyncio.gather(*(deliver(ride) for ride in deliveries))

    goals = await goals_of(runtime, user.id)
    assert [(g.status, g.progress) for g in goals] == [
        (UserGoalStatus.DONE, TARGET),
        (UserGoalStatus.ACTIVE, ORDERS - TARGET),
    ]
    async with runtime.session_factory() as session:
        attached = await session.execute(
            select(GoalProgressEntry.user_goal_id, func.count())
            .where(GoalProgressEntry.counted)
            .group_by(GoalProgressEntry.user_goal_id)
        )
        per_goal = dict(attached.all())
    assert per_goal == {goals[0].id: TARGET, goals[1].id: ORDERS - TARGET}
    assert await outbox_messages(runtime, "goals.finish") == [{"user_goal_id": str(goals[0].id)}]

    results = await asyncio.gather(*(finish(runtime, goals[0].id) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    async with runtime.session_factory() as session:
        credits = await session.scalar(select(func.count()).select_from(WalletEntry))
    assert credits == 1
