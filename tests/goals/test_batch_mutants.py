"""Orders of one user processed in one batch (`process_pending`, both backends), for the
details `make mutate` found untested (docs/testing.md): the goal that follows a close takes
the next orders and its events, a reversal and a new order in one batch, and an order that
completes when the user has no goal."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from app.events import take_committed_events
from app.models.base import utcnow
from app.models.wallet import WalletEntry
from app.runtime import Runtime
from app.services.goals.conditions import ProgressReason
from app.services.goals.events import user_channel
from app.services.goals.processing import ProcessResult, process_pending
from app.services.orders.facts import OrderStatus
from app.services.wallet import cashback
from app.uow import _HOOKS
from tests.factories.goals import assign, create_template, goal, record_and_process
from tests.factories.identity import create_user
from tests.factories.orders import order, record

ONE_RIDE = {"target": 1, "periodDays": 5}
THREE_RIDES = {"target": 3, "periodDays": 5}


async def _process_batch(
    runtime: Runtime, user_id: uuid.UUID
) -> tuple[list[ProcessResult], list[tuple[str, dict[str, Any]]]]:
    """What `goals.process_orders` does for one user, then its after-commit hooks."""
    async with runtime.session_factory() as session:
        async with session.begin():
            results = await process_pending(session, [user_id], now=utcnow())
        for hook in session.info.pop(_HOOKS, ()):
            hook()
        events = [(channel, dict(message)) for channel, message in take_committed_events(session)]
        return results, events


async def test_in_one_batch_the_orders_after_a_close_count_for_the_following_goal(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    first_template = await create_template(runtime, conditions=ONE_RIDE)
    next_template = await create_template(runtime, conditions=THREE_RIDES)
    start = utcnow() - timedelta(hours=1)
    first = await assign(runtime, user.id, first_template.id, now=start - timedelta(hours=1))
    following = await assign(runtime, user.id, next_template.id, now=start - timedelta(hours=1))
    rides = [order(user.id, completed_at=start + timedelta(minutes=n)) for n in range(3)]
    for ride in rides:
        await record(runtime, ride)

    results, events = await _process_batch(runtime, user.id)

    assert results == [
        ProcessResult(ProgressReason.COUNTED, first.id, closed=True),
        ProcessResult(ProgressReason.COUNTED, following.id),
        ProcessResult(ProgressReason.COUNTED, following.id),
    ]
    assert (await goal(runtime, following.id)).progress == 2
    assert {channel for channel, _ in events} == {user_channel(user.id)}
    progress = [e for _, e in events if e["kind"] == "PROGRESS"]
    assert [(e["userGoalId"], e["templateId"], e["current"], e["total"]) for e in progress] == [
        (str(following.id), next_template.id, 2, 3)
    ]


async def test_a_reversal_and_a_new_order_in_one_batch_leave_the_right_count(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime, conditions=THREE_RIDES)
    start = utcnow() - timedelta(hours=1)
    user_goal = await assign(runtime, user.id, template.id, now=start - timedelta(hours=1))
    counted = order(user.id, completed_at=start)
    await record_and_process(runtime, counted)
    await record(runtime, replace(counted, status=OrderStatus.REFUNDED))
    await record(runtime, order(user.id, completed_at=start + timedelta(minutes=5)))

    results, events = await _process_batch(runtime, user.id)

    assert results == [
        ProcessResult(ProgressReason.COUNTED, user_goal.id, reversed=True),
        ProcessResult(ProgressReason.COUNTED, user_goal.id),
    ]
    assert (await goal(runtime, user_goal.id)).progress == 1
    assert [(e["kind"], e["current"]) for _, e in events] == [("REVERSED", 0), ("PROGRESS", 1)]


async def test_an_order_completing_after_the_users_last_goal_closed_has_no_goal(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    user_goal = await assign(
        runtime, user.id, (await create_template(runtime, conditions=ONE_RIDE)).id
    )
    pending = order(user.id, status=OrderStatus.IN_PROGRESS)
    await record(runtime, pending)
    assert (await _process_batch(runtime, user.id))[0] == [
        ProcessResult(ProgressReason.NOT_COMPLETE, user_goal.id)
    ]
    assert (await record_and_process(runtime, order(user.id))).closed  # no goal follows
    await record(runtime, replace(pending, status=OrderStatus.COMPLETE, completed_at=utcnow()))

    results, events = await _process_batch(runtime, user.id)

    assert results == [ProcessResult(ProgressReason.NO_ACTIVE_GOAL, None)]
    assert events == []


async def test_a_count_a_reversal_and_a_count_in_one_batch_write_each_count_once(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    start = utcnow() - timedelta(hours=1)
    template = await create_template(runtime, conditions={"target": 5, "periodDays": 5})
    user_goal = await assign(runtime, user.id, template.id, now=start - timedelta(hours=1))
    counted = order(user.id, completed_at=start)
    await record_and_process(runtime, counted)
    await record(runtime, order(user.id, completed_at=start - timedelta(minutes=1)))
    await record(runtime, replace(counted, status=OrderStatus.REFUNDED))  # flushes mid-batch
    await record(runtime, order(user.id, completed_at=start + timedelta(minutes=1)))

    results, events = await _process_batch(runtime, user.id)

    assert [r.reason for r in results] == [ProgressReason.COUNTED] * 3
    assert [r.reversed for r in results] == [False, True, False]
    assert (await goal(runtime, user_goal.id)).progress == 2  # 1 + 1 - 1 + 1
    assert [(e["kind"], e["current"]) for _, e in events] == [
        ("PROGRESS", 2),
        ("REVERSED", 1),
        ("PROGRESS", 2),
    ]


async def test_a_batch_matches_the_payment_method_and_credits_cashback_at_the_jobs_time(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    start = utcnow() - timedelta(hours=1)
    wallet_only = {"target": 5, "periodDays": 5, "paymentMethods": ["wallet"]}
    template = await create_template(runtime, conditions=wallet_only)
    user_goal = await assign(runtime, user.id, template.id, now=start - timedelta(hours=1))
    async with runtime.session_factory() as session, session.begin():
        await cashback.start_grant(
            session,
            user_id=user.id,
            user_goal_id=user_goal.id,
            percent=10,
            starts_at=start - timedelta(hours=1),
            ends_at=start + timedelta(days=1),
        )
    by_wallet = order(user.id, payment_method="wallet", price_minor=10_000, completed_at=start)
    by_card = order(user.id, payment_method="card", completed_at=start + timedelta(minutes=1))
    for ride in (by_wallet, by_card):
        await record(runtime, ride)
    now = utcnow()
    async with runtime.session_factory() as session, session.begin():
        results = await process_pending(session, [user.id], now=now)
    assert [r.reason for r in results] == [
        ProgressReason.COUNTED,
        ProgressReason.PAYMENT_METHOD,
    ]
    async with runtime.session_factory() as session:
        [credit] = (await session.scalars(select(WalletEntry))).all()
    assert (credit.order_id, credit.amount_minor, credit.created_at) == (
        by_wallet.order_id,
        1_000,
        now,
    )


async def test_an_order_at_the_deadline_processed_at_that_instant_counts_for_the_next_goal(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    short = await create_template(runtime, conditions={"target": 3, "periodDays": 1})
    following = await create_template(runtime, conditions={"target": 3, "periodDays": 2})
    first = await assign(runtime, user.id, short.id, ends_at=utcnow() + timedelta(minutes=2))
    second = await assign(runtime, user.id, following.id)
    deadline = (await goal(runtime, first.id)).expires_at
    assert deadline is not None
    at_deadline = order(user.id, completed_at=deadline)
    result = await record_and_process(runtime, at_deadline, now=deadline)
    assert (result.user_goal_id, result.reason) == (second.id, ProgressReason.COUNTED)


def _lag_sample(suffix: str) -> float:
    name = f"engage_goal_processing_lag_seconds_{suffix}"
    return REGISTRY.get_sample_value(name) or 0.0


async def test_the_processing_lag_is_observed_from_completion_even_when_zero(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    now = utcnow()
    await assign(
        runtime, user.id, (await create_template(runtime)).id, now=now - timedelta(hours=1)
    )
    await record(runtime, order(user.id, completed_at=now))  # processed at its completion
    await record(runtime, order(user.id, completed_at=now - timedelta(seconds=30)))
    await record(runtime, order(user.id, status=OrderStatus.IN_PROGRESS))  # no completion
    count, total = _lag_sample("count"), _lag_sample("sum")
    async with runtime.session_factory() as session:
        async with session.begin():
            await process_pending(session, [user.id], now=now)
        for hook in session.info.pop(_HOOKS, ()):
            hook()
    assert _lag_sample("count") - count == 2
    assert _lag_sample("sum") - total == pytest.approx(30.0)
