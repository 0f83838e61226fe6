"""A migrated family over the API, on both backends: member changes go to passport first
(the double on loopback) and change nothing anywhere when passport refuses or fails; the
members shown come from passport, and never from the local copy during an outage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from strawberry.relay import to_base64

from app.integrations.passport import uid_for
from app.models.base import utcnow
from app.models.family import FamilyAccount, FamilyMember, MigrationState
from app.models.identity import User
from app.runtime import Runtime
from app.services.family import migration
from app.uow import unit_of_work
from jobs.family import run_migration
from tests.conftest import make_client
from tests.factories import family as f
from tests.factories.identity import access_token
from tests.family.passport_support import cheap_hashing, emptied, phone
from tests.helpers import gql, row_counts
from tests.passport_server import PassportDouble

READ = """{ viewer { familyAccounts { name passportAccount
  members { id phone role portalStatus } membersError { code } } } }"""
ADD = """mutation($input: FamilyMemberAddInput!) { familyMemberAdd(input: $input) {
  member { id phone portalStatus } account { members { phone } } errors { code } } }"""
REMOVE = """mutation($input: FamilyMemberInput!) { familyMemberRemove(input: $input) {
  account { members { phone } } errors { code } } }"""
LEAVE = """mutation($input: FamilyAccountInput!) { familyLeave(input: $input) {
  accountId errors { code } } }"""
DELETE = """mutation($input: FamilyAccountInput!) { familyDelete(input: $input) {
  accountId errors { code } } }"""
ACCEPT = """mutation($input: FamilyAccountInput!) { familyInvitationAccept(input: $input) {
  account { memberRole } errors { code } } }"""


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


@asynccontextmanager
async def api(
    runtime: Runtime, double: PassportDouble, **client: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with passport configured; its client fails fast unless told otherwise."""
    options = {"retries": 0, "timeout": 0.3, **client}
    async with double.client(**options) as passport:
        runtime.passport = passport  # make_client copies the runtime as it is now
        try:
            async with make_client(
                runtime, passport_url=double.url, passport_token=double.token
            ) as http:
                yield http
        finally:
            runtime.passport = None


@pytest.fixture
async def http(runtime: Runtime, double: PassportDouble) -> AsyncIterator[httpx.AsyncClient]:
    async with api(runtime, double) as client:
        yield client


async def migrate(
    runtime: Runtime, double: PassportDouble, family: f.Family
) -> MigrationState | timedelta | None:
    async with unit_of_work(runtime.session_factory) as session:
        await migration.schedule(
            session, family.id, trigger="ADMIN", cooldown=timedelta(0), now=utcnow()
        )
    async with double.client() as passport:
        return await run_migration(
            lambda: unit_of_work(runtime.session_factory),
            passport,
            runtime.settings,
            str(family.id),
        )


async def migrated(runtime: Runtime, double: PassportDouble, members: int = 1) -> f.Family:
    family = await f.create_family(runtime)
    for _ in range(members):
        await f.add_member(runtime, family)
    assert await migrate(runtime, double, family) is MigrationState.DONE
    double.reset(calls=True)
    return family


def passport_family_id(double: PassportDouble) -> str:
    [family] = double.state.snapshot()["families"]
    found: str = family["family_id"]
    return found


def in_passport(double: PassportDouble) -> set[str]:
    """The phones in the one passport family."""
    [family] = double.state.snapshot()["families"]
    return {m["phone"] for m in family["members"]}


def gid(family: f.Family) -> str:
    return to_base64("FamilyAccount", str(family.id))


async def member_gid(runtime: Runtime, family: f.Family, user: User) -> str:
    return to_base64("FamilyMember", str(await f.member_id(runtime, family, user)))


async def local_row(runtime: Runtime, user: User) -> tuple[str, str | None] | None:
    async with runtime.session_factory() as session:
        found = (
            await session.execute(
                select(FamilyMember.portal_status, FamilyMember.portal_uid).where(
                    FamilyMember.user_id == user.id
                )
            )
        ).one_or_none()
    return None if found is None else (found[0].value, found[1])


