"""Order processing on both backends: matching, the ledger, closing, reversal, idempotency."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.models.base import utcnow
from app.models.goals import GoalProgressEntry, UserGoalStatus
from app.runtime import Runtime
from app.services.goals.conditions import ProgressReason
from app.services.orders.facts import OrderStatus
from app.services.orders.recording import RecordOutcome
from tests.factories.goals import (
    assign,
    create_template,
    goal,
    goals_of,
    process,
    record_and_process,
)
from tests.factories.identity import create_user
from tests.factories.orders import order, outbox_messages, record


async def _ledger(runtime: Runtime, order_id: str) -> GoalProgressEntry:
    async with runtime.session_factory() as session:
        entry = await session.scalar(
            select(GoalProgressEntry).where(GoalProgressEntry.order_id == order_id)
        )
        assert entry is not None
        return entry


async def _ledger_count(runtime: Runtime) -> int:
    async with runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(GoalProgressEntry)) or 0)


async def test_a_matching_order_counts_once_however_often_it_is_processed(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime)
    user_goal = await assign(runtime, user.id, template.id)
    assert user_goal.status is UserGoalStatus.ACTIVE
    ride = order(user.id)

    first = await record_and_process(runtime, ride)
    again = await process(runtime, ride.order_id, user.id)

    assert first.reason is ProgressReason.COUNTED
    assert again.reason is None
    assert (await goal(runtime, user_goal.id)).progress == 1
    assert (await _ledger(runtime, ride.order_id)).counted
    assert await _ledger_count(runtime) == 1


async def test_an_order_that_does_not_match_is_logged_with_its_reason(runtime: Runtime) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime)
    user_goal = await assign(runtime, user.id, template.id)
    econom = order(user.id, ride_class="econom")

    result = await record_and_process(runtime, econom)

    assert result.reason is ProgressReason.WRONG_RIDE_CLASS
    entry = await _ledger(runtime, econom.order_id)
    assert (entry.reason, entry.counted, entry.user_goal_id) == (
        "WRONG_RIDE_CLASS",
        False,
        user_goal.id,
    )
    assert (await goal(runtime, user_goal.id)).progress == 0


async def test_an_order_without_an_active_goal_is_logged_as_such(runtime: Runtime) -> None:
    user = await create_user(runtime)
    ride = order(user.id)
    result = await record_and_process(runtime, ride)
    assert result.reason is ProgressReason.NO_ACTIVE_GOAL
    assert (await _ledger(runtime, ride.order_id)).user_goal_id is None


async def test_an_order_completed_before_the_goal_started_is_outside_its_period(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime)
    await assign(runtime, user.id, template.id)
    old = order(user.id, completed_at=utcnow() - timedelta(hours=2))
    assert (await record_and_process(runtime, old)).reason is ProgressReason.OUTSIDE_PERIOD


async def test_reaching_the_target_closes_the_goal_and_starts_the_next(runtime: Runtime) -> None:
    user = await create_user(runtime)
    first_template = await create_template(runtime, conditions={"target": 2, "periodDays": 5})
    second_template = await create_template(runtime, conditions={"target": 2, "periodDays": 3})
    first = await assign(runtime, user.id, first_template.id)
    second = await assign(runtime, user.id, second_template.id)
    assert (await goal(runtime, second.id)).status is UserGoalStatus.NEXT
    start = utcnow()
    rides = [order(user.id, completed_at=start + timedelta(minutes=i)) for i in range(3)]

    results = [
        await record_and_process(runtime, ride, now=start + timedelta(minutes=10)) for ride in rides
    ]

    assert [r.closed for r in results] == [False, True, False]
    done = await goal(runtime, first.id)
    assert (done.status, done.progress, done.done_at) == (UserGoalStatus.DONE, 2, done.done_at)
    assert await outbox_messages(runtime, "goals.finish") == [{"user_goal_id": str(first.id)}]
    nxt = await goal(runtime, second.id)
    # The next goal starts when the first was achieved: the surplus order counts for it.
    assert nxt.status is UserGoalStatus.ACTIVE
    assert nxt.starts_at == rides[1].completed_at
    assert nxt.expires_at == rides[1].completed_at + timedelta(days=3)  # type: ignore[operator]
    assert nxt.progress == 1
    assert (await _ledger(runtime, rides[2].order_id)).user_goal_id == second.id


async def test_a_cancelled_order_gives_its_count_back_while_the_goal_is_active(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime)
    user_goal = await assign(runtime, user.id, template.id)
    ride = order(user.id)
    await record_and_process(runtime, ride)

    recorded = await record(runtime, replace(ride, status=OrderStatus.CANCELLED))
    first = await process(runtime, ride.order_id, user.id)
    second = await process(runtime, ride.order_id, user.id)

    assert recorded.outcome is RecordOutcome.STATUS_CHANGED
    assert first.reversed and not second.reversed
    assert (await goal(runtime, user_goal.id)).progress == 0
    assert (await _ledger(runtime, ride.order_id)).reversed_at is not None


async def test_after_done_a_cancellation_changes_nothing(runtime: Runtime) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime, conditions={"target": 1, "periodDays": 5})
    user_goal = await assign(runtime, user.id, template.id)
    ride = order(user.id)
    assert (await record_and_process(runtime, ride)).closed

    await record(runtime, replace(ride, status=OrderStatus.REFUNDED, completed_at=None))
    result = await process(runtime, ride.order_id, user.id)

    assert not result.reversed
    done = await goal(runtime, user_goal.id)
    assert (done.status, done.progress) == (UserGoalStatus.DONE, 1)


async def test_an_order_in_progress_counts_when_it_completes(runtime: Runtime) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime)
    user_goal = await assign(runtime, user.id, template.id)
    when = utcnow()
    pending = order(user.id, status=OrderStatus.IN_PROGRESS, completed_at=when)
    assert (await record_and_process(runtime, pending)).reason is ProgressReason.NOT_COMPLETE

    complete = replace(pending, status=OrderStatus.COMPLETE, completed_at=when)
    assert (await record(runtime, complete)).outcome is RecordOutcome.STATUS_CHANGED
    result = await process(runtime, pending.order_id, user.id)

    assert result.reason is ProgressReason.COUNTED
    assert (await goal(runtime, user_goal.id)).progress == 1


async def test_a_night_window_goal_counts_by_the_city_clock(runtime: Runtime) -> None:
    user = await create_user(runtime)
    template = await create_template(
        runtime,
        conditions={
            "target": 2,
            "periodDays": 5,
            "timeWindow": {"start": "22:00", "end": "06:00"},
        },
    )
    await assign(runtime, user.id, template.id, now=datetime(2026, 1, 10, tzinfo=UTC))
    now = datetime(2026, 1, 11, 12, tzinfo=UTC)
    # 20:30 UTC is 23:30 in Moscow (inside), 19:30 in London... 20:30 in London (outside).
    moscow = order(user.id, completed_at=datetime(2026, 1, 10, 20, 30, tzinfo=UTC))
    london = order(
        user.id,
        completed_at=datetime(2026, 1, 10, 20, 30, tzinfo=UTC),
        city_timezone="Europe/London",
    )
    assert (await record_and_process(runtime, moscow, now=now)).reason is ProgressReason.COUNTED
    assert (
        await record_and_process(runtime, london, now=now)
    ).reason is ProgressReason.OUTSIDE_TIME_WINDOW


async def test_goals_wait_in_assignment_order(runtime: Runtime) -> None:
    user = await create_user(runtime)
    templates = [await create_template(runtime) for _ in range(3)]
    for template in templates:
        await assign(runtime, user.id, template.id)
    goals = await goals_of(runtime, user.id)
    assert [g.goal_id for g in goals] == [t.id for t in templates]
    assert [g.status for g in goals] == [
        UserGoalStatus.ACTIVE,
        UserGoalStatus.NEXT,
        UserGoalStatus.NEXT,
    ]


async def test_reversing_one_order_twice_gives_back_one_count_of_two(runtime: Runtime) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime)  # target 3
    user_goal = await assign(runtime, user.id, template.id)
    first, second = order(user.id), order(user.id)
    await record_and_process(runtime, first)
    await record_and_process(runtime, second)
    assert (await goal(runtime, user_goal.id)).progress == 2

    await record(runtime, replace(first, status=OrderStatus.CANCELLED))
    reversed_once = await process(runtime, first.order_id, user.id)
    reversed_again = await process(runtime, first.order_id, user.id)

    assert reversed_once.reversed and not reversed_again.reversed
    assert (await goal(runtime, user_goal.id)).progress == 1  # decremented once, not twice
    assert (await _ledger(runtime, first.order_id)).reversed_at is not None
    kept = await _ledger(runtime, second.order_id)
    assert kept.counted and kept.reversed_at is None


async def test_a_refunded_order_gives_its_count_back_while_the_goal_is_active(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime)  # target 3
    user_goal = await assign(runtime, user.id, template.id)
    ride = order(user.id)
    await record_and_process(runtime, ride)
    assert (await goal(runtime, user_goal.id)).progress == 1

    await record(runtime, replace(ride, status=OrderStatus.REFUNDED, completed_at=None))
    result = await process(runtime, ride.order_id, user.id)

    assert result.reversed and result.user_goal_id == user_goal.id
    active = await goal(runtime, user_goal.id)
    assert (active.status, active.progress) == (UserGoalStatus.ACTIVE, 0)
    assert (await _ledger(runtime, ride.order_id)).reversed_at is not None


async def test_an_order_completed_exactly_at_the_deadline_counts_for_the_next_goal(
    runtime: Runtime,
) -> None:
    """The period is half-open, [starts_at, expires_at): the deadline instant is the next
    goal's first (app/services/goals/matching.py)."""
    user = await create_user(runtime)
    short = await create_template(runtime, conditions={"target": 3, "periodDays": 1})
    following = await create_template(runtime, conditions={"target": 3, "periodDays": 2})
    first = await assign(runtime, user.id, short.id, ends_at=utcnow() + timedelta(minutes=2))
    second = await assign(runtime, user.id, following.id)
    deadline = (await goal(runtime, first.id)).expires_at
    assert deadline is not None
    just_before = order(user.id, completed_at=deadline - timedelta(microseconds=1))
    at_deadline = order(user.id, completed_at=deadline)

    before = await record_and_process(runtime, just_before, now=deadline + timedelta(seconds=10))
    assert (before.user_goal_id, before.reason) == (first.id, ProgressReason.COUNTED)
    result = await record_and_process(runtime, at_deadline, now=deadline + timedelta(seconds=10))

    assert (result.user_goal_id, result.reason) == (second.id, ProgressReason.COUNTED)
    missed = await goal(runtime, first.id)
    assert (missed.status, missed.progress) == (UserGoalStatus.MISSED, 1)
    started = await goal(runtime, second.id)
    assert (started.status, started.starts_at, started.progress) == (
        UserGoalStatus.ACTIVE,
        deadline,
        1,
    )


