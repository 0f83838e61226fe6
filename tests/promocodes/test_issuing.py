"""Admin-applied codes (partial success) and personal bonus codes for the goals domain."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.models.promocodes import Plan, Promocode, PromocodeAttempt, PromocodeKind, Rejection
from app.runtime import Runtime
from app.services.promocodes.attempts import Caller, PromocodeRejected
from app.services.promocodes.errors import PurchaseErrorCode
from app.services.promocodes.issuing import (
    ApplyStatus,
    PersonalCode,
    apply_code,
    issue_personal_code,
)
from app.services.promocodes.purchases import create_purchase
from tests.factories.identity import create_user
from tests.factories.promocodes import create_plan, create_promocode


async def _plan(runtime: Runtime) -> Plan:
    return await create_plan(runtime, name="Monthly", price_minor=50_000)


async def test_apply_reports_every_user_and_partial_success(runtime: Runtime) -> None:
    plan = await _plan(runtime)
    await create_promocode(runtime, "GIFT-TWO", PromocodeKind.FREE, 0, max_uses=2)
    users = [await create_user(runtime) for _ in range(3)]
    stranger = uuid.uuid4()
    async with runtime.session_factory() as session, session.begin():
        outcomes = await apply_code(
            session,
            code="gift-two",
            plan_id=plan.id,
            user_ids=[u.id for u in users] + [stranger, users[0].id],
            actor="admin:1",
            reason="compensation for the outage",
            settings=runtime.settings,
        )
    statuses = [(o.user_id, o.status, o.rejection) for o in outcomes]
    assert statuses == [
        (users[0].id, ApplyStatus.APPLIED, None),
        (users[1].id, ApplyStatus.APPLIED, None),
        (users[2].id, ApplyStatus.REJECTED, "EXHAUSTED"),
        (stranger, ApplyStatus.UNKNOWN_USER, None),
    ]
    assert all(o.purchase.final_price_minor == 0 for o in outcomes[:2] if o.purchase)
    async with runtime.session_factory() as session:
        attempts = (await session.scalars(select(PromocodeAttempt))).all()
    assert [(a.user_id, a.reason, a.operation.value) for a in attempts] == [
        (users[2].id, Rejection.EXHAUSTED, "ADMIN_APPLY")
    ]


async def test_personal_bonus_code_is_single_use_and_only_for_its_owner(
    runtime: Runtime,
) -> None:
    plan = await _plan(runtime)
    owner, other = await create_user(runtime), await create_user(runtime)
    async with runtime.session_factory() as session, session.begin():
        promocode = await issue_personal_code(
            session,
            owner.id,
            PersonalCode(PromocodeKind.PERCENT, 25, plan_ids=[plan.id]),
            created_by="goals:bonus",
        )
    assert promocode.code.startswith("BONUS-") and promocode.max_uses == 1

    async def buy(user_id: uuid.UUID) -> int:
        user = owner if user_id == owner.id else other
        async with runtime.session_factory() as session, session.begin():
            purchase, _ = await create_purchase(
                session,
                Caller(user),
                plan_id=plan.id,
                code=promocode.code,
                idempotency_key=None,
                settings=runtime.settings,
            )
        return purchase.final_price_minor

    with pytest.raises(PromocodeRejected) as hidden:
        await buy(other.id)
    assert hidden.value.code is PurchaseErrorCode.NOT_FOUND
    assert hidden.value.reason is Rejection.NOT_ASSIGNED_TO_USER
    assert await buy(owner.id) == 37_500
    with pytest.raises(PromocodeRejected) as again:
        await buy(owner.id)
    assert again.value.reason is Rejection.ALREADY_USED_BY_USER
    async with runtime.session_factory() as session:
        stored = await session.get(Promocode, promocode.id)
        reserved = await session.scalar(select(func.count()).select_from(PromocodeAttempt))
    assert stored is not None and stored.uses == 1
    assert reserved == 0  # the service raised before committing; the API layer logs attempts


@pytest.mark.parametrize(
    ("offer", "message"),
    [
        (PersonalCode(PromocodeKind.FREE, 0), "PERCENT or AMOUNT"),
        (PersonalCode(PromocodeKind.AMOUNT, 500), "currency"),
        (PersonalCode(PromocodeKind.PERCENT, 0), "PERCENT"),
        (PersonalCode(PromocodeKind.PERCENT, 101), "PERCENT"),
    ],
)
async def test_personal_code_offer_is_validated(
    runtime: Runtime, offer: PersonalCode, message: str
) -> None:
    user = await create_user(runtime)
    async with runtime.session_factory() as session:
        with pytest.raises(ValueError, match=message):
            await issue_personal_code(session, user.id, offer, created_by="goals:bonus")
        assert await session.scalar(select(func.count()).select_from(Promocode)) == 0
