"""Scheduling the migration to passport, on both backends: who is scheduled and when (once,
under races, after a failure's cooldown), plan B in batches with its dry run, and the admin
API (`familyMigrationBulk`, `familyMigrationStart`, `familyMigrations`, counts)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from strawberry.relay import to_base64

from app.models.base import utcnow
from app.models.family import FamilyAccount, FamilyMigration, MigrationState
from app.models.identity import Role
from app.models.outbox import OutboxMessage
from app.runtime import Runtime
from app.services.family import migration
from app.settings import Settings
from app.uow import unit_of_work
from tests.conftest import make_client
from tests.factories import family as f
from tests.factories.identity import access_token, create_user
from tests.family.passport_support import cheap_hashing
from tests.helpers import error_codes, gql

PASSPORT = "http://127.0.0.1:9"  # configured, never called: scheduling doesn't call passport


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_hashing(monkeypatch)


def on(runtime: Runtime, **changes: Any) -> Settings:
    values = {"passport_url": PASSPORT, "family_migration_percent": 100, **changes}
    return runtime.settings.model_copy(update=values)


async def trigger(
    runtime: Runtime, user_id: uuid.UUID, settings: Settings, now: datetime | None = None
) -> bool:
    async with unit_of_work(runtime.session_factory) as session:
        return await migration.schedule_for_owner(
            session, user_id, settings=settings, now=now or utcnow()
        )


async def jobs(runtime: Runtime, family: f.Family) -> int:
    async with runtime.session_factory() as session:
        rows = await session.scalars(
            select(OutboxMessage.kwargs).where(OutboxMessage.actor == migration.MIGRATE_ACTOR)
        )
        return sum(kwargs == {"account_id": str(family.id)} for kwargs in rows)


async def state(runtime: Runtime, family: f.Family) -> MigrationState | None:
    found = await f.migration_row(runtime, family)
    return None if found is None else found.state


async def set_row(runtime: Runtime, family: f.Family, **values: Any) -> None:
    async with unit_of_work(runtime.session_factory) as session:
        await session.execute(
            update(FamilyMigration).where(FamilyMigration.account_id == family.id).values(**values)
        )


# --- who is scheduled ------------------------------------------------------------------


async def test_an_owner_in_the_rollout_is_scheduled_once(runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    await f.add_member(runtime, family)
    assert await trigger(runtime, family.owner.id, on(runtime))
    row = await f.migration_row(runtime, family)
    assert row is not None
    assert (row.state, row.attempts, row.trigger) == (MigrationState.PENDING, 0, "APP")
    assert await jobs(runtime, family) == 1
    assert not await trigger(runtime, family.owner.id, on(runtime))
    assert await jobs(runtime, family) == 1


async def test_members_and_people_without_a_family_schedule_nothing(runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family)
    loner = await f.person(runtime)
    assert not await trigger(runtime, kid.id, on(runtime))
    assert not await trigger(runtime, loner.id, on(runtime))
    assert await state(runtime, family) is None and await jobs(runtime, family) == 0


async def test_without_passport_nothing_is_scheduled(runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    assert not runtime.settings.passport_configured  # the embedded default
    everyone = runtime.settings.model_copy(update={"family_migration_percent": 100})
    assert not await trigger(runtime, family.owner.id, everyone)
    assert await state(runtime, family) is None and await jobs(runtime, family) == 0


async def test_the_allow_list_names_families_or_owners(runtime: Runtime) -> None:
    by_family, by_owner, unlisted = [await f.create_family(runtime) for _ in range(3)]
    settings = on(
        runtime,
        family_migration_percent=0,
        family_migration_allowlist=(str(by_family.id), str(by_owner.owner.id)),
    )
    for family, expected in ((by_family, True), (by_owner, True), (unlisted, False)):
        assert await trigger(runtime, family.owner.id, settings) is expected
        assert await jobs(runtime, family) == int(expected)


async def test_a_migrated_family_is_not_scheduled(runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    async with unit_of_work(runtime.session_factory) as session:
        await session.execute(
            update(FamilyAccount)
            .where(FamilyAccount.id == family.id)
            .values(passport_family_id="fam-1")
        )
    assert not await trigger(runtime, family.owner.id, on(runtime))
    assert await state(runtime, family) is None


async def test_concurrent_app_starts_schedule_one_job(racing_runtime: Runtime) -> None:
    runtime = racing_runtime
    family = await f.create_family(runtime)
    settings = on(runtime)
    outcomes = await asyncio.gather(
        *(trigger(runtime, family.owner.id, settings) for _ in range(8))
    )
    assert sorted(outcomes) == [False] * 7 + [True]
    assert await jobs(runtime, family) == 1
    async with runtime.session_factory() as session:
        rows = (await session.scalars(select(FamilyMigration))).all()
    assert [(r.account_id, r.state) for r in rows] == [(family.id, MigrationState.PENDING)]


async def test_a_failed_family_is_scheduled_again_only_after_the_cooldown(
    runtime: Runtime,
) -> None:
    settings = on(runtime, family_migration_cooldown_seconds=3600)
    family = await f.create_family(runtime)
    assert await trigger(runtime, family.owner.id, settings)
    failed_at = utcnow()
    await set_row(runtime, family, state=MigrationState.FAILED, attempts=5, finished_at=failed_at)
    hour = timedelta(hours=1)
    assert not await trigger(runtime, family.owner.id, settings, failed_at + hour / 2)
    just_before = failed_at + hour - timedelta(seconds=1)
    assert not await trigger(runtime, family.owner.id, settings, just_before)
    assert (
        await state(runtime, family) is MigrationState.FAILED and await jobs(runtime, family) == 1
    )
    assert await trigger(runtime, family.owner.id, settings, failed_at + hour)
    again = await f.migration_row(runtime, family)
    assert again is not None
    assert (again.state, again.attempts, again.finished_at) == (MigrationState.PENDING, 0, None)
    assert await jobs(runtime, family) == 2


async def test_loading_payment_methods_or_launch_is_the_owners_trigger(runtime: Runtime) -> None:
    first, second = await f.create_family(runtime), await f.create_family(runtime)
    kid = await f.add_member(runtime, first)
    kid_token = await access_token(runtime, kid)
    async with make_client(runtime, passport_url=PASSPORT, family_migration_percent=100) as http:
        await gql(http, "{ viewer { paymentMethods { main } } }", token=kid_token)
        assert await state(runtime, first) is None  # a member's call schedules nothing
        body = await gql(http, "{ viewer { paymentMethods { main } } }", token=first.owner_token)
        assert "errors" not in body, body
        launch = await gql(
            http, "{ launch { family { memberRole passportAccount } } }", token=second.owner_token
        )
    assert launch["data"]["launch"]["family"] == {"memberRole": "OWNER", "passportAccount": False}
    assert await state(runtime, first) is MigrationState.PENDING
    assert await state(runtime, second) is MigrationState.PENDING


# --- plan B ----------------------------------------------------------------------------


async def bulk(
    runtime: Runtime,
    settings: Settings,
    *,
    after: uuid.UUID | None = None,
    size: int = 100,
    dry: bool,
) -> migration.BulkReport:
    async with unit_of_work(runtime.session_factory) as session:
        return await migration.bulk_batch(
            session, settings=settings, after=after, batch_size=size, dry_run=dry, now=utcnow()
        )


async def test_a_dry_run_counts_what_the_real_run_schedules(runtime: Runtime) -> None:
    fresh, pending, failed_now, failed_long_ago, migrated, unlisted = [
        await f.create_family(runtime) for _ in range(6)
    ]
    listed = (fresh, pending, failed_now, failed_long_ago, migrated)
    settings = on(
        runtime,
        family_migration_percent=0,
        family_migration_allowlist=tuple(str(x.id) for x in listed),
        family_migration_cooldown_seconds=3600,
    )
    for family in (pending, failed_now, failed_long_ago):
        assert await trigger(runtime, family.owner.id, settings)
    await set_row(runtime, failed_now, state=MigrationState.FAILED, finished_at=utcnow())
    long_ago = utcnow() - timedelta(hours=2)
    await set_row(runtime, failed_long_ago, state=MigrationState.FAILED, finished_at=long_ago)
    async with unit_of_work(runtime.session_factory) as session:
        await session.execute(
            update(FamilyAccount)
            .where(FamilyAccount.id == migrated.id)
            .values(passport_family_id="fam-x")
        )
    dry = await bulk(runtime, settings, dry=True)
    assert (dry.examined, dry.scheduled, dry.next_after) == (5, 0, None)
    assert await state(runtime, fresh) is None and await jobs(runtime, fresh) == 0
    real = await bulk(runtime, settings, dry=False)
    assert real.scheduled == 2  # fresh, and the family that failed long ago
    assert dry.eligible == real.scheduled
    for family, expected in ((fresh, 1), (failed_long_ago, 2), (failed_now, 1), (unlisted, 0)):
        assert await jobs(runtime, family) == expected
    assert (await bulk(runtime, settings, dry=False)).scheduled == 0


async def test_plan_b_goes_through_every_family_in_batches(runtime: Runtime) -> None:
    families = [await f.create_family(runtime) for _ in range(5)]
    settings = on(runtime)
    after, reports = None, []
    while True:
        report = await bulk(runtime, settings, after=after, size=2, dry=False)
        reports.append((report.examined, report.scheduled))
        if report.next_after is None:
            break
        after = report.next_after
    assert reports == [(2, 2), (2, 2), (1, 1)]
    for family in families:
        assert await jobs(runtime, family) == 1
        row = await f.migration_row(runtime, family)
        assert row is not None and (row.state, row.trigger) == (MigrationState.PENDING, "BULK")


# --- the admin API ---------------------------------------------------------------------

BULK = """mutation($input: FamilyMigrationBulkInput!) { familyMigrationBulk(input: $input) {
  examined eligible scheduled nextAfter errors { code field } } }"""
START = """mutation($id: ID!) { familyMigrationStart(input: {accountId: $id}) {
  migration { accountId state attempts trigger lastError } errors { code field } } }"""
LIST = """query($state: FamilyMigrationState) { familyMigrations(state: $state) {
  accountId state trigger attempts } familyMigrationCounts { state count } }"""


def gid(family: f.Family) -> str:
    return to_base64("FamilyAccount", str(family.id))


async def admin(runtime: Runtime) -> str:
    return await access_token(runtime, await create_user(runtime, roles=(Role.ADMIN,)))


def counts(body: dict[str, Any]) -> dict[str, int]:
    return {c["state"]: c["count"] for c in body["data"]["familyMigrationCounts"] if c["count"]}


async def test_admins_run_plan_b_through_the_api(runtime: Runtime) -> None:
    token = await admin(runtime)
    families = [await f.create_family(runtime) for _ in range(3)]
    async with make_client(runtime, passport_url=PASSPORT, family_migration_percent=100) as http:
        dry = await gql(http, BULK, {"input": {"dryRun": True, "batchSize": 2}}, token=token)
        payload = dry["data"]["familyMigrationBulk"]
        assert (payload["examined"], payload["eligible"], payload["scheduled"]) == (2, 2, 0)
        assert payload["nextAfter"] is not None and payload["errors"] == []
        assert counts(await gql(http, LIST, token=token)) == {}
        real = await gql(http, BULK, {"input": {"dryRun": False}}, token=token)
        assert real["data"]["familyMigrationBulk"]["scheduled"] == 3
        listed = await gql(http, LIST, {"state": "PENDING"}, token=token)
    rows = listed["data"]["familyMigrations"]
    assert sorted(r["accountId"] for r in rows) == sorted(gid(x) for x in families)
    assert {(r["state"], r["trigger"], r["attempts"]) for r in rows} == {("PENDING", "BULK", 0)}
    assert counts(listed) == {"PENDING": 3}


async def test_an_admin_starts_one_family(runtime: Runtime) -> None:
    token = await admin(runtime)
    family = await f.create_family(runtime)
    async with make_client(runtime, passport_url=PASSPORT, family_migration_percent=0) as http:
        started = await gql(http, START, {"id": gid(family)}, token=token)
        again = await gql(http, START, {"id": gid(family)}, token=token)
        unknown = await gql(
            http, START, {"id": to_base64("FamilyAccount", str(uuid.uuid4()))}, token=token
        )
        await set_row(runtime, family, state=MigrationState.DONE)
        async with unit_of_work(runtime.session_factory) as session:
            await session.execute(
                update(FamilyAccount)
                .where(FamilyAccount.id == family.id)
                .values(passport_family_id="fam-done")
            )
        done = await gql(http, START, {"id": gid(family)}, token=token)
        listed = await gql(http, LIST, token=token)
    assert started["data"]["familyMigrationStart"] == {
        "migration": {
            "accountId": gid(family),
            "state": "PENDING",
            "attempts": 0,
            "trigger": "ADMIN",
            "lastError": None,
        },
        "errors": [],
    }
    assert await jobs(runtime, family) == 1
    codes = [b["data"]["familyMigrationStart"]["errors"] for b in (again, unknown, done)]
    assert [c[0]["code"] for c in codes] == ["IN_FLIGHT", "NOT_FOUND", "ALREADY_MIGRATED"]
    assert counts(listed) == {"DONE": 1}


async def test_without_passport_the_admin_api_says_migration_is_off(
    runtime: Runtime, client: Any
) -> None:
    token = await admin(runtime)
    family = await f.create_family(runtime)
    start = await gql(client, START, {"id": gid(family)}, token=token)
    plan_b = await gql(client, BULK, {"input": {"dryRun": True}}, token=token)
    off = [{"code": "PASSPORT_OFF", "field": None}]
    assert start["data"]["familyMigrationStart"]["errors"] == off
    assert plan_b["data"]["familyMigrationBulk"]["errors"][0]["code"] == "PASSPORT_OFF"
    assert await state(runtime, family) is None


async def test_users_may_not_touch_migrations(runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    async with make_client(runtime, passport_url=PASSPORT, family_migration_percent=100) as http:
        bodies = [
            await gql(http, BULK, {"input": {"dryRun": False}}, token=family.owner_token),
            await gql(http, START, {"id": gid(family)}, token=family.owner_token),
            await gql(http, LIST, token=family.owner_token),
        ]
    for body in bodies:
        assert error_codes(body) == ["FORBIDDEN"] and body["data"] is None
    assert await state(runtime, family) is None