def payload(body: dict[str, Any], name: str) -> dict[str, Any]:
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"][name]
    return found


def codes(body: dict[str, Any], name: str) -> list[str]:
    return [e["code"] for e in payload(body, name)["errors"]]


# --- member changes go to passport first -----------------------------------------------


async def _invite(http: httpx.AsyncClient, family: f.Family, newcomer: User) -> dict[str, Any]:
    variables = {"input": {"accountId": gid(family), "phone": phone(newcomer)}}
    return await gql(http, ADD, variables, token=family.owner_token)


async def _accept(
    runtime: Runtime, http: httpx.AsyncClient, family: f.Family, newcomer: User
) -> dict[str, Any]:
    token = await access_token(runtime, newcomer)
    return await gql(http, ACCEPT, {"input": {"accountId": gid(family)}}, token=token)


async def test_an_invitation_is_checked_and_its_acceptance_added_in_passport_first(
    runtime: Runtime, double: PassportDouble, http: httpx.AsyncClient
) -> None:
    family = await migrated(runtime, double)
    newcomer = await f.person(runtime)
    added = payload(await _invite(http, family, newcomer), "familyMemberAdd")
    assert added["errors"] == [] and added["member"]["id"] is not None
    assert added["member"]["portalStatus"] == "LOCAL"  # invited: not in passport yet
    assert phone(newcomer) not in in_passport(double)
    assert await local_row(runtime, newcomer) == ("LOCAL", None)
    accepted = await _accept(runtime, http, family, newcomer)
    assert codes(accepted, "familyInvitationAccept") == []
    assert phone(newcomer) in in_passport(double)
    assert await local_row(runtime, newcomer) == ("LINKED", uid_for(phone(newcomer)))
    assert [c["operation"] for c in double.calls() if c["operation"] != "get_family"] == [
        "find_account",
        "find_account",
        "add_member",
    ]


async def test_a_retried_add_still_adds_once(runtime: Runtime, double: PassportDouble) -> None:
    family = await migrated(runtime, double)
    newcomer = await f.person(runtime)
    double.faults(fail_next=1, operations=["add_member"])
    async with api(runtime, double, retries=2, retry_base_seconds=0.01) as retrying:
        assert codes(await _invite(retrying, family, newcomer), "familyMemberAdd") == []
        accepted = await _accept(runtime, retrying, family, newcomer)
    assert codes(accepted, "familyInvitationAccept") == []
    assert [c["status"] for c in double.calls("add_member")] == [503, 200]
    assert await local_row(runtime, newcomer) == ("LINKED", uid_for(phone(newcomer)))


async def test_a_phone_passport_doesnt_know_is_refused_and_nothing_changes(
    runtime: Runtime, double: PassportDouble, http: httpx.AsyncClient
) -> None:
    family = await migrated(runtime, double)
    stranger = await f.person(runtime)
    double.state.without = frozenset({phone(stranger)})
    before, members = await row_counts(runtime), in_passport(double)
    variables = {"input": {"accountId": gid(family), "phone": phone(stranger)}}
    body = await gql(http, ADD, variables, token=family.owner_token)
    assert codes(body, "familyMemberAdd") == ["NO_PORTAL_ACCOUNT"]
    assert await row_counts(runtime) == before and in_passport(double) == members
    assert double.calls("add_member") == []


async def test_someone_in_another_passport_family_cant_accept(
    runtime: Runtime, double: PassportDouble, http: httpx.AsyncClient
) -> None:
    family = await migrated(runtime, double)
    taken = await f.person(runtime)
    async with double.client() as passport:
        await passport.create_family(double.add_account(phone(taken)), idempotency_key="theirs")
    assert codes(await _invite(http, family, taken), "familyMemberAdd") == []
    before = await row_counts(runtime)
    body = await _accept(runtime, http, family, taken)
    assert codes(body, "familyInvitationAccept") == ["ALREADY_IN_FAMILY"]
    assert await row_counts(runtime) == before
    assert await local_row(runtime, taken) == ("LOCAL", None)  # still only invited