async def test_a_redelivered_order_that_did_not_count_stays_uncounted_after_the_goal_changed(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    base = utcnow() - timedelta(hours=1)
    comfort_only = await create_template(
        runtime, conditions={"target": 2, "periodDays": 5, "rideClasses": ["comfort"]}
    )
    any_class = await create_template(runtime, conditions={"target": 3, "periodDays": 5})
    first = await assign(runtime, user.id, comfort_only.id, now=base)
    second = await assign(runtime, user.id, any_class.id, now=base)
    econom = order(user.id, ride_class="econom", completed_at=base + timedelta(minutes=30))
    rejected = await record_and_process(runtime, econom)
    assert (rejected.user_goal_id, rejected.reason) == (first.id, ProgressReason.WRONG_RIDE_CLASS)
    # Two comfort rides close the first goal; the second starts before the econom ride ended,
    # so a fresh match would count the econom ride towards it.
    for minutes in (10, 20):
        await record_and_process(
            runtime, order(user.id, completed_at=base + timedelta(minutes=minutes))
        )
    assert (await goal(runtime, first.id)).status is UserGoalStatus.DONE
    started = await goal(runtime, second.id)
    assert started.status is UserGoalStatus.ACTIVE
    assert econom.completed_at is not None and started.starts_at <= econom.completed_at

    redelivered = await process(runtime, econom.order_id, user.id)

    assert redelivered.reason is None and not redelivered.reversed
    assert (await goal(runtime, second.id)).progress == 0
    entry = await _ledger(runtime, econom.order_id)
    assert (entry.user_goal_id, entry.reason, entry.counted) == (
        first.id,
        ProgressReason.WRONG_RIDE_CLASS.value,
        False,
    )
