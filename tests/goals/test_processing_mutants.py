"""Order processing details that `make mutate` found untested (docs/testing.md): the ledger row
of an order that completes later, the result and event of a reversal, and the metrics."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import select

from app.events import take_committed_events
from app.models.base import utcnow
from app.models.goals import GoalProgressEntry, UserGoalStatus
from app.runtime import Runtime
from app.services.goals.conditions import ProgressReason
from app.services.goals.processing import ProcessResult, process_order
from app.services.orders.facts import OrderStatus
from app.uow import _HOOKS
from tests.factories.goals import assign, create_template, process, record_and_process
from tests.factories.identity import create_user
from tests.factories.orders import order, record

CARD_ONLY = {"target": 3, "periodDays": 5, "paymentMethods": ["card"]}
ONE_RIDE = {"target": 1, "periodDays": 5}


async def _process_committed(
    runtime: Runtime, order_id: str, user_id: uuid.UUID
) -> tuple[ProcessResult, list[dict[str, Any]]]:
    """Process in a transaction, then run its after-commit hooks; the events it published."""
    async with runtime.session_factory() as session:
        async with session.begin():
            result = await process_order(session, order_id, user_id, now=utcnow())
        for hook in session.info.pop(_HOOKS, ()):
            hook()
        return result, [dict(message) for _, message in take_committed_events(session)]


async def _entry(runtime: Runtime, order_id: str) -> GoalProgressEntry:
    async with runtime.session_factory() as session:
        entry = await session.scalar(
            select(GoalProgressEntry).where(GoalProgressEntry.order_id == order_id)
        )
        assert entry is not None
        return entry


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_an_order_completing_later_that_does_not_match_keeps_its_new_reason(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    user_goal = await assign(
        runtime, user.id, (await create_template(runtime, conditions=CARD_ONLY)).id
    )
    pending = order(user.id, status=OrderStatus.IN_PROGRESS, payment_method="cash")
    await record_and_process(runtime, pending)
    before = await _entry(runtime, pending.order_id)
    await record(runtime, replace(pending, status=OrderStatus.COMPLETE, completed_at=utcnow()))
    counted_before = _metric("engage_goal_orders_processed_total", reason="PAYMENT_METHOD")

    result, _ = await _process_committed(runtime, pending.order_id, user.id)

    assert result == ProcessResult(ProgressReason.PAYMENT_METHOD, user_goal.id)
    entry = await _entry(runtime, pending.order_id)
    assert (entry.reason, entry.counted, entry.user_goal_id) == (
        "PAYMENT_METHOD",
        False,
        user_goal.id,
    )
    assert entry.updated_at > before.updated_at
    after = _metric("engage_goal_orders_processed_total", reason="PAYMENT_METHOD")
    assert after == counted_before + 1


async def test_an_order_completing_later_counts_for_the_goal_active_then(runtime: Runtime) -> None:
    user = await create_user(runtime)
    first = await assign(runtime, user.id, (await create_template(runtime, conditions=ONE_RIDE)).id)
    second = await assign(
        runtime, user.id, (await create_template(runtime, conditions=ONE_RIDE)).id
    )
    pending = order(user.id, status=OrderStatus.IN_PROGRESS)
    await record_and_process(runtime, pending)
    assert (await _entry(runtime, pending.order_id)).user_goal_id == first.id
    closing = order(user.id)
    assert (await record_and_process(runtime, closing)).closed  # `second` is active now
    await record(runtime, replace(pending, status=OrderStatus.COMPLETE, completed_at=utcnow()))

    result, _ = await _process_committed(runtime, pending.order_id, user.id)

    assert result == ProcessResult(ProgressReason.COUNTED, second.id, closed=True)
    entry = await _entry(runtime, pending.order_id)
    assert (entry.reason, entry.counted, entry.user_goal_id) == ("COUNTED", True, second.id)
    untouched = await _entry(runtime, closing.order_id)
    assert (untouched.reason, untouched.user_goal_id) == ("COUNTED", first.id)


async def test_closing_a_goal_counts_it_completed_after_commit(runtime: Runtime) -> None:
    user = await create_user(runtime)
    user_goal = await assign(
        runtime, user.id, (await create_template(runtime, conditions=ONE_RIDE)).id
    )
    ride = order(user.id)
    await record(runtime, ride)
    completed_before = _metric("engage_goals_completed_total")

    result, events = await _process_committed(runtime, ride.order_id, user.id)

    assert result == ProcessResult(ProgressReason.COUNTED, user_goal.id, closed=True)
    assert _metric("engage_goals_completed_total") == completed_before + 1
    assert [(e["kind"], e["status"], e["current"]) for e in events][:1] == [
        ("DONE", UserGoalStatus.DONE.value, 1)
    ]


async def test_a_reversal_reports_the_goal_its_count_went_back_to(runtime: Runtime) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime, conditions={"target": 3, "periodDays": 5})
    user_goal = await assign(runtime, user.id, template.id)
    rides = [order(user.id) for _ in range(2)]
    for ride in rides:
        await record_and_process(runtime, ride)
    before = await _entry(runtime, rides[0].order_id)
    await record(runtime, replace(rides[0], status=OrderStatus.CANCELLED))

    result, events = await _process_committed(runtime, rides[0].order_id, user.id)

    assert result == ProcessResult(ProgressReason.COUNTED, user_goal.id, reversed=True)
    assert events == [
        events[0]
        | {
            "kind": "REVERSED",
            "userGoalId": str(user_goal.id),
            "templateId": template.id,
            "status": UserGoalStatus.ACTIVE.value,
            "current": 1,
            "total": 3,
        }
    ]
    entry = await _entry(runtime, rides[0].order_id)
    assert entry.reversed_at is not None and entry.updated_at > before.updated_at


async def test_a_reversal_after_the_goal_closed_names_the_goal_and_changes_nothing(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    user_goal = await assign(
        runtime, user.id, (await create_template(runtime, conditions=ONE_RIDE)).id
    )
    ride = order(user.id)
    assert (await record_and_process(runtime, ride)).closed
    await record(runtime, replace(ride, status=OrderStatus.REFUNDED))

    result = await process(runtime, ride.order_id, user.id)

    assert result == ProcessResult(None, user_goal.id)
    assert (await _entry(runtime, ride.order_id)).reversed_at is None