@pytest.mark.parametrize(
    "outage", [{"fail_next": 1}, {"timeout_next": 1}], ids=["find_account", "timeout"]
)
async def test_passport_failing_on_an_invitation_changes_nothing(
    runtime: Runtime, double: PassportDouble, http: httpx.AsyncClient, outage: dict[str, Any]
) -> None:
    family = await migrated(runtime, double)
    newcomer = await f.person(runtime)
    before = await row_counts(runtime)
    double.faults(**outage, operations=["find_account"])
    assert codes(await _invite(http, family, newcomer), "familyMemberAdd") == [
        "PASSPORT_UNAVAILABLE"
    ]
    assert await row_counts(runtime) == before and await local_row(runtime, newcomer) is None


@pytest.mark.parametrize(
    "outage", [{"fail_next": 1}, {"timeout_next": 1}], ids=["add_member", "add_member_timeout"]
)
async def test_passport_failing_on_an_acceptance_changes_nothing_anywhere(
    runtime: Runtime, double: PassportDouble, http: httpx.AsyncClient, outage: dict[str, Any]
) -> None:
    family = await migrated(runtime, double)
    newcomer = await f.person(runtime)
    assert codes(await _invite(http, family, newcomer), "familyMemberAdd") == []
    before, members = await row_counts(runtime), in_passport(double)
    double.faults(**outage, operations=["add_member"])
    body = await _accept(runtime, http, family, newcomer)
    assert codes(body, "familyInvitationAccept") == ["PASSPORT_UNAVAILABLE"]
    assert await row_counts(runtime) == before and in_passport(double) == members
    assert await local_row(runtime, newcomer) == ("LOCAL", None)


@pytest.mark.parametrize("fails", [False, True])
async def test_a_member_is_removed_in_passport_first(
    runtime: Runtime, double: PassportDouble, http: httpx.AsyncClient, fails: bool
) -> None:
    family = await migrated(runtime, double)
    [kid] = family.members
    if fails:
        double.faults(fail_next=1, operations=["remove_member"])
    member = await member_gid(runtime, family, kid)
    variables = {"input": {"accountId": gid(family), "memberId": member}}
    body = await gql(http, REMOVE, variables, token=family.owner_token)
    if fails:
        assert codes(body, "familyMemberRemove") == ["PASSPORT_UNAVAILABLE"]
        assert phone(kid) in in_passport(double)
        assert await local_row(runtime, kid) == ("LINKED", uid_for(phone(kid)))
    else:
        assert codes(body, "familyMemberRemove") == []
        assert in_passport(double) == {phone(family.owner)}
        assert await local_row(runtime, kid) is None


@pytest.mark.parametrize("fails", [False, True])
async def test_a_member_leaves_in_passport_first(
    runtime: Runtime, double: PassportDouble, fails: bool
) -> None:
    family = await migrated(runtime, double)
    [kid] = family.members
    if fails:
        double.faults(fail_next=1, operations=["leave_family"])
    async with api(runtime, double, retries=2, retry_base_seconds=0.01) as retrying:
        token = await access_token(runtime, kid)
        body = await gql(retrying, LEAVE, {"input": {"accountId": gid(family)}}, token=token)
    assert len(double.calls("leave_family")) == 1  # a 503 may hide a leave: never repeated
    if fails:
        assert codes(body, "familyLeave") == ["PASSPORT_UNAVAILABLE"]
        assert phone(kid) in in_passport(double)
        assert await local_row(runtime, kid) == ("LINKED", uid_for(phone(kid)))
    else:
        assert codes(body, "familyLeave") == []
        assert in_passport(double) == {phone(family.owner)}
        assert await local_row(runtime, kid) is None


async def test_a_member_removed_in_passport_directly_can_still_leave(
    runtime: Runtime, double: PassportDouble, http: httpx.AsyncClient
) -> None:
    family = await migrated(runtime, double)
    [kid] = family.members
    async with double.client() as passport:
        await passport.remove_member(passport_family_id(double), uid_for(phone(kid)))
    token = await access_token(runtime, kid)
    body = await gql(http, LEAVE, {"input": {"accountId": gid(family)}}, token=token)
    assert codes(body, "familyLeave") == []
    assert await local_row(runtime, kid) is None


