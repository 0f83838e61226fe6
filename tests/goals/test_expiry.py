"""Expiry and reminders (both backends): overdue goals become MISSED, the next one starts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.models.base import utcnow
from app.models.goals import GoalNotification, NotificationKind, UserGoalStatus
from app.runtime import Runtime
from app.services.goals.conditions import ProgressReason
from app.services.goals.expiry import expire_due, remind_due
from app.services.goals.reading import viewer_goals
from tests.factories.goals import assign, create_template, goal
from tests.factories.identity import create_user

GRACE = timedelta(seconds=60)


async def _expire(runtime: Runtime, now_offset: timedelta) -> int:
    async with runtime.session_factory() as session, session.begin():
        return await expire_due(session, now=utcnow() + now_offset, grace=GRACE, batch_size=50)


async def test_an_overdue_goal_is_missed_and_the_next_one_starts(runtime: Runtime) -> None:
    user = await create_user(runtime)
    short = await create_template(runtime, conditions={"target": 3, "periodDays": 1})
    following = await create_template(runtime, conditions={"target": 3, "periodDays": 2})
    first = await assign(runtime, user.id, short.id)
    second = await assign(runtime, user.id, following.id)

    assert await _expire(runtime, timedelta(hours=23)) == 0
    assert await _expire(runtime, timedelta(days=1, minutes=2)) == 1
    assert await _expire(runtime, timedelta(days=1, minutes=2)) == 0  # nothing left

    missed = await goal(runtime, first.id)
    assert missed.status is UserGoalStatus.MISSED and missed.missed_at is not None
    started = await goal(runtime, second.id)
    assert started.status is UserGoalStatus.ACTIVE
    assert started.starts_at == missed.expires_at  # the next period starts at the deadline


async def test_an_order_after_the_deadline_counts_for_the_next_goal_before_expiry_runs(
    runtime: Runtime,
) -> None:
    from tests.factories.goals import record_and_process
    from tests.factories.orders import order

    user = await create_user(runtime)
    short = await create_template(runtime, conditions={"target": 3, "periodDays": 1})
    following = await create_template(runtime, conditions={"target": 3, "periodDays": 2})
    # A deadline two minutes away keeps the late order within the allowed clock skew.
    first = await assign(runtime, user.id, short.id, ends_at=utcnow() + timedelta(minutes=2))
    second = await assign(runtime, user.id, following.id)
    deadline = (await goal(runtime, first.id)).expires_at
    assert deadline is not None
    late = order(user.id, completed_at=deadline + timedelta(seconds=5))

    result = await record_and_process(runtime, late, now=deadline + timedelta(seconds=10))

    assert (result.user_goal_id, result.reason) == (second.id, ProgressReason.COUNTED)
    assert (await goal(runtime, first.id)).status is UserGoalStatus.MISSED
    started = await goal(runtime, second.id)
    assert (started.status, started.starts_at, started.progress) == (
        UserGoalStatus.ACTIVE,
        deadline,
        1,
    )


async def test_reads_never_show_an_overdue_goal_as_active(runtime: Runtime) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime, conditions={"target": 3, "periodDays": 1})
    await assign(runtime, user.id, template.id)
    async with runtime.session_factory() as session:
        today = await viewer_goals(session, user.id, now=utcnow(), recent_done=5)
        tomorrow = await viewer_goals(
            session, user.id, now=utcnow() + timedelta(days=1, seconds=1), recent_done=5
        )
    assert today.active is not None
    assert tomorrow.active is None
    assert [g.status for g in tomorrow.recent_done] == [UserGoalStatus.MISSED]


async def test_a_waiting_goal_whose_own_deadline_passed_is_skipped(runtime: Runtime) -> None:
    user = await create_user(runtime)
    first_template = await create_template(runtime, conditions={"target": 3, "periodDays": 2})
    second_template = await create_template(runtime)
    third_template = await create_template(runtime)
    await assign(runtime, user.id, first_template.id)
    deadline = utcnow() + timedelta(days=1)
    second = await assign(runtime, user.id, second_template.id, ends_at=deadline)
    third = await assign(runtime, user.id, third_template.id)

    await _expire(runtime, timedelta(days=2, minutes=2))

    assert (await goal(runtime, second.id)).status is UserGoalStatus.MISSED
    assert (await goal(runtime, third.id)).status is UserGoalStatus.ACTIVE


async def test_a_reminder_is_created_once_before_the_deadline(runtime: Runtime) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime, conditions={"target": 3, "periodDays": 2})
    user_goal = await assign(runtime, user.id, template.id)

    async def remind(offset: timedelta) -> int:
        async with runtime.session_factory() as session, session.begin():
            return await remind_due(
                session, now=utcnow() + offset, before=timedelta(hours=24), batch_size=50
            )

    assert await remind(timedelta(hours=1)) == 0
    assert await remind(timedelta(hours=30)) == 1
    assert await remind(timedelta(hours=31)) == 0
    async with runtime.session_factory() as session:
        kinds = list(
            await session.scalars(
                select(GoalNotification.kind).where(GoalNotification.user_goal_id == user_goal.id)
            )
        )
    assert kinds == [NotificationKind.REMINDER]


async def test_deleting_the_account_ends_pending_goals_and_erases_order_data(
    runtime: Runtime,
) -> None:
    from app.models.identity import User
    from app.models.orders import Order
    from app.services.identity.users import delete_account
    from tests.factories.goals import record_and_process
    from tests.factories.orders import order

    user = await create_user(runtime)
    first = await create_template(runtime)
    second = await create_template(runtime)
    active = await assign(runtime, user.id, first.id)
    waiting = await assign(runtime, user.id, second.id)
    ride = order(user.id, data={"pickup": "Arbat 1"})
    await record_and_process(runtime, ride)

    async with runtime.session_factory() as session, session.begin():
        row = await session.get(User, user.id)
        assert row is not None
        await delete_account(session, row)

    assert (await goal(runtime, active.id)).status is UserGoalStatus.MISSED
    assert (await goal(runtime, waiting.id)).status is UserGoalStatus.MISSED
    async with runtime.session_factory() as session:
        stored = await session.get(Order, ride.order_id)
    assert stored is not None and stored.data == {}
