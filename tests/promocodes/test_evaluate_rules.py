"""`eligibility.evaluate` against the database (both backends; docs/testing.md, `make
mutate`): the reason it gives for each way a code can't be used, and the uses it counts."""

from __future__ import annotations

import uuid
from datetime import timedelta

from app.models.base import utcnow
from app.models.identity import User, UserStatus
from app.models.promocodes import (
    Plan,
    Promocode,
    PromocodeKind,
    PromocodeUse,
    PurchaseStatus,
    Rejection,
    UseStatus,
)
from app.runtime import Runtime
from app.services.promocodes import eligibility
from tests.factories.identity import create_user
from tests.factories.promocodes import create_plan, create_promocode, create_purchase_row


async def _verdict(runtime: Runtime, user: User, code: str, plan: Plan) -> eligibility.Verdict:
    async with runtime.session_factory() as session:
        return await eligibility.evaluate(session, user, code, plan, utcnow())


async def _use(
    runtime: Runtime, user: User, promocode: Promocode, plan: Plan, status: UseStatus
) -> None:
    purchase = await create_purchase_row(runtime, user, plan, PurchaseStatus.PENDING)
    async with runtime.session_factory() as session, session.begin():
        session.add(
            PromocodeUse(
                promocode_id=promocode.id,
                user_id=user.id,
                purchase_id=purchase.id,
                status=status,
                reserved_until=utcnow() + timedelta(minutes=15),
            )
        )


async def test_an_accepted_verdict_carries_the_code(runtime: Runtime) -> None:
    user, plan = await create_user(runtime), await create_plan(runtime)
    promocode = await create_promocode(runtime)
    verdict = await _verdict(runtime, user, promocode.code.lower(), plan)
    assert verdict.promocode is not None and verdict.promocode.id == promocode.id
    assert (verdict.rejection, verdict.accepted) == (None, True)


async def test_an_inactive_user_and_an_unknown_code_carry_no_code(runtime: Runtime) -> None:
    user, plan = await create_user(runtime), await create_plan(runtime)
    promocode = await create_promocode(runtime)
    blocked = await create_user(runtime)
    blocked.status = UserStatus.BLOCKED
    assert await _verdict(runtime, blocked, promocode.code, plan) == eligibility.Verdict(
        None, Rejection.USER_NOT_ACTIVE
    )
    assert await _verdict(runtime, user, "NO-SUCH-CODE", plan) == eligibility.Verdict(
        None, Rejection.NOT_FOUND
    )
    refused = await _verdict(runtime, user, promocode.code, plan)
    assert refused.promocode is not None  # a real code's verdict names it, refused or not


async def test_a_code_listed_for_plans_fits_only_those(runtime: Runtime) -> None:
    user = await create_user(runtime)
    listed, other = await create_plan(runtime), await create_plan(runtime)
    limited = await create_promocode(runtime, plans=[listed])
    also_limited = await create_promocode(runtime, plans=[other])  # another code's list
    anywhere = await create_promocode(runtime)
    assert (await _verdict(runtime, user, limited.code, listed)).rejection is None
    assert (
        await _verdict(runtime, user, limited.code, other)
    ).rejection is Rejection.PLAN_NOT_ELIGIBLE
    assert (await _verdict(runtime, user, also_limited.code, other)).rejection is None
    assert (await _verdict(runtime, user, anywhere.code, other)).rejection is None


async def test_only_codes_priced_in_money_must_match_the_plans_currency(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    roubles = await create_plan(runtime, currency="RUB", price_minor=100_000)
    cases = [
        (PromocodeKind.AMOUNT, 500, "USD", Rejection.PLAN_NOT_ELIGIBLE),
        (PromocodeKind.FIXED_PRICE, 500, "USD", Rejection.PLAN_NOT_ELIGIBLE),
        (PromocodeKind.AMOUNT, 500, "RUB", None),
        (PromocodeKind.FIXED_PRICE, 500, None, None),  # no currency: any plan
        (PromocodeKind.PERCENT, 10, "USD", None),  # a percentage fits every currency
    ]
    for kind, value, currency, expected in cases:
        promocode = await create_promocode(runtime, kind=kind, value=value, currency=currency)
        verdict = await _verdict(runtime, user, promocode.code, roubles)
        assert verdict.rejection is expected, (kind, currency)


async def test_the_uses_a_user_holds_count_unless_released(runtime: Runtime) -> None:
    user, other = await create_user(runtime), await create_user(runtime)
    plan = await create_plan(runtime)
    promocode = await create_promocode(runtime, max_uses_per_user=2)
    elsewhere = await create_promocode(runtime)
    await _use(runtime, user, promocode, plan, UseStatus.RELEASED)
    await _use(runtime, other, promocode, plan, UseStatus.CONFIRMED)
    await _use(runtime, user, elsewhere, plan, UseStatus.CONFIRMED)
    assert (await _verdict(runtime, user, promocode.code, plan)).rejection is None
    await _use(runtime, user, promocode, plan, UseStatus.RESERVED)
    assert (await _verdict(runtime, user, promocode.code, plan)).rejection is None  # 1 of 2
    await _use(runtime, user, promocode, plan, UseStatus.CONFIRMED)
    verdict = await _verdict(runtime, user, promocode.code, plan)
    assert verdict.rejection is Rejection.ALREADY_USED_BY_USER  # 2 of 2
    async with runtime.session_factory() as session:
        assert await eligibility.holding_uses(session, promocode.id, user.id) == 2
        assert await eligibility.holding_uses(session, promocode.id, uuid.uuid4()) == 0


async def test_a_code_is_exhausted_at_its_last_use_and_not_before(runtime: Runtime) -> None:
    user, plan = await create_user(runtime), await create_plan(runtime)
    almost = await create_promocode(runtime, max_uses=3, uses=2)
    spent = await create_promocode(runtime, max_uses=3, uses=3)
    assert (await _verdict(runtime, user, almost.code, plan)).rejection is None
    assert (await _verdict(runtime, user, spent.code, plan)).rejection is Rejection.EXHAUSTED
