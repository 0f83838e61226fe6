"""The migration job (`jobs.family.run_migration`, called directly) against the passport
double on loopback, on both backends: linking, members without portal accounts, passport
failing at every step (nothing half-linked, the next run finishes), attempts, leases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import auth
from app.integrations.passport import PassportClient, uid_for
from app.models.base import utcnow
from app.models.family import (
    FamilyAccount,
    FamilyMember,
    FamilyMigration,
    FamilyNotification,
    MigrationState,
    PortalStatus,
)
from app.models.family import FamilyNotificationKind as Kind
from app.models.identity import User
from app.runtime import Runtime
from app.services.family import migration
from app.settings import Settings
from app.uow import unit_of_work
from jobs.family import LEASE, LEASE_MARGIN, run_migration
from tests.factories import family as f
from tests.passport_server import PassportDouble

Outcome = MigrationState | timedelta | None


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """The people here never log in: argon2 at its default cost would take most of the time."""
    monkeypatch.setattr(auth, "_password_hasher", PasswordHasher(1, 8, 1))


@pytest.fixture(scope="module")
def server() -> Iterator[PassportDouble]:
    with PassportDouble() as double:
        yield double


@pytest.fixture
def double(server: PassportDouble) -> PassportDouble:
    server.reset(data=True)
    server.state.without = frozenset()
    return server


@pytest.fixture
async def passport(double: PassportDouble) -> AsyncIterator[PassportClient]:
    async with double.client(retries=0, timeout=0.3) as client:
        yield client


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
            select(FamilyMember.user_id, FamilyMember.portal_status, FamilyMember.portal_uid)
            .where(FamilyMember.account_id == family.id)
        )  # fmt: skip
        return {user: (status.value, uid) for user, status, uid in rows}


async def notices(runtime: Runtime, family: f.Family) -> list[tuple[uuid.UUID, Kind, Any]]:
    async with runtime.session_factory() as session:
        rows = await session.execute(
            select(FamilyNotification.user_id, FamilyNotification.kind, FamilyNotification.details)
            .where(FamilyNotification.account_id == family.id)
        )  # fmt: skip
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
    assert await portal(runtime, family) == {u.id: ("LINKED", uid_for(phone(u))) for u in people(family)}  # fmt: skip


# --- linking ---------------------------------------------------------------------------


async def test_a_family_new_to_passport_is_created_linked_and_told(
    runtime: Runtime, double: PassportDouble, passport: PassportClient
) -> None:
    settings = job_settings(runtime, double)
    family = await family_with(runtime, members=2)
    assert await run(runtime, passport, settings, family) is MigrationState.DONE
    await assert_migrated(runtime, double, family)
    [created] = double.state.snapshot()["families"]
    assert created["admin_uid"] == uid_for(phone(family.owner))
    done = await row(runtime, family)
    assert (done.state, done.attempts, done.last_error) == (MigrationState.DONE, 1, None)
    assert done.finished_at is not None and done.lease_until is None
    owner_link = {"role": "OWNER", "deepLink": "engage://moved/owner-test"}
    member_link = {"role": "MEMBER", "deepLink": "engage://moved/member-test"}
    expected = [(family.owner.id, Kind.FAMILY_MOVED, owner_link)] + [
        (m.id, Kind.FAMILY_MOVED, member_link) for m in family.members
    ]
    assert sorted(await notices(runtime, family), key=str) == sorted(expected, key=str)


async def test_the_owners_passport_family_is_linked_and_its_members_matched(
    runtime: Runtime, double: PassportDouble, passport: PassportClient
) -> None:
    family = await family_with(runtime, members=2)
    owner, there, missing = people(family)
    outsider = "+79990000001"
    existing = await passport.create_family(double.add_account(phone(owner)), idempotency_key="x")
    for number in (phone(there), outsider):
        await passport.add_member(existing.family_id, double.add_account(number))
    double.reset(calls=True)
    assert await run(runtime, passport, job_settings(runtime, double), family) is MigrationState.DONE
    assert await linked_id(runtime, family) == existing.family_id
    assert double.calls("create_family") == []
    assert [c["path"].rsplit("/", 1)[1] for c in double.calls("add_member")] == [
        uid_for(phone(missing))
    ]
    uids = {uid_for(phone(u)) for u in people(family)} | {uid_for(outsider)}
    assert passport_families(double) == {existing.family_id: uids}
    assert (await portal(runtime, family))[there.id] == ("LINKED", uid_for(phone(there)))


async def test_members_without_a_portal_account_stay_local_and_the_owner_is_told(
    runtime: Runtime, double: PassportDouble, passport: PassportClient
) -> None:
    family = await family_with(runtime, members=2)
    owner, linked, local = people(family)
    double.state.without = frozenset({phone(local)})
    assert await run(runtime, passport, job_settings(runtime, double), family) is (
        MigrationState.PARTIAL
    )
    states = await portal(runtime, family)
    assert states[local.id] == ("NO_PORTAL_ACCOUNT", None)
    assert states[linked.id] == ("LINKED", uid_for(phone(linked)))
    pfid = await linked_id(runtime, family)
    assert passport_families(double) == {pfid: {uid_for(phone(owner)), uid_for(phone(linked))}}
    told = await notices(runtime, family)
    assert {(u, k) for u, k, _ in told} == {
        (owner.id, Kind.FAMILY_MOVED),
        (linked.id, Kind.FAMILY_MOVED),
        (owner.id, Kind.MEMBERS_WITHOUT_PORTAL),
    }
    [report] = [d for _, k, d in told if k is Kind.MEMBERS_WITHOUT_PORTAL]
    assert [(m["phone"], m["status"]) for m in report["members"]] == [
        (phone(local), "NO_PORTAL_ACCOUNT")
    ]
    assert (await row(runtime, family)).state is MigrationState.PARTIAL


async def test_a_member_in_another_passport_family_is_refused_and_stays_local(
    runtime: Runtime, double: PassportDouble, passport: PassportClient
) -> None:
    family = await family_with(runtime, members=1)
    [taken] = family.members
    await passport.create_family(double.add_account(phone(taken)), idempotency_key="theirs")
    assert await run(runtime, passport, job_settings(runtime, double), family) is (
        MigrationState.PARTIAL
    )
    assert (await portal(runtime, family))[taken.id] == ("REFUSED", uid_for(phone(taken)))
    assert len(passport_families(double)) == 2


@pytest.mark.parametrize("case", ["no_account", "member_elsewhere"])
async def test_an_owner_passport_cant_take_fails_for_good(
    runtime: Runtime, double: PassportDouble, passport: PassportClient, case: str
) -> None:
    family = await family_with(runtime, members=1)
    if case == "no_account":
        double.state.without = frozenset({phone(family.owner)})
        code = "OWNER_WITHOUT_PORTAL_ACCOUNT"
    else:
        other = await passport.create_family(double.add_account("+79990000002"), idempotency_key="o")
        await passport.add_member(other.family_id, double.add_account(phone(family.owner)))
        code = "OWNER_IN_ANOTHER_PASSPORT_FAMILY"
    before = passport_families(double)
    settings = job_settings(runtime, double)
    assert await run(runtime, passport, settings, family) is MigrationState.FAILED
    failed = await row(runtime, family)
    assert (failed.state, failed.last_error, failed.attempts) == (MigrationState.FAILED, code, 1)
    assert failed.finished_at is not None
    assert await run(runtime, passport, settings, family) is None  # not retried
    assert passport_families(double) == before
    await assert_untouched(runtime, family)


# --- passport failing ------------------------------------------------------------------

FAILURES = {
    "find_account": {"fail_next": 1, "operations": ["find_account"]},
    "family_of": {"fail_next": 1, "operations": ["family_of"]},
    "create_family": {"fail_next": 1, "operations": ["create_family"]},
    "create_family_answer_lost": {
        "fail_next": 1,
        "fail_after_work": True,
        "operations": ["create_family"],
    },
    "add_member": {"fail_next": 1, "operations": ["add_member"]},
    "add_member_answer_lost": {"fail_next": 1, "fail_after_work": True, "operations": ["add_member"]},  # fmt: skip
    "after_one_member": {"fail_after_members": 1},
    "add_member_timeout": {"timeout_next": 1, "operations": ["add_member"]},
}


@pytest.mark.parametrize("step", list(FAILURES))
async def test_passport_failing_at_a_step_links_nothing_and_the_next_run_finishes(
    runtime: Runtime, double: PassportDouble, passport: PassportClient, step: str
) -> None:
    settings = job_settings(runtime, double, family_migration_retry_base_seconds=45)
    family = await family_with(runtime, members=2)
    double.faults(**FAILURES[step])
    assert await run(runtime, passport, settings, family) == timedelta(seconds=45)
    pending = await row(runtime, family)
    assert pending.state is MigrationState.PENDING and pending.attempts == 1
    assert pending.last_error in ("PASSPORT_UNAVAILABLE", "PASSPORT_TIMEOUT")
    assert pending.lease_until is None and pending.finished_at is None
    await assert_untouched(runtime, family)
    double.reset()
    assert await run(runtime, passport, settings, family) is MigrationState.DONE
    await assert_migrated(runtime, double, family)
    done = await row(runtime, family)
    assert (done.attempts, done.last_error) == (2, None)


async def test_a_retried_create_with_its_answer_lost_makes_one_family(
    runtime: Runtime, double: PassportDouble
) -> None:
    family = await family_with(runtime, members=1)
    double.faults(fail_next=1, fail_after_work=True, operations=["create_family"])
    async with double.client() as retrying:  # 2 retries: the same Idempotency-Key again
        assert await run(runtime, retrying, job_settings(runtime, double), family) is (
            MigrationState.DONE
        )
    assert [c["status"] for c in double.calls("create_family")] == [503, 201]
    await assert_migrated(runtime, double, family)


async def test_after_the_last_attempt_the_migration_fails(
    runtime: Runtime, double: PassportDouble, passport: PassportClient
) -> None:
    settings = job_settings(
        runtime,
        double,
        family_migration_max_attempts=3,
        family_migration_retry_base_seconds=10,
        family_migration_retry_max_seconds=15,
    )
    family = await family_with(runtime, members=1)
    double.faults(fail_next=100, operations=["family_of"])
    outcomes = [await run(runtime, passport, settings, family) for _ in range(4)]
    assert outcomes == [timedelta(seconds=10), timedelta(seconds=15), MigrationState.FAILED, None]
    failed = await row(runtime, family)
    assert (failed.state, failed.attempts) == (MigrationState.FAILED, 3)
    assert failed.last_error == "PASSPORT_UNAVAILABLE" and failed.finished_at is not None
    await assert_untouched(runtime, family)


# --- nothing twice, leases, changes meanwhile ------------------------------------------


async def test_a_migrated_family_is_not_migrated_again(
    runtime: Runtime, double: PassportDouble, passport: PassportClient
) -> None:
    settings = job_settings(runtime, double)
    family = await family_with(runtime, members=1)
    assert await run(runtime, passport, settings, family) is MigrationState.DONE
    calls = len(double.calls())
    assert await run(runtime, passport, settings, family) is None
    assert len(double.calls()) == calls
    assert (await row(runtime, family)).attempts == 1
    assert len(await notices(runtime, family)) == 2


async def test_a_pending_family_linked_meanwhile_is_done_without_passport(
    runtime: Runtime, double: PassportDouble, passport: PassportClient
) -> None:
    family = await family_with(runtime, members=1)
    async with unit_of_work(runtime.session_factory) as session:
        await session.execute(
            update(FamilyAccount)
            .where(FamilyAccount.id == family.id)
            .values(passport_family_id="fam-elsewhere")
        )
    assert await run(runtime, passport, job_settings(runtime, double), family) is None
    assert (await row(runtime, family)).state is MigrationState.DONE
    assert double.calls() == []


async def claim(runtime: Runtime, family: f.Family, *, ago: timedelta) -> migration.Snapshot:
    async with unit_of_work(runtime.session_factory) as session:
        snapshot = await migration.claim(session, family.id, lease=LEASE, now=utcnow() - ago)
    assert snapshot is not None
    return snapshot


async def test_a_running_migration_is_claimed_again_only_once_its_lease_expired(
    runtime: Runtime, double: PassportDouble, passport: PassportClient
) -> None:
    settings = job_settings(runtime, double)
    family = await family_with(runtime, members=1)
    await claim(runtime, family, ago=timedelta(0))  # a live worker holds it (or a dead one)
    held = await run(runtime, passport, settings, family)
    assert isinstance(held, timedelta)  # tried again once the lease is over
    assert LEASE - timedelta(minutes=1) < held <= LEASE + LEASE_MARGIN
    assert double.calls() == [] and (await row(runtime, family)).attempts == 1
    other = await family_with(runtime, members=1)
    await claim(runtime, other, ago=LEASE + timedelta(seconds=5))  # that worker died
    assert await run(runtime, passport, settings, other) is MigrationState.DONE
    assert (await row(runtime, other)).attempts == 2
    await assert_migrated(runtime, double, other)


async def test_a_run_that_lost_its_claim_changes_nothing(
    runtime: Runtime, double: PassportDouble, passport: PassportClient
) -> None:
    family = await family_with(runtime, members=1)
    stale = await claim(runtime, family, ago=LEASE + timedelta(seconds=5))
    fresh = await claim(runtime, family, ago=timedelta(0))
    assert fresh.attempt == stale.attempt + 1
    linked = await migration.link_in_passport(passport, stale)
    links = migration.MovedLinks("o", "m")
    async with unit_of_work(runtime.session_factory) as session:
        assert await migration.finish(session, stale, linked, links=links, now=utcnow()) is None
    async with unit_of_work(runtime.session_factory) as session:
        failure = migration.MigrationFailure("PASSPORT_UNAVAILABLE", permanent=False)
        retry = await migration.record_failure(
            session, stale, failure, max_attempts=5, now=utcnow()
        )
    assert retry is None
    assert (await row(runtime, family)).state is MigrationState.RUNNING
    await assert_untouched(runtime, family)


async def test_a_failed_run_that_lost_its_claim_reports_nothing_and_records_nothing(
    runtime: Runtime, double: PassportDouble, passport: PassportClient
) -> None:
    family = await family_with(runtime, members=1)
    double.faults(fail_next=1, operations=["family_of"])
    opened = 0

    @asynccontextmanager
    async def units() -> AsyncIterator[AsyncSession]:
        nonlocal opened
        opened += 1
        if opened == 2:  # another worker claimed it after this run's lease expired
            await claim(runtime, family, ago=-LEASE)
        async with unit_of_work(runtime.session_factory) as session:
            yield session

    assert await run_migration(units, passport, job_settings(runtime, double), str(family.id)) is None
    current = await row(runtime, family)
    assert (current.state, current.attempts, current.last_error) == (
        MigrationState.RUNNING,
        2,
        None,
    )


@pytest.mark.parametrize("change", ["added", "removed"])
async def test_members_changed_while_passport_was_called_are_retried(
    runtime: Runtime, double: PassportDouble, passport: PassportClient, change: str
) -> None:
    settings = job_settings(runtime, double)
    family = await family_with(runtime, members=2)
    opened = 0

    @asynccontextmanager
    async def units() -> AsyncIterator[AsyncSession]:
        nonlocal opened
        opened += 1
        if opened == 2:  # passport was called, the job is about to finish
            if change == "added":
                await f.add_member(runtime, family)
            else:
                gone = family.members.pop()
                async with unit_of_work(runtime.session_factory) as session:
                    await session.execute(delete(FamilyMember).where(FamilyMember.user_id == gone.id))
        async with unit_of_work(runtime.session_factory) as session:
            yield session

    outcome = await run_migration(units, passport, settings, str(family.id))
    assert isinstance(outcome, timedelta)
    assert (await row(runtime, family)).last_error == "MEMBERS_CHANGED"
    await assert_untouched(runtime, family)
    assert await run(runtime, passport, settings, family) is MigrationState.DONE
    await assert_migrated(runtime, double, family)
