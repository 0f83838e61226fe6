"""Family bench data (bench_family_ride_check, bench_family_migration): users with phones in
bulk (Core, no password hash: nobody logs in), then families and members through the
domain's own services (`accounts.create_family`, then `members.add_member` and the
invitee's `members.accept`), so the rows are what production makes (PostgreSQL and SQLite);
and, for the ride checks, holds of past rides (`add_history`, PostgreSQL)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import asyncpg
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import utcnow
from app.models.family import LimitFrame
from app.models.identity import Role, User, UserStatus
from app.services.family import accounts, members
from app.services.family.members import LimitSpec

USER_BATCH = 1000
RIDER_HISTORY = 500  # RELEASED holds per rider (add_history); order ids start with "past-"
OTHER_FAMILIES, OTHER_HOLDS, OTHER_LIVE = 1000, 100_000, 2000


def phone(index: int, prefix: str = "+7916") -> str:
    """The index-th bench phone, a valid E.164 number (a Russian mobile range)."""
    return f"{prefix}{index:07d}"


@dataclass
class SeededFamily:
    id: uuid.UUID
    owner_id: uuid.UUID
    owner_phone: str
    member_ids: list[uuid.UUID] = field(default_factory=list)  # users, the owner excluded
    member_phones: list[str] = field(default_factory=list)

    @property
    def phones(self) -> list[str]:
        return [self.owner_phone, *self.member_phones]


async def insert_users(session: AsyncSession, phones: list[str]) -> list[uuid.UUID]:
    """Active users with these phones (one multi-row INSERT per USER_BATCH); their ids."""
    ids = [uuid.uuid4() for _ in phones]
    now = utcnow()
    rows = [
        {
            "id": user_id,
            "email": f"bench-{number.lstrip('+')}@example.com",
            "phone": number,
            "status": UserStatus.ACTIVE,
            "roles": [Role.USER.value],
            "locale": "en",
            "timezone": "UTC",
            "created_at": now,
            "updated_at": now,
        }
        for user_id, number in zip(ids, phones, strict=True)
    ]
    for start in range(0, len(rows), USER_BATCH):
        await session.execute(insert(User), rows[start : start + USER_BATCH])
    return ids


async def create_families(
    session: AsyncSession,
    families: int,
    members_per_family: int,
    *,
    limit: LimitSpec | None,
    first_phone: int = 0,
) -> list[SeededFamily]:
    """`families` families of an owner and `members_per_family` members (with `limit`)."""
    size = 1 + members_per_family
    phones = [phone(first_phone + index) for index in range(families * size)]
    user_ids = await insert_users(session, phones)
    now = utcnow()
    seeded: list[SeededFamily] = []
    for start in range(0, len(phones), size):
        owner_id, owner_phone = user_ids[start], phones[start]
        account_id = await accounts.create_family(
            session, owner_id, name=f"Bench {start // size}", color="00AAFF", now=now
        )
        family = SeededFamily(account_id, owner_id, owner_phone)
        for offset in range(1, size):
            await members.add_member(
                session,
                account_id,
                owner_id,
                phone=phones[start + offset],
                limit=limit,
                passport=None,
                now=now,
            )
            await members.accept(
                session, account_id, user_ids[start + offset], passport=None, now=now
            )
            family.member_ids.append(user_ids[start + offset])
            family.member_phones.append(phones[start + offset])
        seeded.append(family)
    return seeded


def month_limit(amount_minor: int, currency: str) -> LimitSpec:
    return LimitSpec(amount_minor, currency, LimitFrame.MONTH)


async def add_history(db: asyncpg.Connection, riders: set[tuple[str, str]]) -> None:
    """Holds of past rides, then ANALYZE once, so the planner sees a table shaped as in
    production: RIDER_HISTORY RELEASED holds per rider, OTHER_FAMILIES other families (an
    owner each) with OTHER_HOLDS holds between them, OTHER_LIVE of them HELD and live (rides
    in progress elsewhere). Over an empty, analyzed table PostgreSQL's plan of the sums is a
    sequential scan, or the HELD expiry index, which sums every live hold of every member."""
    for account, user in riders:
        await db.execute(
            "INSERT INTO family_holds (id, account_id, user_id, order_id, amount_minor,"
            " currency, status, expires_at, created_at, updated_at)"
            " SELECT gen_random_uuid(), $1::uuid, $2::uuid, 'past-' || $2 || '-' || n, 100,"
            " 'RUB', 'RELEASED', now() - interval '1 day', now() - interval '1 day',"
            " now() - interval '1 day' FROM generate_series(1, $3::int) AS n",
            account,
            user,
            RIDER_HISTORY,
        )
    await db.execute(
        "INSERT INTO users (id, email, status, roles, locale, timezone, created_at, updated_at)"
        " SELECT gen_random_uuid(), 'past-' || n || '@example.com', 'ACTIVE', '[\"USER\"]',"
        " 'en', 'UTC', now(), now() FROM generate_series(1, $1::int) AS n",
        OTHER_FAMILIES,
    )
    await db.execute(
        "INSERT INTO family_accounts (id, owner_id, type, name, color, has_plus_multi,"
        " created_at, updated_at) SELECT gen_random_uuid(), id, 'FAMILY', 'Past', '00AAFF',"
        " false, now(), now() FROM users WHERE email LIKE 'past-%'"
    )
    await db.execute(
        "INSERT INTO family_holds (id, account_id, user_id, order_id, amount_minor, currency,"
        " status, expires_at, created_at, updated_at)"
        " SELECT gen_random_uuid(), a.id, a.owner_id, 'past-other-' || n, 100, 'RUB',"
        " CASE WHEN n <= $2 THEN 'HELD' ELSE 'RELEASED' END,"
        " now() + CASE WHEN n <= $2 THEN interval '1 day' ELSE interval '-1 day' END,"
        " now(), now() FROM generate_series(1, $1::int) AS n"
        " JOIN (SELECT id, owner_id, row_number() OVER (ORDER BY id) - 1 AS k"
        "       FROM family_accounts WHERE name = 'Past') AS a ON a.k = n % $3",
        OTHER_HOLDS,
        OTHER_LIVE,
        OTHER_FAMILIES,
    )
    await db.execute("VACUUM ANALYZE users, family_accounts, family_members, family_holds")
