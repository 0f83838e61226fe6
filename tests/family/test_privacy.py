"""Account deletion in the family domain (both backends): a member leaves, an owner's family
goes (and, once migrated, a job deletes it in passport), cards and notifications go."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.models.family import (
    FamilyAccount,
    FamilyCharge,
    FamilyHold,
    FamilyMember,
    HoldStatus,
    LimitFrame,
    PaymentCard,
)
from app.models.identity import User
from app.models.outbox import OutboxMessage
from app.runtime import Runtime
from app.services.identity import users as user_service
from app.uow import unit_of_work
from tests.factories import family as f


async def _delete(runtime: Runtime, user: User) -> None:
    async with unit_of_work(runtime.session_factory) as session:
        found = await session.get(User, user.id)
        assert found is not None
        await user_service.delete_account(session, found)


async def _count(runtime: Runtime, model: Any, *where: Any) -> int:
    async with runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_a_deleted_member_leaves_and_their_ride_ledger_stays(runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000, LimitFrame.MONTH))
    await f.add_card(runtime, kid)
    await f.charge(runtime, family, kid, "paid", 300)
    assert (await f.check(runtime, family, kid, 200, order_id="riding")).available
    await _delete(runtime, kid)
    assert await _count(runtime, FamilyMember, FamilyMember.user_id == kid.id) == 0
    assert await _count(runtime, PaymentCard, PaymentCard.user_id == kid.id) == 0
    assert await _count(runtime, FamilyCharge, FamilyCharge.user_id == kid.id) == 1
    assert await _count(runtime, FamilyHold, FamilyHold.status == HoldStatus.HELD) == 0
    assert await _count(runtime, FamilyAccount, FamilyAccount.id == family.id) == 1


async def test_a_deleted_owner_takes_the_family_along(runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family)
    await f.share_cards(runtime, family, [await f.add_card(runtime, family.owner)])
    await _delete(runtime, family.owner)
    assert await _count(runtime, FamilyAccount, FamilyAccount.id == family.id) == 0
    assert await _count(runtime, FamilyMember, FamilyMember.user_id == kid.id) == 0
    assert (
        await _count(runtime, OutboxMessage, OutboxMessage.actor == "family.delete_passport_family")
        == 0
    )


async def test_a_migrated_owners_passport_family_is_deleted_by_a_job(runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    async with unit_of_work(runtime.session_factory) as session:
        account = await session.get(FamilyAccount, family.id)
        assert account is not None
        account.passport_family_id = "pf-123"
    await _delete(runtime, family.owner)
    async with runtime.session_factory() as session:
        jobs = (
            await session.scalars(
                select(OutboxMessage.kwargs).where(
                    OutboxMessage.actor == "family.delete_passport_family"
                )
            )
        ).all()
    assert jobs == [{"passport_family_id": "pf-123"}]
