"""Family test data: people with phones, families, members with limits, cards, rides
(plain async factories through the domain's own services, so the data is what production
makes). Units of work come from `app.uow` so after-commit work (the outbox) runs as in
production."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app.integrations.passport.client import PassportClient
from app.models.base import utcnow
from app.models.family import FamilyMember, FamilyMigration, LimitFrame
from app.models.identity import User
from app.runtime import Runtime
from app.services.family import accounts, cards, members, rides
from app.services.family.members import LimitSpec
from app.uow import unit_of_work
from tests.factories.identity import access_token, create_user

_phones = itertools.count(1_000_000)


def next_phone() -> str:
    """A fresh valid E.164 number (Russian mobile range)."""
    return f"+7916{next(_phones) % 10_000_000:07d}"


async def person(runtime: Runtime, *, timezone: str | None = None) -> User:
    return await create_user(runtime, phone=next_phone(), timezone=timezone)


@dataclass
class Family:
    id: uuid.UUID
    owner: User
    owner_token: str
    members: list[User]


async def create_family(
    runtime: Runtime,
    owner: User | None = None,
    *,
    name: str = "Семья",
    timezone: str | None = None,
    passport: PassportClient | None = None,
) -> Family:
    owner = owner or await person(runtime, timezone=timezone)
    async with unit_of_work(runtime.session_factory) as session:
        account_id = await accounts.create_family(
            session, owner.id, name=name, color="00AAFF", now=utcnow()
        )
    return Family(account_id, owner, await access_token(runtime, owner), [])


def limit(amount: int, frame: LimitFrame = LimitFrame.MONTH, currency: str = "RUB") -> LimitSpec:
    return LimitSpec(amount, currency, frame)


async def add_member(
    runtime: Runtime,
    family: Family,
    user: User | None = None,
    *,
    spec: LimitSpec | None = None,
    passport: PassportClient | None = None,
    accept: bool = True,
) -> User:
    """Invite `user` (a new person by default) and, with `accept`, have them accept."""
    user = user or await person(runtime)
    assert user.phone is not None
    async with unit_of_work(runtime.session_factory) as session:
        await members.add_member(
            session,
            family.id,
            family.owner.id,
            phone=user.phone,
            limit=spec,
            passport=passport,
            now=utcnow(),
        )
    if accept:
        async with unit_of_work(runtime.session_factory) as session:
            await members.accept(session, family.id, user.id, passport=passport, now=utcnow())
        family.members.append(user)
    return user


async def member_id(runtime: Runtime, family: Family, user: User) -> uuid.UUID:
    async with runtime.session_factory() as session:
        found = await session.scalar(
            select(FamilyMember.id).where(
                FamilyMember.account_id == family.id, FamilyMember.user_id == user.id
            )
        )
    assert found is not None
    return found


async def add_card(runtime: Runtime, user: User, card_id: str | None = None) -> str:
    card_id = card_id or f"card-x{uuid.uuid4().hex[:12]}"
    async with unit_of_work(runtime.session_factory) as session:
        await cards.upsert_card(
            session,
            user.id,
            card_id=card_id,
            brand="VISA",
            last4="4242",
            expires_month=12,
            expires_year=2030,
            now=utcnow(),
        )
    return card_id


async def share_cards(runtime: Runtime, family: Family, card_ids: list[str]) -> None:
    async with unit_of_work(runtime.session_factory) as session:
        await cards.set_family_cards(
            session, family.id, family.owner.id, card_ids, None, now=utcnow()
        )


async def check(
    runtime: Runtime,
    family: Family,
    user: User,
    amount: int,
    *,
    order_id: str | None = None,
    ttl: timedelta = timedelta(hours=1),
    currency: str = "RUB",
    now: datetime | None = None,
) -> rides.RideCheck:
    hold = rides.HoldRequest(order_id, ttl) if order_id else None
    async with unit_of_work(runtime.session_factory) as session:
        return await rides.check(
            session,
            family.id,
            user.id,
            rides.Fare(amount, currency),
            hold=hold,
            now=now or utcnow(),
        )


async def charge(
    runtime: Runtime,
    family: Family,
    user: User,
    order_id: str,
    amount: int,
    *,
    currency: str = "RUB",
    now: datetime | None = None,
) -> rides.Charged:
    async with unit_of_work(runtime.session_factory) as session:
        return await rides.charge(
            session,
            family.id,
            user.id,
            order_id,
            rides.Fare(amount, currency),
            now=now or utcnow(),
        )


async def migration_row(runtime: Runtime, family: Family) -> FamilyMigration | None:
    async with runtime.session_factory() as session:
        return await session.get(FamilyMigration, family.id)
