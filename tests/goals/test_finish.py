"""The finish step and bonuses (both backends): granted exactly once, each type, cashback."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from app.models.base import utcnow
from app.models.goals import GoalNotification, NotificationKind, UserGoal
from app.models.promocodes import Audience, Promocode, PromocodeGrant, PromocodeKind
from app.models.wallet import CashbackGrant, WalletEntry, WalletEntryKind
from app.runtime import Runtime
from app.services.orders.facts import OrderStatus
from tests.factories.goals import assign, create_template, finish, goal, process, record_and_process
from tests.factories.identity import create_user
from tests.factories.orders import order, record

ONE_RIDE = {"target": 1, "periodDays": 5}


async def _done_goal(runtime: Runtime, bonus: dict[str, object]) -> UserGoal:
    user = await create_user(runtime)
    template = await create_template(runtime, conditions=ONE_RIDE, bonus=bonus)
    user_goal = await assign(runtime, user.id, template.id)
    assert (await record_and_process(runtime, order(user.id))).closed
    return user_goal


async def _wallet(runtime: Runtime, user_id: object) -> list[WalletEntry]:
    async with runtime.session_factory() as session:
        rows = await session.scalars(
            select(WalletEntry)
            .where(WalletEntry.user_id == user_id)
            .order_by(WalletEntry.created_at)
        )
        return list(rows)


async def _notifications(runtime: Runtime, user_goal: UserGoal) -> list[GoalNotification]:
    async with runtime.session_factory() as session:
        rows = await session.scalars(
            select(GoalNotification).where(GoalNotification.user_goal_id == user_goal.id)
        )
        return list(rows)


async def test_a_wallet_bonus_is_granted_once_with_one_achievement(runtime: Runtime) -> None:
    user_goal = await _done_goal(
        runtime, {"type": "WALLET", "amountMinor": 30_000, "currency": "RUB"}
    )

    assert await finish(runtime, user_goal.id)
    assert not await finish(runtime, user_goal.id)  # a redelivery changes nothing

    entries = await _wallet(runtime, user_goal.user_id)
    assert [(e.amount_minor, e.currency, e.kind) for e in entries] == [
        (30_000, "RUB", WalletEntryKind.GOAL_BONUS)
    ]
    granted = await goal(runtime, user_goal.id)
    assert granted.bonus_granted_at is not None
    assert granted.bonus_details == {"type": "WALLET", "amountMinor": 30_000, "currency": "RUB"}
    assert [n.kind for n in await _notifications(runtime, user_goal)] == [
        NotificationKind.ACHIEVEMENT
    ]


async def test_a_promocode_bonus_is_a_personal_single_use_code(runtime: Runtime) -> None:
    user_goal = await _done_goal(
        runtime,
        {
            "type": "PROMOCODE",
            "kind": "AMOUNT",
            "value": 30_000,
            "currency": "RUB",
            "validityDays": 30,
            "rideClasses": ["comfort"],
        },
    )
    await finish(runtime, user_goal.id)
    await finish(runtime, user_goal.id)

    async with runtime.session_factory() as session:
        codes = list(
            await session.scalars(
                select(Promocode)
                .join(PromocodeGrant, PromocodeGrant.promocode_id == Promocode.id)
                .where(PromocodeGrant.user_id == user_goal.user_id)
            )
        )
    assert len(codes) == 1
    code = codes[0]
    assert (code.kind, code.value, code.currency) == (PromocodeKind.AMOUNT, 30_000, "RUB")
    assert (code.max_uses, code.audience) == (1, Audience.GRANTED)
    assert code.code.startswith("BONUS-")
    details = (await goal(runtime, user_goal.id)).bonus_details
    assert details is not None and details["code"] == code.code
    assert details["rideClasses"] == ["comfort"]


async def test_finish_ignores_a_goal_that_is_not_done(runtime: Runtime) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime)
    user_goal = await assign(runtime, user.id, template.id)
    assert not await finish(runtime, user_goal.id)
    assert (await goal(runtime, user_goal.id)).bonus_granted_at is None


async def test_cashback_credits_wallet_orders_in_its_window_and_takes_back_refunds(
    runtime: Runtime,
) -> None:
    user_goal = await _done_goal(runtime, {"type": "CASHBACK", "percent": 10, "days": 7})
    user_id = user_goal.user_id
    await finish(runtime, user_goal.id)
    async with runtime.session_factory() as session, session.begin():
        grant = await session.scalar(select(CashbackGrant))
        assert grant is not None and grant.percent == 10
        assert grant.ends_at - grant.starts_at == timedelta(days=7)
        # Shorten the window so an order just after it is not "from the future".
        grant.ends_at = utcnow() + timedelta(minutes=2)

    later = utcnow() + timedelta(minutes=1)
    by_wallet = order(user_id, payment_method="wallet", price_minor=12_345, completed_at=later)
    by_card = order(user_id, payment_method="card", completed_at=later)
    await record_and_process(runtime, by_wallet)
    await process(runtime, by_wallet.order_id, user_id)  # a redelivery
    await record_and_process(runtime, by_card)
    too_late = order(
        user_id, payment_method="wallet", completed_at=grant.ends_at + timedelta(seconds=1)
    )
    await record_and_process(runtime, too_late, now=too_late.completed_at)

    assert [(e.amount_minor, e.kind) for e in await _wallet(runtime, user_id)] == [
        (1_234, WalletEntryKind.CASHBACK)  # 10 % of 123.45 rounded down
    ]

    await record(runtime, replace(by_wallet, status=OrderStatus.REFUNDED))
    await process(runtime, by_wallet.order_id, user_id)
    await process(runtime, by_wallet.order_id, user_id)
    entries = await _wallet(runtime, user_id)
    assert sorted(e.amount_minor for e in entries) == [-1_234, 1_234]
