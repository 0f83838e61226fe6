"""Cashback rules at the service level (docs/testing.md, `make mutate`): whose grants, which
instants of the window, the smallest credit, and what a credit and its take-back record."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import select

from app.models.base import utcnow
from app.models.wallet import CashbackGrant, WalletEntry, WalletEntryKind
from app.runtime import Runtime
from app.services.wallet import cashback
from tests.factories.goals import assign, create_template
from tests.factories.identity import create_user

STARTS = datetime(2026, 6, 1, 9, 0, tzinfo=utcnow().tzinfo)
ENDS = STARTS + timedelta(days=7)
NOW = STARTS + timedelta(days=1)  # when the worker processes the order


async def _grant(
    runtime: Runtime, user_id: uuid.UUID | None = None, percent: int = 10
) -> CashbackGrant:
    user_id = user_id or (await create_user(runtime)).id
    template = await create_template(runtime)
    user_goal = await assign(runtime, user_id, template.id)
    async with runtime.session_factory() as session, session.begin():
        return await cashback.start_grant(
            session,
            user_id=user_id,
            user_goal_id=user_goal.id,
            percent=percent,
            starts_at=STARTS,
            ends_at=ENDS,
        )


def _order(user_id: uuid.UUID, completed_at: datetime | None, **changes: object) -> SimpleNamespace:
    fields: dict[str, object] = {
        "order_id": f"o-{uuid.uuid4().hex[:10]}",
        "user_id": user_id,
        "status": "COMPLETE",
        "payment_method": "wallet",
        "price_minor": 10_000,
        "currency": "RUB",
        "completed_at": completed_at,
    }
    return SimpleNamespace(**(fields | changes))


async def _apply(runtime: Runtime, order: SimpleNamespace) -> None:
    async with runtime.session_factory() as session, session.begin():
        await cashback.apply(session, order, now=NOW)  # type: ignore[arg-type]


async def _entries(runtime: Runtime, user_id: uuid.UUID) -> list[WalletEntry]:
    async with runtime.session_factory() as session:
        found = await session.scalars(
            select(WalletEntry)
            .where(WalletEntry.user_id == user_id)
            .order_by(WalletEntry.amount_minor.desc())
        )
        return list(found)


async def test_the_window_includes_its_first_instant_and_excludes_its_last(
    runtime: Runtime,
) -> None:
    grant = await _grant(runtime)
    first = _order(grant.user_id, STARTS)
    before = _order(grant.user_id, STARTS - timedelta(microseconds=1))
    last = _order(grant.user_id, ENDS - timedelta(microseconds=1))
    end = _order(grant.user_id, ENDS)
    for order in (first, before, last, end):
        await _apply(runtime, order)
    credited = {e.order_id for e in await _entries(runtime, grant.user_id)}
    assert credited == {first.order_id, last.order_id}


async def test_only_the_users_own_grants_pay(runtime: Runtime) -> None:
    theirs = await _grant(runtime, percent=50)
    mine = await _grant(runtime, percent=10)
    await _apply(runtime, _order(mine.user_id, NOW))
    assert [e.amount_minor for e in await _entries(runtime, mine.user_id)] == [1_000]
    assert await _entries(runtime, theirs.user_id) == []


async def test_a_credit_records_its_grant_goal_order_and_the_processing_time(
    runtime: Runtime,
) -> None:
    grant = await _grant(runtime, percent=10)
    order = _order(grant.user_id, NOW - timedelta(hours=1), price_minor=12_345, currency="KZT")
    await _apply(runtime, order)
    [credit] = await _entries(runtime, grant.user_id)
    assert (credit.amount_minor, credit.currency, credit.kind) == (
        1_234,
        "KZT",
        WalletEntryKind.CASHBACK,
    )
    assert credit.source_key == f"cashback:{grant.id}:{order.order_id}"
    assert (credit.user_goal_id, credit.order_id) == (grant.user_goal_id, order.order_id)
    assert credit.created_at == NOW


async def test_two_grants_each_credit_once_and_a_second_apply_changes_nothing(
    runtime: Runtime,
) -> None:
    first = await _grant(runtime, percent=10)
    second = await _grant(runtime, first.user_id, percent=5)
    order = _order(first.user_id, NOW)
    await _apply(runtime, order)
    await _apply(runtime, order)
    entries = await _entries(runtime, first.user_id)
    assert [(e.amount_minor, e.user_goal_id) for e in entries] == [
        (1_000, first.user_goal_id),
        (500, second.user_goal_id),
    ]


async def test_a_cashback_that_rounds_to_nothing_is_not_written_and_one_minor_unit_is(
    runtime: Runtime,
) -> None:
    grant = await _grant(runtime, percent=10)
    nothing = _order(grant.user_id, NOW, price_minor=9)  # 0.9 → 0
    one = _order(grant.user_id, NOW, price_minor=10)  # exactly 1
    await _apply(runtime, nothing)
    await _apply(runtime, one)
    entries = await _entries(runtime, grant.user_id)
    assert [(e.order_id, e.amount_minor) for e in entries] == [(one.order_id, 1)]


async def test_orders_not_paid_by_wallet_or_not_complete_earn_nothing(runtime: Runtime) -> None:
    grant = await _grant(runtime)
    for order in (
        _order(grant.user_id, NOW, payment_method="card"),
        _order(grant.user_id, NOW, payment_method="family"),
        _order(grant.user_id, NOW, status="IN_PROGRESS"),
        _order(grant.user_id, None),
    ):
        await _apply(runtime, order)
    assert await _entries(runtime, grant.user_id) == []


async def test_a_take_back_reverses_that_orders_credits_only_once_with_their_goal(
    runtime: Runtime,
) -> None:
    first = await _grant(runtime, percent=10)
    second = await _grant(runtime, first.user_id, percent=5)
    refunded = _order(first.user_id, NOW)
    kept = _order(first.user_id, NOW, price_minor=20_000)
    await _apply(runtime, refunded)
    await _apply(runtime, kept)
    for status in ("REFUNDED", "CANCELLED"):  # a refund reported again, then as a cancel
        await _apply(runtime, _order(first.user_id, NOW, order_id=refunded.order_id, status=status))

    reversals = [
        e for e in await _entries(runtime, first.user_id) if e.kind != WalletEntryKind.CASHBACK
    ]
    assert sorted(
        (e.amount_minor, e.currency, e.kind, e.user_goal_id, e.order_id, e.source_key)
        for e in reversals
    ) == sorted(
        [
            (
                -1_000,
                "RUB",
                WalletEntryKind.CASHBACK_REVERSAL,
                first.user_goal_id,
                refunded.order_id,
                f"reversal:cashback:{first.id}:{refunded.order_id}",
            ),
            (
                -500,
                "RUB",
                WalletEntryKind.CASHBACK_REVERSAL,
                second.user_goal_id,
                refunded.order_id,
                f"reversal:cashback:{second.id}:{refunded.order_id}",
            ),
        ]
    )
    assert all(e.created_at == NOW for e in reversals)
    balance = sum(e.amount_minor for e in await _entries(runtime, first.user_id))
    assert balance == 2_000 + 1_000  # the kept order's 10 % and 5 %
