"""Admin promocode services: plans, create/update/deactivate, grants, stats (both backends).

Refusals are checked by catching the DomainError *inside* a transaction that then commits:
a service that added anything before raising would show up in the row counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.identity import AuditLog, Group, User, UserStatus
from app.models.promocodes import (
    AttemptOperation,
    Audience,
    Plan,
    Promocode,
    PromocodeAttempt,
    PromocodeKind,
    PromocodeUse,
    Purchase,
    PurchaseStatus,
    Rejection,
    ReleaseReason,
    UseStatus,
)
from app.runtime import Runtime
from app.services.errors import DomainError
from app.services.identity import groups as group_service
from app.services.identity import users as user_service
from app.services.promocodes import codes, grants, stats
from app.services.promocodes.codes import UNSET, PromocodeInput, PromocodeUpdate
from app.services.promocodes.errors import PromocodeErrorCode
from app.services.promocodes.grants import Grantee, GrantOutcome, GrantStatus
from tests.factories.identity import create_user
from tests.helpers import row_counts

ACTOR = "user:admin-test"
T = TypeVar("T")
Call = Callable[[AsyncSession], Awaitable[Any]]


@dataclass
class Catalog:
    basic: Plan  # RUB 299.00
    premium: Plan  # RUB 599.00
    retired: Plan  # RUB, no longer on sale


async def run(runtime: Runtime, call: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with runtime.session_factory() as session, session.begin():
        return await call(session)


async def refused(runtime: Runtime, call: Call) -> DomainError:
    """The DomainError `call` raises; asserts the refusal wrote nothing, even when committed."""
    before = await row_counts(runtime)
    async with runtime.session_factory() as session, session.begin():
        with pytest.raises(DomainError) as info:
            await call(session)
    assert await row_counts(runtime) == before
    return info.value


def expect(error: DomainError, code: PromocodeErrorCode, field: str) -> None:
    assert (error.code, error.field) == (code, field), error.message


def code_input(**overrides: Any) -> PromocodeInput:
    values: dict[str, Any] = {
        "code": f"T-{uuid.uuid4().hex[:10]}",
        "kind": PromocodeKind.PERCENT,
        "value": 10,
    }
    return PromocodeInput(**(values | overrides))


async def create_code(runtime: Runtime, **overrides: Any) -> Promocode:
    return await run(
        runtime, lambda s: codes.create_promocode(s, code_input(**overrides), actor=ACTOR)
    )


async def make_plan(runtime: Runtime, slug: str, price: int, currency: str = "RUB") -> Plan:
    return await run(
        runtime,
        lambda s: codes.create_plan(s, slug, slug.title(), price, currency, 30, actor=ACTOR),
    )


@pytest.fixture
async def catalog(runtime: Runtime) -> Catalog:
    basic = await make_plan(runtime, "basic", 29_900)
    premium = await make_plan(runtime, "premium", 59_900)
    retired = await make_plan(runtime, "retired", 19_900)
    async with runtime.session_factory() as session, session.begin():
        (await session.get_one(Plan, retired.id)).active = False
    return Catalog(basic, premium, retired)


async def audit_rows(runtime: Runtime, action: str) -> list[AuditLog]:
    async with runtime.session_factory() as session:
        rows = await session.scalars(
            select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.created_at)
        )
        return list(rows)


# --- plans -------------------------------------------------------------------------------


async def test_create_plan_normalises_and_audits(runtime: Runtime) -> None:
    plan = await run(
        runtime,
        lambda s: codes.create_plan(
            s,
            " Family-Year ",
            "  Family   year ",
            199_000,
            "rub",
            365,
            actor=ACTOR,
            reason="launch",
        ),
    )
    assert (plan.slug, plan.name, plan.currency, plan.active) == (
        "family-year",
        "Family year",
        "RUB",
        True,
    )
    [row] = await audit_rows(runtime, "plan.create")
    assert (row.actor, row.target, row.reason) == (ACTOR, f"plan:{plan.id}", "launch")


@pytest.mark.parametrize(
    ("args", "code", "field"),
    [
        (("", "Plan", 100, "RUB", 30), PromocodeErrorCode.INVALID_SLUG, "slug"),
        (("bad slug", "Plan", 100, "RUB", 30), PromocodeErrorCode.INVALID_SLUG, "slug"),
        (("x" * 51, "Plan", 100, "RUB", 30), PromocodeErrorCode.INVALID_SLUG, "slug"),
        (("ok", "  ", 100, "RUB", 30), PromocodeErrorCode.INVALID_NAME, "name"),
        (("ok", "n" * 101, 100, "RUB", 30), PromocodeErrorCode.INVALID_NAME, "name"),
        (("ok", "Plan", -1, "RUB", 30), PromocodeErrorCode.INVALID_PRICE, "priceMinor"),
        (("ok", "Plan", 100, "XYZ", 30), PromocodeErrorCode.INVALID_CURRENCY, "currency"),
        (("ok", "Plan", 100, "", 30), PromocodeErrorCode.INVALID_CURRENCY, "currency"),
        (("ok", "Plan", 100, "RUB", 0), PromocodeErrorCode.INVALID_DURATION, "durationDays"),
        (("ok", "Plan", 100, "RUB", -5), PromocodeErrorCode.INVALID_DURATION, "durationDays"),
    ],
)
async def test_create_plan_refuses_bad_input(
    runtime: Runtime, args: tuple[Any, ...], code: PromocodeErrorCode, field: str
) -> None:
    error = await refused(runtime, lambda s: codes.create_plan(s, *args, actor=ACTOR))
    expect(error, code, field)


async def test_plan_slug_is_unique_and_list_hides_retired(
    runtime: Runtime, catalog: Catalog
) -> None:
    error = await refused(
        runtime, lambda s: codes.create_plan(s, "BASIC", "Again", 100, "RUB", 30, actor=ACTOR)
    )
    expect(error, PromocodeErrorCode.SLUG_TAKEN, "slug")
    on_sale = await run(runtime, codes.list_plans)
    assert [p.slug for p in on_sale] == ["basic", "premium"]
    every = await run(runtime, lambda s: codes.list_plans(s, include_inactive=True))
    assert {p.slug for p in every} == {"basic", "premium", "retired"}


# --- creating codes ----------------------------------------------------------------------

NOW = datetime.now(UTC)
BAD_CREATE: list[tuple[str, Callable[[Catalog], dict[str, Any]], PromocodeErrorCode, str]] = [
    ("empty code", lambda c: {"code": ""}, PromocodeErrorCode.INVALID_CODE, "code"),
    ("blank code", lambda c: {"code": "   "}, PromocodeErrorCode.INVALID_CODE, "code"),
    ("overlong code", lambda c: {"code": "A" * 65}, PromocodeErrorCode.INVALID_CODE, "code"),
    ("control char", lambda c: {"code": "SALE\x00"}, PromocodeErrorCode.INVALID_CODE, "code"),
    ("inner space", lambda c: {"code": "SALE 10"}, PromocodeErrorCode.INVALID_CODE, "code"),
    ("punctuation", lambda c: {"code": "SALE!"}, PromocodeErrorCode.INVALID_CODE, "code"),
    ("cyrillic", lambda c: {"code": "СКИДКА"}, PromocodeErrorCode.INVALID_CODE, "code"),
    ("percent 0", lambda c: {"value": 0}, PromocodeErrorCode.INVALID_VALUE, "value"),
    ("percent 101", lambda c: {"value": 101}, PromocodeErrorCode.INVALID_VALUE, "value"),
    (
        "percent with currency",
        lambda c: {"currency": "RUB"},
        PromocodeErrorCode.INVALID_CURRENCY,
        "currency",
    ),
    (
        "negative amount",
        lambda c: {"kind": PromocodeKind.AMOUNT, "value": -1, "currency": "RUB"},
        PromocodeErrorCode.INVALID_VALUE,
        "value",
    ),
    (
        "zero amount",
        lambda c: {"kind": PromocodeKind.AMOUNT, "value": 0, "currency": "RUB"},
        PromocodeErrorCode.INVALID_VALUE,
        "value",
    ),
    (
        "amount without currency",
        lambda c: {"kind": PromocodeKind.AMOUNT, "value": 100},
        PromocodeErrorCode.INVALID_CURRENCY,
        "currency",
    ),
    (
        "unknown currency",
        lambda c: {"kind": PromocodeKind.AMOUNT, "value": 100, "currency": "XXX"},
        PromocodeErrorCode.INVALID_CURRENCY,
        "currency",
    ),
    (
        "no plan in currency",
        lambda c: {"kind": PromocodeKind.AMOUNT, "value": 100, "currency": "USD"},
        PromocodeErrorCode.INVALID_CURRENCY,
        "currency",
    ),
    (
        "currency differs from plan",
        lambda c: {
            "kind": PromocodeKind.FIXED_PRICE,
            "value": 100,
            "currency": "EUR",
            "plan_ids": [c.basic.id],
        },
        PromocodeErrorCode.INVALID_CURRENCY,
        "currency",
    ),
    (
        "free with a value",
        lambda c: {"kind": PromocodeKind.FREE, "value": 100},
        PromocodeErrorCode.INVALID_VALUE,
        "value",
    ),
    (
        "fixed price above listed plan",
        lambda c: {
            "kind": PromocodeKind.FIXED_PRICE,
            "value": 30_000,
            "currency": "RUB",
            "plan_ids": [c.basic.id],
        },
        PromocodeErrorCode.INVALID_VALUE,
        "value",
    ),
    (
        "fixed price above some plan",
        lambda c: {"kind": PromocodeKind.FIXED_PRICE, "value": 30_000, "currency": "RUB"},
        PromocodeErrorCode.INVALID_VALUE,
        "value",
    ),
    (
        "until equals from",
        lambda c: {"valid_from": NOW + timedelta(days=1), "valid_until": NOW + timedelta(days=1)},
        PromocodeErrorCode.INVALID_PERIOD,
        "validUntil",
    ),
    (
        "until before from",
        lambda c: {"valid_from": NOW + timedelta(days=2), "valid_until": NOW + timedelta(days=1)},
        PromocodeErrorCode.INVALID_PERIOD,
        "validUntil",
    ),
    (
        "until in the past",
        lambda c: {"valid_until": NOW - timedelta(minutes=1)},
        PromocodeErrorCode.INVALID_PERIOD,
        "validUntil",
    ),
    (
        "naive from",
        lambda c: {"valid_from": datetime(2030, 1, 1)},
        PromocodeErrorCode.INVALID_PERIOD,
        "validFrom",
    ),
    ("max uses 0", lambda c: {"max_uses": 0}, PromocodeErrorCode.INVALID_LIMIT, "maxUses"),
    ("max uses -1", lambda c: {"max_uses": -1}, PromocodeErrorCode.INVALID_LIMIT, "maxUses"),
    (
        "per user 0",
        lambda c: {"max_uses_per_user": 0},
        PromocodeErrorCode.INVALID_LIMIT,
        "maxUsesPerUser",
    ),
    ("trial -1", lambda c: {"trial_days": -1}, PromocodeErrorCode.INVALID_LIMIT, "trialDays"),
    (
        "cycles 0",
        lambda c: {"discounted_cycles": 0},
        PromocodeErrorCode.INVALID_LIMIT,
        "discountedCycles",
    ),
    (
        "unknown plan",
        lambda c: {"plan_ids": [c.basic.id, uuid.uuid4()]},
        PromocodeErrorCode.UNKNOWN_PLAN,
        "planIds",
    ),
    (
        "retired plan",
        lambda c: {"plan_ids": [c.retired.id]},
        PromocodeErrorCode.PLAN_NOT_ELIGIBLE,
        "planIds",
    ),
    (
        "too many plans",
        lambda c: {"plan_ids": [uuid.uuid4() for _ in range(101)]},
        PromocodeErrorCode.TOO_MANY_PLANS,
        "planIds",
    ),
    (
        "overlong description",
        lambda c: {"description": "d" * 501},
        PromocodeErrorCode.INVALID_DESCRIPTION,
        "description",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [case[1:] for case in BAD_CREATE],
    ids=[case[0] for case in BAD_CREATE],
)
async def test_create_refuses_bad_input(
    runtime: Runtime,
    catalog: Catalog,
    overrides: Callable[[Catalog], dict[str, Any]],
    code: PromocodeErrorCode,
    field: str,
) -> None:
    data = code_input(**overrides(catalog))
    error = await refused(runtime, lambda s: codes.create_promocode(s, data, actor=ACTOR))
    expect(error, code, field)


async def test_create_refuses_overlong_reason(runtime: Runtime) -> None:
    error = await refused(
        runtime, lambda s: codes.create_promocode(s, code_input(), actor=ACTOR, reason="r" * 501)
    )
    expect(error, PromocodeErrorCode.INVALID_REASON, "reason")


async def test_create_stores_normalised_code_plans_and_audit(
    runtime: Runtime, catalog: Catalog
) -> None:
    until = datetime.now(UTC) + timedelta(days=30)
    data = code_input(
        code="  Summer-10 ",
        description="  Summer sale ",
        valid_until=until,
        max_uses=100,
        plan_ids=[catalog.basic.id, catalog.premium.id, catalog.basic.id],
        audience=Audience.GRANTED,
    )
    promocode = await run(
        runtime, lambda s: codes.create_promocode(s, data, actor=ACTOR, reason="campaign")
    )
    assert (promocode.code, promocode.description, promocode.created_by) == (
        "SUMMER-10",
        "Summer sale",
        ACTOR,
    )
    assert (promocode.uses, promocode.max_uses, promocode.active) == (0, 100, True)
    plan_ids = await run(runtime, lambda s: codes.plan_ids_of(s, [promocode.id]))
    assert set(plan_ids[promocode.id]) == {catalog.basic.id, catalog.premium.id}
    [row] = await audit_rows(runtime, "promocode.create")
    assert (row.actor, row.target, row.reason) == (ACTOR, f"promocode:{promocode.id}", "campaign")


@pytest.mark.parametrize(
    "overrides",
    [
        {"kind": PromocodeKind.FIXED_PRICE, "value": 19_900, "currency": "rub"},
        {"kind": PromocodeKind.FIXED_PRICE, "value": 29_900, "currency": "RUB"},
        {"kind": PromocodeKind.AMOUNT, "value": 100_000, "currency": " RUB "},
        {"kind": PromocodeKind.FREE, "value": 0, "trial_days": 14},
        {"kind": PromocodeKind.PERCENT, "value": 100, "currency": ""},
        {"max_uses": 1, "max_uses_per_user": 1, "discounted_cycles": 3},
    ],
)
async def test_create_accepts_each_kind(
    runtime: Runtime, catalog: Catalog, overrides: dict[str, Any]
) -> None:
    promocode = await create_code(runtime, **overrides)
    kind = overrides.get("kind", PromocodeKind.PERCENT)
    money = kind in (PromocodeKind.FIXED_PRICE, PromocodeKind.AMOUNT)
    expected = (
        kind,
        overrides.get("value", 10),
        "RUB" if money else None,
        overrides.get("trial_days", 0),
        overrides.get("discounted_cycles", 1),
        overrides.get("max_uses"),
        overrides.get("max_uses_per_user", 1),
        0,
        True,
    )

    def offer(row: Promocode) -> tuple[Any, ...]:
        return (
            row.kind,
            row.value,
            row.currency,
            row.trial_days,
            row.discounted_cycles,
            row.max_uses,
            row.max_uses_per_user,
            row.uses,
            row.active,
        )

    assert offer(promocode) == expected
    async with runtime.session_factory() as session:  # persisted, not only returned
        stored = await session.scalar(select(Promocode).where(Promocode.id == promocode.id))
    assert stored is not None and stored is not promocode
    assert offer(stored) == expected
    assert stored.code == promocode.code


async def test_codes_are_unique_case_insensitively(runtime: Runtime) -> None:
    first = await create_code(runtime, code="Summer-10")
    error = await refused(
        runtime, lambda s: codes.create_promocode(s, code_input(code="summer-10"), actor=ACTOR)
    )
    expect(error, PromocodeErrorCode.CODE_TAKEN, "code")
    found = await run(runtime, lambda s: codes.get_promocode_by_code(s, " sUMMER-10 "))
    assert found is not None
    assert found.id == first.id
    assert await run(runtime, lambda s: codes.get_promocode_by_code(s, "SUMMER 10")) is None
    assert await run(runtime, lambda s: codes.get_promocode_by_code(s, "WINTER-10")) is None


async def test_validate_template_skips_the_code_text(runtime: Runtime, catalog: Catalog) -> None:
    template = code_input(code="", plan_ids=[catalog.basic.id])
    plans = await run(
        runtime, lambda s: codes.validate_promocode_input(s, template, check_code_text=False)
    )
    assert [p.id for p in plans] == [catalog.basic.id]
    error = await refused(
        runtime,
        lambda s: codes.validate_promocode_input(
            s, replace(template, value=0), check_code_text=False
        ),
    )
    expect(error, PromocodeErrorCode.INVALID_VALUE, "value")


# --- updating and deactivating -----------------------------------------------------------


async def test_update_changes_fields_and_audits(runtime: Runtime, catalog: Catalog) -> None:
    promocode = await create_code(runtime, valid_until=datetime.now(UTC) + timedelta(days=3))
    later = datetime.now(UTC) + timedelta(days=60)
    changes = PromocodeUpdate(
        description="Extended",
        valid_until=later,
        max_uses=50,
        max_uses_per_user=2,
        plan_ids=[catalog.premium.id],
        audience=Audience.GRANTED,
    )
    updated = await run(
        runtime,
        lambda s: codes.update_promocode(s, promocode.id, changes, actor=ACTOR, reason="extend"),
    )
    assert (updated.description, updated.valid_until, updated.max_uses) == ("Extended", later, 50)
    assert (updated.max_uses_per_user, updated.audience) == (2, Audience.GRANTED)
    assert (updated.kind, updated.value) == (PromocodeKind.PERCENT, 10)
    plan_ids = await run(runtime, lambda s: codes.plan_ids_of(s, [promocode.id]))
    assert plan_ids[promocode.id] == [catalog.premium.id]
    [row] = await audit_rows(runtime, "promocode.update")
    assert (row.actor, row.target, row.reason) == (ACTOR, f"promocode:{promocode.id}", "extend")


async def test_update_clears_nullable_fields_and_skips_noops(runtime: Runtime) -> None:
    promocode = await create_code(
        runtime, max_uses=10, valid_until=datetime.now(UTC) + timedelta(days=3)
    )
    cleared = await run(
        runtime,
        lambda s: codes.update_promocode(
            s,
            promocode.id,
            PromocodeUpdate(max_uses=None, valid_until=None),
            actor=ACTOR,
            reason="",
        ),
    )
    assert (cleared.max_uses, cleared.valid_until, cleared.description) == (None, None, "")
    same = PromocodeUpdate(max_uses=None, active=True, plan_ids=[], valid_from=UNSET)
    await run(
        runtime, lambda s: codes.update_promocode(s, promocode.id, same, actor=ACTOR, reason="")
    )
    assert len(await audit_rows(runtime, "promocode.update")) == 1


def _updating(promocode_id: uuid.UUID, changes: PromocodeUpdate) -> Call:
    return lambda s: codes.update_promocode(s, promocode_id, changes, actor=ACTOR, reason="")


async def test_update_refuses_bad_input(runtime: Runtime, catalog: Catalog) -> None:
    fixed = await create_code(
        runtime,
        kind=PromocodeKind.FIXED_PRICE,
        value=25_000,
        currency="RUB",
        plan_ids=[catalog.basic.id],
        valid_from=datetime.now(UTC) + timedelta(days=1),
    )
    lite = await make_plan(runtime, "lite", 9_900)
    euro = await make_plan(runtime, "euro", 99_900, "EUR")
    async with runtime.session_factory() as session, session.begin():
        (await session.get_one(Promocode, fixed.id)).uses = 3
    cases: list[tuple[PromocodeUpdate, PromocodeErrorCode, str]] = [
        (PromocodeUpdate(max_uses=2), PromocodeErrorCode.INVALID_LIMIT, "maxUses"),
        (PromocodeUpdate(max_uses=0), PromocodeErrorCode.INVALID_LIMIT, "maxUses"),
        (PromocodeUpdate(max_uses_per_user=0), PromocodeErrorCode.INVALID_LIMIT, "maxUsesPerUser"),
        (
            PromocodeUpdate(valid_until=datetime.now(UTC) + timedelta(hours=1)),
            PromocodeErrorCode.INVALID_PERIOD,
            "validUntil",
        ),
        (
            PromocodeUpdate(valid_until=datetime.now(UTC) - timedelta(days=1), valid_from=None),
            PromocodeErrorCode.INVALID_PERIOD,
            "validUntil",
        ),
        (
            PromocodeUpdate(description="d" * 501),
            PromocodeErrorCode.INVALID_DESCRIPTION,
            "description",
        ),
        (PromocodeUpdate(plan_ids=[uuid.uuid4()]), PromocodeErrorCode.UNKNOWN_PLAN, "planIds"),
        (
            PromocodeUpdate(plan_ids=[catalog.retired.id]),
            PromocodeErrorCode.PLAN_NOT_ELIGIBLE,
            "planIds",
        ),
        # The fixed price (250.00) would be above the new plan's price (99.00).
        (PromocodeUpdate(plan_ids=[lite.id]), PromocodeErrorCode.INVALID_VALUE, "value"),
        (
            PromocodeUpdate(plan_ids=[euro.id]),
            PromocodeErrorCode.INVALID_CURRENCY,
            "currency",
        ),
    ]
    for changes, code, field in cases:
        expect(await refused(runtime, _updating(fixed.id, changes)), code, field)
    error = await refused(
        runtime,
        lambda s: codes.update_promocode(
            s, fixed.id, PromocodeUpdate(active=False), actor=ACTOR, reason="r" * 501
        ),
    )
    expect(error, PromocodeErrorCode.INVALID_REASON, "reason")
    error = await refused(
        runtime,
        lambda s: codes.update_promocode(
            s, uuid.uuid4(), PromocodeUpdate(), actor=ACTOR, reason=""
        ),
    )
    expect(error, PromocodeErrorCode.NOT_FOUND, "promocodeId")


async def test_deactivate_is_idempotent_and_audited_once(runtime: Runtime) -> None:
    promocode = await create_code(runtime)
    for _ in range(2):
        result = await run(
            runtime,
            lambda s: codes.deactivate_promocode(s, promocode.id, actor=ACTOR, reason="leaked"),
        )
        assert result.active is False
    [row] = await audit_rows(runtime, "promocode.deactivate")
    assert (row.actor, row.target, row.reason) == (ACTOR, f"promocode:{promocode.id}", "leaked")
    error = await refused(
        runtime, lambda s: codes.deactivate_promocode(s, uuid.uuid4(), actor=ACTOR, reason="")
    )
    expect(error, PromocodeErrorCode.NOT_FOUND, "promocodeId")
    error = await refused(
        runtime,
        lambda s: codes.deactivate_promocode(s, promocode.id, actor=ACTOR, reason="r" * 501),
    )
    expect(error, PromocodeErrorCode.INVALID_REASON, "reason")


# --- grants ------------------------------------------------------------------------------


async def _grantees(runtime: Runtime) -> tuple[User, User, User, Group]:
    active, blocked, deleted = [await create_user(runtime) for _ in range(3)]
    async with runtime.session_factory() as session, session.begin():
        (await session.get_one(User, blocked.id)).status = UserStatus.BLOCKED
        await user_service.delete_account(session, await session.get_one(User, deleted.id))
        group = await group_service.create_group(session, ACTOR, f"g-{uuid.uuid4().hex[:6]}", "")
    return active, blocked, deleted, group


async def test_grant_reports_each_id_and_is_idempotent(runtime: Runtime) -> None:
    promocode = await create_code(runtime, audience=Audience.GRANTED)
    active, blocked, deleted, group = await _grantees(runtime)
    stranger, no_group = uuid.uuid4(), uuid.uuid4()

    async def grant(session: AsyncSession) -> grants.GrantResult:
        return await grants.grant_promocode(
            session,
            promocode.id,
            user_ids=[active.id, blocked.id, deleted.id, stranger, active.id],
            group_ids=[group.id, no_group],
            actor=ACTOR,
            reason="vip",
        )

    first = await run(runtime, grant)
    assert first.outcomes == [
        GrantOutcome(Grantee.USER, active.id, GrantStatus.GRANTED),
        GrantOutcome(Grantee.USER, blocked.id, GrantStatus.USER_NOT_ACTIVE),
        GrantOutcome(Grantee.USER, deleted.id, GrantStatus.UNKNOWN_USER),
        GrantOutcome(Grantee.USER, stranger, GrantStatus.UNKNOWN_USER),
        GrantOutcome(Grantee.GROUP, group.id, GrantStatus.GRANTED),
        GrantOutcome(Grantee.GROUP, no_group, GrantStatus.UNKNOWN_GROUP),
    ]
    assert (first.granted, len(first.refused)) == (2, 4)
    counts = await row_counts(runtime)
    second = await run(runtime, grant)
    assert [o.status for o in second.outcomes] == [
        GrantStatus.ALREADY_GRANTED,
        GrantStatus.USER_NOT_ACTIVE,
        GrantStatus.UNKNOWN_USER,
        GrantStatus.UNKNOWN_USER,
        GrantStatus.ALREADY_GRANTED,
        GrantStatus.UNKNOWN_GROUP,
    ]
    assert second.count(GrantStatus.ALREADY_GRANTED) == 2
    assert await row_counts(runtime) == counts  # nothing new, not even an audit row
    [row] = await audit_rows(runtime, "promocode.grant")
    assert (row.actor, row.target, row.reason) == (ACTOR, f"promocode:{promocode.id}", "vip")
    listed = await run(runtime, lambda s: s.scalars(grants.grants_query(promocode.id)))
    assert {(g.user_id, g.group_id, g.granted_by) for g in listed} == {
        (active.id, None, ACTOR),
        (None, group.id, ACTOR),
    }


async def test_grant_refuses_bad_requests(runtime: Runtime) -> None:
    public = await create_code(runtime)
    granted = await create_code(runtime, audience=Audience.GRANTED)
    user = await create_user(runtime)
    cases: list[tuple[Call, PromocodeErrorCode, str]] = [
        (
            lambda s: grants.grant_promocode(
                s, public.id, user_ids=[user.id], actor=ACTOR, reason=""
            ),
            PromocodeErrorCode.NOT_GRANTABLE,
            "promocodeId",
        ),
        (
            lambda s: grants.grant_promocode(
                s, uuid.uuid4(), user_ids=[user.id], actor=ACTOR, reason=""
            ),
            PromocodeErrorCode.NOT_FOUND,
            "promocodeId",
        ),
        (
            lambda s: grants.grant_promocode(s, granted.id, actor=ACTOR, reason=""),
            PromocodeErrorCode.INVALID_GRANTEES,
            "userIds",
        ),
        (
            lambda s: grants.grant_promocode(
                s, granted.id, user_ids=[uuid.uuid4() for _ in range(1001)], actor=ACTOR, reason=""
            ),
            PromocodeErrorCode.INVALID_GRANTEES,
            "userIds",
        ),
        (
            lambda s: grants.grant_promocode(
                s, granted.id, user_ids=[user.id], actor=ACTOR, reason="r" * 501
            ),
            PromocodeErrorCode.INVALID_REASON,
            "reason",
        ),
    ]
    for call, code, field in cases:
        expect(await refused(runtime, call), code, field)


async def test_revoke_grant(runtime: Runtime) -> None:
    promocode = await create_code(runtime, audience=Audience.GRANTED)
    user, other = await create_user(runtime), await create_user(runtime)
    await run(
        runtime,
        lambda s: grants.grant_promocode(
            s, promocode.id, user_ids=[user.id, other.id], actor=ACTOR, reason=""
        ),
    )

    async def revoke(session: AsyncSession) -> int:
        return await grants.revoke_grant(
            session, promocode.id, user_ids=[user.id], actor=ACTOR, reason="mistake"
        )

    assert await run(runtime, revoke) == 1
    assert await run(runtime, revoke) == 0
    assert len(await audit_rows(runtime, "promocode.revoke_grant")) == 1
    left = await run(runtime, lambda s: s.scalars(grants.grants_query(promocode.id)))
    assert [g.user_id for g in left] == [other.id]


# --- stats and the admin's lists ---------------------------------------------------------


async def _ledger(
    session: AsyncSession,
    promocode: Promocode,
    user: User,
    plan: Plan,
    status: UseStatus,
    release_reason: ReleaseReason | None = None,
) -> None:
    purchase = Purchase(
        user_id=user.id,
        plan_id=plan.id,
        promocode_id=promocode.id,
        status=PurchaseStatus.PENDING,
        list_price_minor=plan.price_minor,
        final_price_minor=plan.price_minor * 9 // 10,
        currency=plan.currency,
        created_by="test",
    )
    session.add(purchase)
    await session.flush()
    session.add(
        PromocodeUse(
            promocode_id=promocode.id,
            user_id=user.id,
            purchase_id=purchase.id,
            status=status,
            reserved_until=datetime.now(UTC) + timedelta(minutes=15),
            release_reason=release_reason,
        )
    )


async def _attempt(
    session: AsyncSession,
    user: User,
    promocode: Promocode | None,
    reason: Rejection,
    minutes_ago: int,
) -> None:
    session.add(
        PromocodeAttempt(
            user_id=user.id,
            promocode_id=promocode.id if promocode else None,
            code_entered=promocode.code if promocode else "NOPE",
            operation=AttemptOperation.QUOTE,
            reason=reason,
            created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        )
    )


async def test_stats_count_the_ledger_attempts_and_grants(
    runtime: Runtime, catalog: Catalog
) -> None:
    promocode = await create_code(runtime, max_uses=5, audience=Audience.GRANTED)
    other = await create_code(runtime)
    user, second = await create_user(runtime), await create_user(runtime)
    async with runtime.session_factory() as session, session.begin():
        for status, why in [
            (UseStatus.RESERVED, None),
            (UseStatus.RESERVED, None),
            (UseStatus.CONFIRMED, None),
            (UseStatus.RELEASED, ReleaseReason.PAYMENT_FAILED),
            (UseStatus.RELEASED, ReleaseReason.TIMEOUT),
            (UseStatus.RELEASED, ReleaseReason.TIMEOUT),
        ]:
            await _ledger(session, promocode, user, catalog.basic, status, why)
        await _ledger(session, other, user, catalog.basic, UseStatus.CONFIRMED)
        (await session.get_one(Promocode, promocode.id)).uses = 3
        await _attempt(session, user, promocode, Rejection.EXHAUSTED, 3)
        await _attempt(session, second, promocode, Rejection.EXHAUSTED, 2)
        await _attempt(session, user, promocode, Rejection.NOT_ASSIGNED_TO_USER, 1)
        await _attempt(session, user, other, Rejection.EXPIRED, 0)
        await _attempt(session, user, None, Rejection.NOT_FOUND, 4)
    await run(
        runtime,
        lambda s: grants.grant_promocode(
            s, promocode.id, user_ids=[user.id, second.id], actor=ACTOR, reason=""
        ),
    )

    result = await run(runtime, lambda s: stats.promocode_stats(s, promocode.id))
    assert (result.uses, result.max_uses, result.remaining) == (3, 5, 2)
    assert (result.reserved, result.confirmed, result.released) == (2, 1, 3)
    assert result.released_by_reason == {ReleaseReason.PAYMENT_FAILED: 1, ReleaseReason.TIMEOUT: 2}
    assert result.rejections == {Rejection.EXHAUSTED: 2, Rejection.NOT_ASSIGNED_TO_USER: 1}
    assert (result.user_grants, result.group_grants) == (2, 0)

    async def attempts(**filters: Any) -> list[tuple[uuid.UUID | None, Rejection]]:
        rows = await run(runtime, lambda s: s.scalars(stats.attempts_query(**filters)))
        return [(a.user_id, a.reason) for a in rows]

    assert await attempts(user_id=user.id) == [
        (user.id, Rejection.EXPIRED),
        (user.id, Rejection.NOT_ASSIGNED_TO_USER),
        (user.id, Rejection.EXHAUSTED),
        (user.id, Rejection.NOT_FOUND),
    ]
    assert await attempts(promocode_id=promocode.id, reason=Rejection.EXHAUSTED) == [
        (second.id, Rejection.EXHAUSTED),
        (user.id, Rejection.EXHAUSTED),
    ]
    purchases = await run(runtime, lambda s: s.scalars(stats.purchases_of_code_query(promocode.id)))
    assert len(list(purchases)) == 6
    error = await refused(runtime, lambda s: stats.promocode_stats(s, uuid.uuid4()))
    expect(error, PromocodeErrorCode.NOT_FOUND, "promocodeId")


async def test_stats_of_an_unused_unlimited_code(runtime: Runtime) -> None:
    promocode = await create_code(runtime)
    result = await run(runtime, lambda s: stats.promocode_stats(s, promocode.id))
    assert (result.uses, result.max_uses, result.remaining) == (0, None, None)
    assert (result.reserved, result.confirmed, result.released) == (0, 0, 0)
    assert (result.released_by_reason, result.rejections) == ({}, {})
