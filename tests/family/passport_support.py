"""Shared by the family migration tests: the passport double on loopback (one server per
test module, emptied per test), cheap password hashing, the job run directly, and reads of
what the migration left locally and in passport.

No fixtures here (imported fixtures would shadow names in the test modules): each module
declares its own thin ones over `cheap_hashing`, `emptied` and `quick_client`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from app import auth
from app.integrations.passport import PassportClient, uid_for
from app.models.base import utcnow
from app.models.family import (
    FamilyAccount,
    FamilyMember,
    FamilyMigration,
    FamilyNotification,
    MigrationState,
)
from app.models.family import FamilyNotificationKind as Kind
from app.models.identity import User
from app.runtime import Runtime
from app.services.family import migration
from app.settings import Settings
from app.uow import unit_of_work
from jobs.family import run_migration
from tests.factories import family as f
from tests.passport_server import PassportDouble

Outcome = MigrationState | timedelta | None


def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The people in these tests never log in: argon2 at its default cost (~0.1 s a user)
    would take most of their time."""
    monkeypatch.setattr(auth, "_password_hasher", PasswordHasher(1, 8, 1))


def emptied(server: PassportDouble) -> PassportDouble:
    """The module's double with no accounts, families, faults or calls (one server start per
    module, not per test); every phone has an account again."""
    server.reset(data=True)
    server.state.without = frozenset()
    return server


def quick_client(double: PassportDouble) -> PassportClient:
    """A client that fails at the first failure: no retries, 0.3 s a call."""
    return double.client(retries=0, timeout=0.3)


def job_settings(runtime: Runtime, double: PassportDouble, **changes: Any) -> Settings:
    values = {
        "passport_url": double.url,
        "passport_token": double.token,
        "family_migration_percent": 100,
        "family_moved_owner_link": "engage://moved/owner-test",
        "family_moved_member_link": "engage://moved/member-test",
        **changes,
    }
    return runtime.settings.model_copy(update=values)


async def run(
    runtime: Runtime, passport: PassportClient, settings: Settings, family: f.Family
) -> Outcome:
    return await run_migration(
        lambda: unit_of_work(runtime.session_factory), passport, settings, str(family.id)
    )


async def scheduled(runtime: Runtime, family: f.Family) -> None:
    async with unit_of_work(runtime.session_factory) as session:
        assert await migration.schedule(
            session, family.id, trigger="ADMIN", cooldown=timedelta(0), now=utcnow()
        )


async def family_with(runtime: Runtime, members: int = 2) -> f.Family:
    family = await f.create_family(runtime)
    for _ in range(members):
        await f.add_member(runtime, family)
    await scheduled(runtime, family)
    return family


async def row(runtime: Runtime, family: f.Family) -> FamilyMigration:
    found = await f.migration_row(runtime, family)
    assert found is not None
    return found


async def linked_id(runtime: Runtime, family: f.Family) -> str | None:
    async with runtime.session_factory() as session:
        return await session.scalar(
            select(FamilyAccount.passport_family_id).where(FamilyAccount.id == family.id)
        )


async def portal(runtime: Runtime, family: f.Family) -> dict[uuid.UUID, tuple[str, str | None]]:
    async with runtime.session_factory() as session:
        rows = await session.execute(
            select(FamilyMember.user_id, FamilyMember.portal_status, FamilyMember.portal_uid).where(
                FamilyMember.account_id == family.id
            )
        )
        return {user: (status.value, uid) for user, status, uid in rows}


async def notices(runtime: Runtime, family: f.Family) -> list[tuple[uuid.UUID, Kind, Any]]:
    async with runtime.session_factory() as session:
        rows = await session.execute(
            select(
                FamilyNotification.user_id, FamilyNotification.kind, FamilyNotification.details
            ).where(FamilyNotification.account_id == family.id)
        )
        return sorted(((u, k, d) for u, k, d in rows), key=lambda n: (n[1].value, str(n[0])))


def people(family: f.Family) -> list[User]:
    return [family.owner, *family.members]


def phone(user: User) -> str:
    assert user.phone is not None
    return user.phone


def passport_families(double: PassportDouble) -> dict[str, set[str]]:
    """Each passport family's member uids, by family id."""
    families = double.state.snapshot()["families"]
    return {fam["family_id"]: {m["uid"] for m in fam["members"]} for fam in families}


async def assert_untouched(runtime: Runtime, family: f.Family) -> None:
    """Nothing half-linked: no passport id, every member LOCAL, no notification."""
    assert await linked_id(runtime, family) is None
    assert set((await portal(runtime, family)).values()) == {("LOCAL", None)}
    assert await notices(runtime, family) == []


async def assert_migrated(runtime: Runtime, double: PassportDouble, family: f.Family) -> None:
    uids = {uid_for(phone(u)) for u in people(family)}
    pfid = await linked_id(runtime, family)
    assert passport_families(double) == {pfid: uids}
    expected = {u.id: ("LINKED", uid_for(phone(u))) for u in people(family)}
    assert await portal(runtime, family) == expected
