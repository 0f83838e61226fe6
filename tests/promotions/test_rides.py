"""Rides counting for STARTED promotions (both backends): what counts and why not, a ride
completed later, reversals, the ride that completes the run, goals and promotions on the same
orders, and the statements one processing job costs."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from app.models.base import utcnow
from app.models.promotions import PromotionRide
from app.runtime import Runtime
from app.services.goals.processing import process_pending
from app.services.orders.facts import OrderStatus
from app.uow import unit_of_work
from tests.factories import promotions as f
from tests.factories.goals import assign, create_template, goal, process, process_users
from tests.factories.identity import create_user
from tests.factories.orders import order, record, record_batch
from tests.goals.test_statement_count import counting_statements


async def _ledger(runtime: Runtime, user_id: uuid.UUID) -> dict[str, tuple[str, bool, bool]]:
    """order id -> (reason, counted, reversed)."""
    async with runtime.session_factory() as session:
        rides = await session.scalars(select(PromotionRide).where(PromotionRide.user_id == user_id))
        return {r.order_id: (r.reason, r.counted, r.reversed_at is not None) for r in rides}


async def test_a_ride_counts_when_complete_in_currency_and_at_least_the_minimum(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    promotion = await f.started(runtime, user.id, target_rides=5, min_ride_amount_minor=10_000)
    start = (await f.run_of(runtime, user.id, promotion)).started_at
    rides = {
        "exact minimum": await f.ride(runtime, user.id, price_minor=10_000),
        "below": await f.ride(runtime, user.id, price_minor=9_999),
        "pesos": await f.ride(runtime, user.id),
        "roubles": await _ride(runtime, user.id, currency="RUB"),
        "before the start": await f.ride(
            runtime, user.id, completed_at=start - timedelta(seconds=1)
        ),
    }
    ledger = await _ledger(runtime, user.id)
    assert {name: ledger[order_id][:2] for name, order_id in rides.items()} == {
        "exact minimum": ("COUNTED", True),
        "below": ("BELOW_MINIMUM", False),
        "pesos": ("COUNTED", True),
        "roubles": ("CURRENCY_MISMATCH", False),
        "before the start": ("OUTSIDE_WINDOW", False),
    }
    assert (await f.run_of(runtime, user.id, promotion)).progress == 2


async def _ride(runtime: Runtime, user_id: uuid.UUID, **fields: object) -> str:
    data = order(user_id, price_minor=20_000, **fields)  # type: ignore[arg-type]
    await record(runtime, data)
    await process_users(runtime, [user_id])
    return data.order_id


async def test_a_ride_after_the_challenge_window_does_not_count(runtime: Runtime) -> None:
    user = await create_user(runtime)
    promotion = await f.create_promotion(runtime, challenge_days=1)
    await f.set_region(runtime)
    await f.pre_offer(runtime, user.id, promotion)
    started_at = utcnow() - timedelta(days=2)
    await f.start(runtime, user.id, promotion, now=started_at)
    inside = await f.ride(runtime, user.id, completed_at=started_at + timedelta(hours=23))
    at_end = await f.ride(runtime, user.id, completed_at=started_at + timedelta(days=1))
    ledger = await _ledger(runtime, user.id)
    assert (ledger[inside][0], ledger[at_end][0]) == ("COUNTED", "OUTSIDE_WINDOW")


async def test_a_ride_reported_in_progress_counts_once_it_completes(runtime: Runtime) -> None:
    user = await create_user(runtime)
    promotion = await f.started(runtime, user.id)
    pending = order(user.id, status=OrderStatus.IN_PROGRESS, price_minor=20_000, currency="MXN")
    await record(runtime, pending)
    await process_users(runtime, [user.id])
    assert (await _ledger(runtime, user.id))[pending.order_id][:2] == ("NOT_COMPLETE", False)
    await record(runtime, replace(pending, status=OrderStatus.COMPLETE, completed_at=utcnow()))
    await process_users(runtime, [user.id])
    await process_users(runtime, [user.id])  # a redelivery changes nothing
    assert (await _ledger(runtime, user.id))[pending.order_id][:2] == ("COUNTED", True)
    assert (await f.run_of(runtime, user.id, promotion)).progress == 1


@pytest.mark.parametrize("status", [OrderStatus.CANCELLED, OrderStatus.REFUNDED])
async def test_a_reversed_ride_gives_its_count_back_while_started(
    runtime: Runtime, status: OrderStatus
) -> None:
    user = await create_user(runtime)
    promotion = await f.started(runtime, user.id)
    data = order(user.id, price_minor=20_000, currency="MXN")
    await record(runtime, data)
    await process_users(runtime, [user.id])
    await f.ride(runtime, user.id)
    await record(runtime, replace(data, status=status))
    await process_users(runtime, [user.id])
    await process_users(runtime, [user.id])
    assert (await f.run_of(runtime, user.id, promotion)).progress == 1
    assert (await _ledger(runtime, user.id))[data.order_id] == ("COUNTED", True, True)


async def test_the_ride_that_reaches_the_target_completes_the_run_and_later_ones_dont_count(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    promotion = await f.create_promotion(runtime, target_rides=2, claim_days=3)
    await f.set_region(runtime)
    await f.pre_offer(runtime, user.id, promotion)
    start = utcnow() - timedelta(minutes=10)
    await f.start(runtime, user.id, promotion, now=start - timedelta(minutes=1))
    rides = [
        order(
            user.id, price_minor=20_000, currency="MXN", completed_at=start + timedelta(minutes=n)
        )
        for n in range(4)
    ]
    await record_batch(runtime, rides[:3])  # one job: the third arrives with the completing one
    before = utcnow()
    await process_users(runtime, [user.id])
    run = await f.run_of(runtime, user.id, promotion)
    assert (run.status, run.progress) == ("COMPLETED", 2)
    assert run.completed_at is not None and before <= run.completed_at <= utcnow()
    assert run.claim_ends_at == run.completed_at + timedelta(days=3)
    await record(runtime, rides[3])
    await process_users(runtime, [user.id])
    ledger = await _ledger(runtime, user.id)
    assert [ledger[r.order_id][:2] for r in rides[:3]] == [
        ("COUNTED", True),
        ("COUNTED", True),
        ("TARGET_REACHED", False),  # in the job that completed the run
    ]
    assert rides[3].order_id not in ledger  # a COMPLETED run is offered no more rides
    # A refund after completion keeps the count (and the earned reward).
    await record(runtime, replace(rides[0], status=OrderStatus.REFUNDED))
    await process_users(runtime, [user.id])
    run = await f.run_of(runtime, user.id, promotion)
    assert (run.status, run.progress) == ("COMPLETED", 2)


async def test_rides_of_users_without_a_started_run_are_not_recorded(runtime: Runtime) -> None:
    offered = await create_user(runtime)
    promotion = await f.create_promotion(runtime)
    await f.set_region(runtime)
    await f.pre_offer(runtime, offered.id, promotion)  # offered, never started
    await f.ride(runtime, offered.id)
    assert await _ledger(runtime, offered.id) == {}


async def test_goals_and_promotions_both_count_the_same_orders_exactly(runtime: Runtime) -> None:
    users = [await create_user(runtime) for _ in range(3)]
    template = await create_template(runtime, conditions={"target": 50, "periodDays": 5})
    goals = [await assign(runtime, u.id, template.id) for u in users]
    promotions = [await f.started(runtime, u.id, target_rides=50) for u in users]
    rides = [
        order(u.id, price_minor=20_000, currency="MXN", ride_class="comfort")
        for u in users
        for _ in range(4)
    ]
    await record_batch(runtime, rides)
    await process_users(runtime, [u.id for u in users])
    await process_users(runtime, [u.id for u in users])  # a duplicate delivery
    for user, user_goal, promotion in zip(users, goals, promotions, strict=True):
        assert (await goal(runtime, user_goal.id)).progress == 4
        assert (await f.run_of(runtime, user.id, promotion)).progress == 4


# SAVEPOINT, lock, claim, load (goals), goals' ledger and progress, the promotions' STARTED
# runs, their ledger rows for these orders, the new ledger rows, the progress UPDATEs, the
# pending markers, RELEASE SAVEPOINT — whatever the number of orders.
JOB_STATEMENTS_WITH_PROMOTIONS = 12


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # where they are lean
async def test_a_job_with_promotions_costs_the_same_statements_for_1_or_40_orders(
    runtime: Runtime,
) -> None:
    for per_user, users_count in ((1, 1), (8, 5)):
        template = await create_template(runtime, conditions={"target": 50, "periodDays": 5})
        users = [await create_user(runtime) for _ in range(users_count)]
        for user in users:
            await assign(runtime, user.id, template.id)
            await f.started(runtime, user.id, target_rides=50)
        await record_batch(
            runtime,
            [
                order(u.id, price_minor=20_000, currency="MXN")
                for u in users
                for _ in range(per_user)
            ],
        )
        with counting_statements(runtime.engine) as statements:
            await process_users(runtime, [u.id for u in users])
        assert len(statements) == JOB_STATEMENTS_WITH_PROMOTIONS, statements


async def test_the_single_order_job_offers_its_order_to_promotions_too(runtime: Runtime) -> None:
    """`goals.process_order` (messages from before orders became a queue) counts rides too."""
    user = await create_user(runtime)
    promotion = await f.started(runtime, user.id)
    data = order(user.id, price_minor=20_000, currency="MXN")
    await record(runtime, data)
    await process(runtime, data.order_id, user.id)
    await process(runtime, data.order_id, user.id)
    assert (await _ledger(runtime, user.id))[data.order_id] == ("COUNTED", True, False)
    run = await f.run_of(runtime, user.id, promotion)
    assert run.progress == 1
    ride = await _ride_row(runtime, data.order_id)
    assert (ride.amount_minor, ride.currency, ride.ride_at) == (20_000, "MXN", data.completed_at)


async def _ride_row(runtime: Runtime, order_id: str) -> PromotionRide:
    async with runtime.session_factory() as session:
        found = await session.scalar(
            select(PromotionRide).where(PromotionRide.order_id == order_id)
        )
    assert found is not None
    return found


async def test_a_reversal_reported_twice_or_of_a_ride_that_did_not_count_changes_nothing_more(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    promotion = await f.started(runtime, user.id, target_rides=10)
    counted = [order(user.id, price_minor=20_000, currency="MXN") for _ in range(3)]
    cheap = order(user.id, price_minor=100, currency="MXN")
    await record_batch(runtime, [*counted, cheap])
    await process_users(runtime, [user.id])
    assert (await f.run_of(runtime, user.id, promotion)).progress == 3
    for status in (OrderStatus.REFUNDED, OrderStatus.CANCELLED):  # two reports, two jobs
        await record(runtime, replace(counted[0], status=status))
        await record(runtime, replace(cheap, status=status))
        await process_users(runtime, [user.id])
    assert (await f.run_of(runtime, user.id, promotion)).progress == 2
    ledger = await _ledger(runtime, user.id)
    assert ledger[counted[0].order_id] == ("COUNTED", True, True)
    assert ledger[cheap.order_id] == ("BELOW_MINIMUM", False, False)


async def test_a_ride_completed_later_records_when_it_was_completed(runtime: Runtime) -> None:
    user = await create_user(runtime)
    await f.started(runtime, user.id)
    pending = order(user.id, status=OrderStatus.IN_PROGRESS, price_minor=20_000, currency="MXN")
    await record(runtime, pending)
    await process_users(runtime, [user.id])
    assert (await _ride_row(runtime, pending.order_id)).ride_at is None
    completed_at = utcnow()
    done = replace(pending, status=OrderStatus.COMPLETE, completed_at=completed_at)
    await record(runtime, done)
    await process_users(runtime, [user.id])
    assert (await _ride_row(runtime, pending.order_id)).ride_at == completed_at
    await record(runtime, replace(done, status=OrderStatus.REFUNDED))
    await process_users(runtime, [user.id])
    reversed_ride = await _ride_row(runtime, pending.order_id)
    assert (reversed_ride.ride_at, reversed_ride.reversed_at is not None) == (completed_at, True)


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_rides_and_completions_are_counted_after_commit(runtime: Runtime) -> None:
    user = await create_user(runtime)
    await f.started(runtime, user.id, target_rides=2)
    rides_name = "engage_promotion_rides_total"
    before = {
        "counted": _count(rides_name, reason="COUNTED"),
        "cheap": _count(rides_name, reason="BELOW_MINIMUM"),
        "completed": _count("engage_promotions_completed_total"),
    }
    pending = order(user.id, status=OrderStatus.IN_PROGRESS, price_minor=20_000, currency="MXN")
    await record_batch(
        runtime,
        [
            order(user.id, price_minor=20_000, currency="MXN"),
            order(user.id, price_minor=1, currency="MXN"),
            pending,
        ],
    )
    await _process_committed(runtime, user.id)
    assert _count("engage_promotions_completed_total") == before["completed"]  # 1 of 2
    await record(runtime, replace(pending, status=OrderStatus.COMPLETE, completed_at=utcnow()))
    await _process_committed(runtime, user.id)
    assert _count(rides_name, reason="COUNTED") - before["counted"] == 2
    assert _count(rides_name, reason="BELOW_MINIMUM") - before["cheap"] == 1
    assert _count("engage_promotions_completed_total") - before["completed"] == 1


async def _process_committed(runtime: Runtime, user_id: uuid.UUID) -> None:
    async with unit_of_work(runtime.session_factory) as session:
        await process_pending(session, [user_id], now=utcnow())
