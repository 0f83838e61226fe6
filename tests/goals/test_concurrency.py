"""Goals under real concurrency, on both backends (committing transactions, `racing_runtime`).

Orders for one user processed at once, with duplicates and redeliveries: the count is exact,
the goal closes once, the bonus is granted once, surplus orders go on. One CSV file committed
twice at once: one commit assigns, the other gets the answer a second upload gets."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from sqlalchemy import func, select

from app.models.base import utcnow
from app.models.goals import GoalProgressEntry, UserGoalStatus
from app.models.identity import Role
from app.models.wallet import WalletEntry
from app.runtime import Runtime
from app.services.orders.recording import OrderInput
from tests.conftest import make_client
from tests.factories.goals import assign, create_template, finish, goals_of, process
from tests.factories.identity import access_token, create_user
from tests.factories.orders import order, outbox_messages, record
from tests.goals.test_assignment import _upload as upload_csv

TARGET = 5
ORDERS = 12


async def test_concurrent_orders_count_exactly_and_close_once(
    racing_runtime: Runtime,
) -> None:
    runtime = racing_runtime
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


async def test_one_file_committed_twice_at_once_is_assigned_once(racing_runtime: Runtime) -> None:
    runtime = racing_runtime
    token = await access_token(runtime, await create_user(runtime, roles=(Role.ADMIN,)))
    users = [await create_user(runtime) for _ in range(3)]
    template = await create_template(runtime)
    content = "user_id,goal_id\n" + "".join(f"{u.id},{template.id}\n" for u in users)

    async with make_client(runtime) as client:
        bodies = await asyncio.gather(
            *(upload_csv(client, token, content.encode(), dry_run=False) for _ in range(2))
        )
        again = await upload_csv(client, token, content.encode(), dry_run=False)

    payloads = sorted(
        (body["data"]["goalAssignmentUpload"] for body in bodies if "errors" not in body),
        key=lambda payload: -payload["summary"]["assigned"],
    )
    assert [p["summary"]["assigned"] for p in payloads] == [3, 0], bodies
    # The loser answers exactly what an upload after the winner's commit answers.
    assert payloads[1] == again["data"]["goalAssignmentUpload"]
    assert payloads[0]["batchId"] == payloads[1]["batchId"]
    assert [len(await goals_of(runtime, user.id)) for user in users] == [1, 1, 1]
