"""The migration job (`jobs.family.run_migration`, called directly) against the passport
double on loopback, on both backends: linking, members without portal accounts, passport
failing at every step (nothing half-linked, the next run finishes), attempts.
Races, leases and changes made while the job runs: test_migration_races.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest

from app.integrations.passport import PassportClient, uid_for
from app.models.family import FamilyNotificationKind as Kind
from app.models.family import MigrationState
from app.runtime import Runtime
from tests.family.passport_support import (
    assert_migrated,
    assert_untouched,
    cheap_hashing,
    emptied,
    family_with,
    job_settings,
    linked_id,
    notices,
    passport_families,
    people,
    phone,
    portal,
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
    assert (
        await run(runtime, passport, job_settings(runtime, double), family) is MigrationState.DONE
    )
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
        other = await passport.create_family(
            double.add_account("+79990000002"), idempotency_key="o"
        )
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

FAILURES: dict[str, dict[str, Any]] = {
    "find_account": {"fail_next": 1, "operations": ["find_account"]},
    "family_of": {"fail_next": 1, "operations": ["family_of"]},
    "create_family": {"fail_next": 1, "operations": ["create_family"]},
    "create_family_answer_lost": {
        "fail_next": 1,
        "fail_after_work": True,
        "operations": ["create_family"],
    },
    "add_member": {"fail_next": 1, "operations": ["add_member"]},
    "add_member_answer_lost": {
        "fail_next": 1,
        "fail_after_work": True,
        "operations": ["add_member"],
    },
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
