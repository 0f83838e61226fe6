"""The migration job under races, on both backends: nothing done twice, leases of runs whose
worker died, runs that lost their claim, and members or the family changed while passport
was being called (passport's side is undone, nothing is half-linked)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.integrations.passport import PassportClient
from app.models.base import utcnow
from app.models.family import FamilyAccount, FamilyMember, MigrationState
from app.runtime import Runtime
from app.services.family import accounts, migration_job
from app.uow import unit_of_work
from jobs.family import LEASE, LEASE_MARGIN, run_migration
from tests.factories import family as f
from tests.family.passport_support import (
    assert_migrated,
    assert_untouched,
    cheap_hashing,
    emptied,
    family_with,
    job_settings,
    notices,
    passport_families,
    phone,
    quick_client,
    row,
    run,
)
from tests.passport_server import PassportDouble


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_hashing(monkeypatch)


@pytest.fixture(scope="module")
def server() -> Iterator[PassportDouble]:
    with PassportDouble() as double:
        yield double


@pytest.fixture
def double(server: PassportDouble) -> PassportDouble:
    return emptied(server)


@pytest.fixture
async def passport(double: PassportDouble) -> AsyncIterator[PassportClient]:
    async with quick_client(double) as client:
        yield client


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


async def claim(runtime: Runtime, family: f.Family, *, ago: timedelta) -> migration_job.Snapshot:
    async with unit_of_work(runtime.session_factory) as session:
        snapshot = await migration_job.claim(session, family.id, lease=LEASE, now=utcnow() - ago)
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
    linked = await migration_job.link_in_passport(passport, stale)
    links = migration_job.MovedLinks("o", "m")
    async with unit_of_work(runtime.session_factory) as session:
        assert await migration_job.finish(session, stale, linked, links=links, now=utcnow()) is None
    async with unit_of_work(runtime.session_factory) as session:
        failure = migration_job.MigrationFailure("PASSPORT_UNAVAILABLE", permanent=False)
        retry = await migration_job.record_failure(
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

    assert (
        await run_migration(units, passport, job_settings(runtime, double), str(family.id)) is None
    )
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
                    await session.execute(
                        delete(FamilyMember).where(FamilyMember.user_id == gone.id)
                    )
        async with unit_of_work(runtime.session_factory) as session:
            yield session

    outcome = await run_migration(units, passport, settings, str(family.id))
    assert isinstance(outcome, timedelta)
    assert (await row(runtime, family)).last_error == "MEMBERS_CHANGED"
    await assert_untouched(runtime, family)
    assert await run(runtime, passport, settings, family) is MigrationState.DONE
    await assert_migrated(runtime, double, family)


@pytest.mark.parametrize("existed", [False, True])
async def test_a_family_deleted_while_passport_was_called_leaves_no_orphan(
    runtime: Runtime, double: PassportDouble, passport: PassportClient, existed: bool
) -> None:
    family = await family_with(runtime, members=1)
    if existed:  # the owner's own passport family: not ours to delete
        await passport.create_family(double.add_account(phone(family.owner)), idempotency_key="x")
    opened = 0

    @asynccontextmanager
    async def units() -> AsyncIterator[AsyncSession]:
        nonlocal opened
        opened += 1
        if opened == 2:
            async with unit_of_work(runtime.session_factory) as session:
                await accounts.delete_family(
                    session, family.id, family.owner.id, passport=None, now=utcnow()
                )
        async with unit_of_work(runtime.session_factory) as session:
            yield session

    settings = job_settings(runtime, double)
    assert await run_migration(units, passport, settings, str(family.id)) is None
    assert await f.migration_row(runtime, family) is None
    assert len(passport_families(double)) == int(existed)
