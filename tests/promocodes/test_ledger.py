"""The usage ledger: reservations expire, payments confirm or release, confirm after expiry."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.models.base import utcnow
from app.models.promocodes import (
    Plan,
    Promocode,
    PromocodeKind,
    PromocodeUse,
    Purchase,
    PurchaseStatus,
    ReleaseReason,
    UseStatus,
)
from app.runtime import Runtime
from app.services.errors import DomainError
from app.services.promocodes.attempts import Caller
from app.services.promocodes.errors import PurchaseErrorCode
from app.services.promocodes.purchases import (
    confirm_purchase,
    create_purchase,
    fail_purchase,
    release_stale_reservations,
)
from tests.factories.identity import create_user
from tests.factories.promocodes import create_plan, create_promocode


async def _setup(runtime: Runtime, *, max_uses: int = 1) -> tuple[Plan, Promocode]:
    plan = await create_plan(runtime, name="Yearly", price_minor=99_000, duration_days=365)
    code = await create_promocode(
        runtime,
        f"ONE-{uuid.uuid4().hex[:6]}",
        PromocodeKind.AMOUNT,
        10_000,
        currency="RUB",
        max_uses=max_uses,
    )
    return plan, code


async def _buy(runtime: Runtime, plan: Plan, code: Promocode) -> Purchase:
    user = await create_user(runtime)
    async with runtime.session_factory() as session, session.begin():
        purchase, _ = await create_purchase(
            session,
            Caller(user),
            plan_id=plan.id,
            code=code.code.lower(),
            idempotency_key=None,
            settings=runtime.settings,
        )
    assert purchase.final_price_minor == 89_000
    return purchase


async def _expire_reservations(runtime: Runtime) -> int:
    async with runtime.session_factory() as session, session.begin():
        await session.execute(
            update(PromocodeUse).values(reserved_until=utcnow() - timedelta(seconds=1))
        )
        return await release_stale_reservations(session)


async def _state(runtime: Runtime, purchase: Purchase) -> tuple[Purchase, PromocodeUse, int]:
    async with runtime.session_factory() as session:
        stored = await session.get(Purchase, purchase.id)
        use = await session.scalar(
            select(PromocodeUse).where(PromocodeUse.purchase_id == purchase.id)
        )
        code = await session.get(Promocode, purchase.promocode_id)
    assert stored is not None and use is not None and code is not None
    return stored, use, code.uses


async def test_abandoned_reservation_is_released_after_its_ttl(runtime: Runtime) -> None:
    plan, code = await _setup(runtime)
    purchase = await _buy(runtime, plan, code)
    async with runtime.session_factory() as session, session.begin():
        assert await release_stale_reservations(session) == 0  # not stale yet
    assert await _expire_reservations(runtime) == 1
    stored, use, uses = await _state(runtime, purchase)
    assert use.status is UseStatus.RELEASED and use.release_reason is ReleaseReason.TIMEOUT
    assert uses == 0 and stored.status is PurchaseStatus.PENDING
    assert await _expire_reservations(runtime) == 0  # released once


async def test_confirm_after_expiry_retakes_the_use_while_one_is_left(runtime: Runtime) -> None:
    plan, code = await _setup(runtime)
    purchase = await _buy(runtime, plan, code)
    await _expire_reservations(runtime)
    async with runtime.session_factory() as session, session.begin():
        await confirm_purchase(session, purchase.id, actor="service:payments")
    stored, use, uses = await _state(runtime, purchase)
    assert stored.status is PurchaseStatus.CONFIRMED and use.status is UseStatus.CONFIRMED
    assert uses == 1


async def test_confirm_after_expiry_when_someone_else_took_the_use(runtime: Runtime) -> None:
    plan, code = await _setup(runtime)
    first = await _buy(runtime, plan, code)
    await _expire_reservations(runtime)
    await _buy(runtime, plan, code)  # the freed one-time use goes to another buyer
    async with runtime.session_factory() as session:
        with pytest.raises(DomainError) as refused:
            await confirm_purchase(session, first.id, actor="service:payments")
        await session.rollback()
    assert refused.value.code is PurchaseErrorCode.RESERVATION_EXPIRED
    stored, use, uses = await _state(runtime, first)
    assert stored.status is PurchaseStatus.PENDING and use.status is UseStatus.RELEASED
    assert uses == 1


async def test_late_confirm_cannot_exceed_the_per_user_limit(runtime: Runtime) -> None:
    plan, code = await _setup(runtime, max_uses=5)
    user = await create_user(runtime)

    async def buy() -> Purchase:
        async with runtime.session_factory() as session, session.begin():
            purchase, _ = await create_purchase(
                session,
                Caller(user),
                plan_id=plan.id,
                code=code.code,
                idempotency_key=None,
                settings=runtime.settings,
            )
        return purchase

    first = await buy()
    await _expire_reservations(runtime)
    await buy()  # the user's one use, taken again by a second purchase
    async with runtime.session_factory() as session:
        with pytest.raises(DomainError) as refused:
            await confirm_purchase(session, first.id, actor="service:payments")
        await session.rollback()
    assert refused.value.code is PurchaseErrorCode.RESERVATION_EXPIRED
    _, _, uses = await _state(runtime, first)
    assert uses == 1


async def test_payment_results_are_idempotent_and_final(runtime: Runtime) -> None:
    plan, code = await _setup(runtime, max_uses=2)
    failed, confirmed = await _buy(runtime, plan, code), await _buy(runtime, plan, code)
    for _ in range(2):
        async with runtime.session_factory() as session, session.begin():
            await fail_purchase(session, failed.id, actor="svc", reason="card declined")
            await confirm_purchase(session, confirmed.id, actor="svc")
    _, use, uses = await _state(runtime, failed)
    assert use.release_reason is ReleaseReason.PAYMENT_FAILED and uses == 1
    async with runtime.session_factory() as session:
        for call in (
            confirm_purchase(session, failed.id, actor="svc"),
            fail_purchase(session, confirmed.id, actor="svc"),
        ):
            with pytest.raises(DomainError) as refused:
                await call
            assert refused.value.code is PurchaseErrorCode.INVALID_STATE
        with pytest.raises(DomainError) as unknown:
            await confirm_purchase(session, uuid.uuid4(), actor="svc")
        assert unknown.value.code is PurchaseErrorCode.NOT_FOUND


async def test_the_stale_sweep_never_releases_a_confirmed_use(runtime: Runtime) -> None:
    plan, code = await _setup(runtime, max_uses=2)
    confirmed, pending = await _buy(runtime, plan, code), await _buy(runtime, plan, code)
    async with runtime.session_factory() as session, session.begin():
        await confirm_purchase(session, confirmed.id, actor="svc")
    # Both uses are past their reservation TTL; only the one still RESERVED is stale.
    assert await _expire_reservations(runtime) == 1
    stored, use, uses = await _state(runtime, confirmed)
    assert stored.status is PurchaseStatus.CONFIRMED
    assert use.status is UseStatus.CONFIRMED and use.released_at is None
    assert use.release_reason is None
    assert uses == 1
    _, pending_use, _ = await _state(runtime, pending)
    assert pending_use.release_reason is ReleaseReason.TIMEOUT
    assert await _expire_reservations(runtime) == 0


async def test_failing_a_purchase_whose_reservation_timed_out_releases_nothing_again(
    runtime: Runtime,
) -> None:
    plan, code = await _setup(runtime, max_uses=2)
    timed_out = await _buy(runtime, plan, code)
    assert await _expire_reservations(runtime) == 1
    holder = await _buy(runtime, plan, code)  # someone else holds a use now: uses == 1
    async with runtime.session_factory() as session, session.begin():
        await fail_purchase(session, timed_out.id, actor="svc", reason="card declined")
    stored, use, uses = await _state(runtime, timed_out)
    assert stored.status is PurchaseStatus.FAILED
    assert use.status is UseStatus.RELEASED and use.release_reason is ReleaseReason.TIMEOUT
    assert uses == 1  # not decremented a second time
    _, holder_use, _ = await _state(runtime, holder)
    assert holder_use.status is UseStatus.RESERVED
