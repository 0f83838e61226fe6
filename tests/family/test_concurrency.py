"""Families under concurrency, on PostgreSQL and the embedded SQLite alike (`racing_runtime`
commits for real): rides racing for the last of a limit (one passes), one order charged
once, one person accepting two families' invitations at once (one wins)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from app.models.base import utcnow
from app.models.family import FamilyCharge, FamilyHold, FamilyMember, HoldStatus, LimitFrame
from app.runtime import Runtime
from app.services.errors import DomainError
from app.services.family import members
from app.services.family.codes import FamilyErrorCode
from app.uow import unit_of_work
from tests.factories import family as f

RACERS = 8


async def test_rides_racing_for_the_last_of_a_limit_pass_once(racing_runtime: Runtime) -> None:
    runtime = racing_runtime
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000, LimitFrame.DAY))
    await f.charge(runtime, family, kid, "earlier", 400)
    results = await asyncio.gather(
        *(f.check(runtime, family, kid, 600, order_id=f"race-{i}") for i in range(RACERS))
    )
    assert sum(result.available for result in results) == 1
    async with runtime.session_factory() as session:
        held = await session.scalar(
            select(func.sum(FamilyHold.amount_minor)).where(FamilyHold.status == HoldStatus.HELD)
        )
    assert held == 600
    after = await f.check(runtime, family, kid, 1)
    assert not after.available and after.limit is not None and after.limit.usage.used == 1000


async def test_one_order_is_charged_once_however_many_retries_race(
    racing_runtime: Runtime,
) -> None:
    runtime = racing_runtime
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(10_000))
    results = await asyncio.gather(
        *(f.charge(runtime, family, kid, "same-order", 700) for _ in range(RACERS))
    )
    assert sorted(r.duplicate for r in results) == [False] + [True] * (RACERS - 1)
    async with runtime.session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(FamilyCharge)) == 1


async def test_a_person_accepting_two_invitations_at_once_joins_one(
    racing_runtime: Runtime,
) -> None:
    runtime = racing_runtime
    first, second = await f.create_family(runtime), await f.create_family(runtime)
    wanted = await f.add_member(runtime, first, accept=False)
    await f.add_member(runtime, second, wanted, accept=False)

    async def accept(family: f.Family) -> None:
        async with unit_of_work(runtime.session_factory) as session:
            await members.accept(session, family.id, wanted.id, passport=None, now=utcnow())

    outcomes = await asyncio.gather(accept(first), accept(second), return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1, outcomes
    assert isinstance(errors[0], DomainError)
    assert errors[0].code is FamilyErrorCode.ALREADY_IN_FAMILY
    async with runtime.session_factory() as session:
        accepted = await session.scalar(
            select(func.count())
            .select_from(FamilyMember)
            .where(FamilyMember.user_id == wanted.id, FamilyMember.accepted_at.is_not(None))
        )
    assert accepted == 1
