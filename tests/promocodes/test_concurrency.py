"""Promocode reservations under real concurrency on PostgreSQL (committing transactions)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from sqlalchemy import func, select

from app.models.identity import User
from app.models.promocodes import (
    Plan,
    Promocode,
    PromocodeKind,
    PromocodeUse,
    Purchase,
    Rejection,
    UseStatus,
)
from app.runtime import Runtime
from app.services.promocodes.attempts import Caller, PromocodeRejected
from app.services.promocodes.purchases import create_purchase, fail_purchase
from tests.factories.identity import create_user
from tests.factories.promocodes import create_plan, create_promocode

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

MAX_USES = 7
PER_USER = 2
USERS = 12
CALLS_PER_USER = 4  # each user tries more often than the per-user limit allows


async def _plan_and_code(runtime: Runtime) -> tuple[Plan, Promocode]:
    plan = await create_plan(runtime, "monthly", price_minor=49_900)
    code = await create_promocode(
        runtime, "RUSH", PromocodeKind.PERCENT, 50, max_uses=MAX_USES, max_uses_per_user=PER_USER
    )
    return plan, code


async def _buy(runtime: Runtime, user: User, plan: Plan) -> uuid.UUID | Rejection:
    async with runtime.session_factory() as session:
        try:
            purchase, _ = await create_purchase(
                session,
                Caller(user),
                plan_id=plan.id,
                code="rush",
                idempotency_key=uuid.uuid4().hex,
                settings=runtime.settings,
            )
        except PromocodeRejected as rejection:
            await session.commit()  # the attempt log is kept, as the API does
            return rejection.reason
        await session.commit()
        return purchase.id


async def _holding(runtime: Runtime) -> Counter[uuid.UUID]:
    async with runtime.session_factory() as session:
        rows = await session.scalars(
            select(PromocodeUse.user_id).where(PromocodeUse.status != UseStatus.RELEASED)
        )
        return Counter(rows)


async def test_a_code_is_never_used_more_than_its_limits_under_concurrency(
    committing_runtime: Runtime,
) -> None:
    runtime = committing_runtime
    plan, code = await _plan_and_code(runtime)
    users = [await create_user(runtime) for _ in range(USERS)]
    calls = [_buy(runtime, user, plan) for user in users for _ in range(CALLS_PER_USER)]
    outcomes = await asyncio.gather(*calls)

    reserved = [o for o in outcomes if isinstance(o, uuid.UUID)]
    rejected = Counter(o for o in outcomes if isinstance(o, Rejection))
    assert len(reserved) == MAX_USES
    assert set(rejected) <= {Rejection.EXHAUSTED, Rejection.ALREADY_USED_BY_USER}
    holding = await _holding(runtime)
    assert sum(holding.values()) == MAX_USES
    assert max(holding.values()) <= PER_USER
    async with runtime.session_factory() as session:
        stored = await session.get(Promocode, code.id)
        purchases = await session.scalar(select(func.count()).select_from(Purchase))
    assert stored is not None and stored.uses == MAX_USES
    assert purchases == MAX_USES  # a rejected reservation leaves no purchase behind

    # Failing three payments frees exactly three uses for later buyers.
    for purchase_id in reserved[:3]:
        async with runtime.session_factory() as session, session.begin():
            await fail_purchase(session, purchase_id, actor="service:payments", reason="declined")
    latecomers = [await create_user(runtime) for _ in range(6)]
    late = await asyncio.gather(*(_buy(runtime, user, plan) for user in latecomers))
    assert len([o for o in late if isinstance(o, uuid.UUID)]) == 3
    assert Counter(o for o in late if isinstance(o, Rejection)) == {Rejection.EXHAUSTED: 3}
    async with runtime.session_factory() as session:
        stored = await session.get(Promocode, code.id)
    assert stored is not None and stored.uses == MAX_USES
    assert sum((await _holding(runtime)).values()) == MAX_USES