@pytest.mark.parametrize("fails", [False, True])
async def test_deleting_the_family_deletes_the_passport_family(
    runtime: Runtime, double: PassportDouble, http: httpx.AsyncClient, fails: bool
) -> None:
    family = await migrated(runtime, double)
    if fails:
        double.faults(fail_next=1, operations=["delete_family"])
    body = await gql(http, DELETE, {"input": {"accountId": gid(family)}}, token=family.owner_token)
    async with runtime.session_factory() as session:
        exists = await session.get(FamilyAccount, family.id) is not None
    families = double.state.snapshot()["families"]
    if fails:
        assert codes(body, "familyDelete") == ["PASSPORT_UNAVAILABLE"]
        assert exists and len(families) == 1
    else:
        assert codes(body, "familyDelete") == []
        assert not exists and families == []


# --- reads come from passport ----------------------------------------------------------


async def read(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    [account] = payload(await gql(http, READ, token=token), "viewer")["familyAccounts"]
    found: dict[str, Any] = account
    return found


async def test_members_are_read_from_passport(
    runtime: Runtime, double: PassportDouble, http: httpx.AsyncClient
) -> None:
    family = await f.create_family(runtime)
    kid, local = await f.add_member(runtime, family), await f.add_member(runtime, family)
    double.state.without = frozenset({phone(local)})
    assert await migrate(runtime, double, family) is MigrationState.PARTIAL
    pfid, outsider = passport_family_id(double), "+79990001111"
    async with double.client() as passport:
        await passport.add_member(pfid, double.add_account(outsider))  # in passport directly
    account = await read(http, family.owner_token)
    assert account["passportAccount"] is True and account["membersError"] is None
    members = {m["phone"]: m for m in account["members"]}
    assert set(members) == {phone(family.owner), phone(kid), phone(local), outsider}
    assert members[outsider] == {
        "id": None,
        "phone": outsider,
        "role": "MEMBER",
        "portalStatus": "LINKED",
    }
    assert members[phone(family.owner)]["role"] == "OWNER"
    assert members[phone(kid)]["id"] == await member_gid(runtime, family, kid)
    assert members[phone(local)]["portalStatus"] == "NO_PORTAL_ACCOUNT"
    # Someone the owner removed in passport directly is gone from the list at once.
    async with double.client() as passport:
        await passport.remove_member(pfid, uid_for(phone(kid)))
    listed = (await read(http, family.owner_token))["members"]
    assert {m["phone"] for m in listed} == {phone(family.owner), phone(local), outsider}


async def test_a_member_passport_refused_is_still_listed(
    runtime: Runtime, double: PassportDouble, http: httpx.AsyncClient
) -> None:
    family = await f.create_family(runtime)
    taken = await f.add_member(runtime, family)
    async with double.client() as passport:
        await passport.create_family(double.add_account(phone(taken)), idempotency_key="theirs")
    assert await migrate(runtime, double, family) is MigrationState.PARTIAL
    account = await read(http, family.owner_token)
    statuses = {m["phone"]: m["portalStatus"] for m in account["members"]}
    assert statuses == {phone(family.owner): "LINKED", phone(taken): "REFUSED"}


@pytest.mark.parametrize("outage", ["fail_next", "timeout_next"])
async def test_during_an_outage_members_are_null_never_the_local_copy(
    runtime: Runtime, double: PassportDouble, http: httpx.AsyncClient, outage: str
) -> None:
    family = await migrated(runtime, double)
    for token in (family.owner_token, await access_token(runtime, family.members[0])):
        double.faults(**{outage: 1, "operations": ["get_family"]})
        account = await read(http, token)
        assert account["members"] is None
        assert account["membersError"] == {"code": "PASSPORT_UNAVAILABLE"}
        assert account["passportAccount"] is True and account["name"] == "Семья"
    double.reset()
    assert len((await read(http, family.owner_token))["members"]) == 2
