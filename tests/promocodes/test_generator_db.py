"""Bulk promocode insertion against the database, on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.promocodes import (
    Audience,
    Promocode,
    PromocodeKind,
    SubscriberEligibility,
    promocode_plans,
)
from app.runtime import Runtime
from app.services.promocodes.generator import generate, insert_generated
from tests.factories.promocodes import create_plan, create_promocode

VALID_FROM = datetime(2030, 1, 1, tzinfo=UTC)
TEMPLATE: dict[str, Any] = {
    "kind": PromocodeKind.PERCENT,
    "value": 15,
    "currency": "EUR",
    "valid_from": VALID_FROM,
    "valid_until": VALID_FROM + timedelta(days=30),
    "max_uses": 1,
    "max_uses_per_user": 1,
    "audience": Audience.GRANTED,
    "eligibility": SubscriberEligibility.NEVER_SUBSCRIBED,
    "trial_days": 7,
    "discounted_cycles": 3,
    "description": "spring campaign",
    "created_by": "admin:test",
}


async def _codes(session: AsyncSession, batch_id: uuid.UUID | None = None) -> list[str]:
    query = select(Promocode.code)
    if batch_id is not None:
        query = query.where(Promocode.batch_id == batch_id)
    return list(await session.scalars(query))


async def _preinsert(session: AsyncSession, codes: list[str]) -> None:
    session.add_all(Promocode(code=code, kind=PromocodeKind.FREE, value=0) for code in codes)
    await session.flush()


async def test_inserts_count_distinct_codes_copying_the_template(runtime: Runtime) -> None:
    batch_id = uuid.uuid4()
    async with runtime.session_factory() as session, session.begin():
        codes = await insert_generated(
            session, template=TEMPLATE, count=2000, length=8, prefix="spring-", batch_id=batch_id
        )
    assert len(codes) == len(set(codes)) == 2000
    assert all(code.startswith("SPRING-") and len(code) == 15 for code in codes)
    async with runtime.session_factory() as session:
        assert sorted(await _codes(session, batch_id)) == sorted(codes)
        rows = list(await session.scalars(select(Promocode).where(Promocode.batch_id == batch_id)))
    assert len({row.id for row in rows}) == 2000
    for row in rows[:: len(rows) // 20]:
        assert {name: getattr(row, name) for name in TEMPLATE} == TEMPLATE
        assert (row.uses, row.active, row.batch_id) == (0, True, batch_id)
        assert row.created_at is not None


async def test_missing_template_fields_take_the_column_defaults(runtime: Runtime) -> None:
    batch_id = uuid.uuid4()
    async with runtime.session_factory() as session, session.begin():
        await insert_generated(
            session, template={"kind": "FREE"}, count=3, length=6, prefix="", batch_id=batch_id
        )
        row = (
            await session.scalars(select(Promocode).where(Promocode.batch_id == batch_id))
        ).first()
    assert row is not None
    assert (row.kind, row.value, row.description, row.max_uses_per_user) == ("FREE", 0, "", 1)
    assert (row.audience, row.eligibility, row.trial_days, row.discounted_cycles) == (
        Audience.PUBLIC,
        SubscriberEligibility.ANY,
        0,
        1,
    )
    assert (row.max_uses, row.valid_until, row.currency, row.created_by) == (None, None, None, "")


async def test_existing_codes_are_never_duplicated(runtime: Runtime) -> None:
    """A 16-code space, and the first codes the seeded generator will draw already exist."""
    shape: dict[str, Any] = {"length": 4, "prefix": "T-", "charset": "AB"}
    first_draw = generate(8, **shape, rng=Random(7))
    existing = first_draw[:5]
    async with runtime.session_factory() as session, session.begin():
        await _preinsert(session, existing)
        codes = await insert_generated(
            session, template=TEMPLATE, count=8, batch_id=uuid.uuid4(), rng=Random(7), **shape
        )
    assert len(codes) == len(set(codes)) == 8
    assert not set(codes) & set(existing)
    assert set(first_draw[5:]) <= set(codes)  # the draws that did not collide were kept
    async with runtime.session_factory() as session:
        stored = await _codes(session)
    assert len(stored) == len(set(stored)) == 13


async def test_a_database_full_of_such_codes_is_refused(runtime: Runtime) -> None:
    shape: dict[str, Any] = {"length": 4, "prefix": "", "charset": "AB"}
    async with runtime.session_factory() as session, session.begin():
        await _preinsert(session, generate(8, **shape, rng=Random(1)))
        await _preinsert(session, generate(4, **shape, taken=set(await _codes(session))))
        with pytest.raises(ValueError, match="free"):
            await insert_generated(
                session, template=TEMPLATE, count=8, batch_id=uuid.uuid4(), **shape
            )


async def test_eligible_plans_are_copied_to_every_code(runtime: Runtime) -> None:
    plans = [await create_plan(runtime, price_minor=999, currency="EUR") for _ in range(2)]
    async with runtime.session_factory() as session, session.begin():
        plan_ids = [plan.id for plan in plans]
        batch_id = uuid.uuid4()
        template = TEMPLATE | {"plan_ids": [*plan_ids, plan_ids[0]]}  # a repeat is ignored
        await insert_generated(
            session, template=template, count=300, length=8, prefix="P", batch_id=batch_id
        )
    query = (
        select(promocode_plans.c.plan_id, func.count())
        .join(Promocode, Promocode.id == promocode_plans.c.promocode_id)
        .where(Promocode.batch_id == batch_id)
        .group_by(promocode_plans.c.plan_id)
    )
    async with runtime.session_factory() as session:
        counts = {plan_id: n for plan_id, n in await session.execute(query)}
    assert counts == dict.fromkeys(plan_ids, 300)


@pytest.mark.parametrize("plan_ids", ["absent", "empty"])
async def test_without_plan_ids_no_plan_rows(runtime: Runtime, plan_ids: str) -> None:
    plan = await create_plan(runtime, currency="EUR")
    listed = await create_promocode(runtime, plans=[plan])  # another code's plan row stays
    template = TEMPLATE if plan_ids == "absent" else {**TEMPLATE, "plan_ids": []}
    batch_id = uuid.uuid4()
    async with runtime.session_factory() as session, session.begin():
        codes = await insert_generated(
            session, template=template, count=10, length=8, prefix="", batch_id=batch_id
        )
    assert len(set(codes)) == 10
    async with runtime.session_factory() as session:
        assert sorted(await _codes(session, batch_id)) == sorted(codes)  # the codes were stored
        rows = (await session.execute(select(promocode_plans))).all()
    assert [(row.promocode_id, row.plan_id) for row in rows] == [(listed.id, plan.id)]


async def test_nothing_is_committed_by_the_function(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with runtime.session_factory() as session:
        monkeypatch.setattr(session, "commit", _no_commit)
        codes = await insert_generated(
            session, template=TEMPLATE, count=50, length=8, prefix="", batch_id=uuid.uuid4()
        )
        assert len(await _codes(session)) == 50
        assert session.in_transaction()
        await session.rollback()
    async with runtime.session_factory() as session:
        assert not set(await _codes(session)) & set(codes)
        assert await _codes(session) == []


async def _no_commit() -> None:
    raise AssertionError("insert_generated must not commit")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"value": 10}, "kind"),
        ({"kind": "PERCENT", "value": 0}, "between 1 and 100"),
        ({"kind": "FREE", "value": 10}, "FREE"),
        ({"kind": "AMOUNT", "value": 1, "uses": 5}, "not copied"),
        ({"kind": "AMOUNT", "value": 1, "code": "X"}, "not copied"),
    ],
)
async def test_invalid_templates_are_refused_before_any_insert(
    runtime: Runtime, template: dict[str, Any], message: str
) -> None:
    async with runtime.session_factory() as session:
        with pytest.raises(ValueError, match=message):
            await insert_generated(
                session, template=template, count=5, length=8, prefix="", batch_id=uuid.uuid4()
            )
        assert await _codes(session) == []


async def test_a_dense_request_is_refused_before_any_insert(runtime: Runtime) -> None:
    async with runtime.session_factory() as session:
        with pytest.raises(ValueError, match="more than half"):
            await insert_generated(
                session,
                template=TEMPLATE,
                count=9,
                length=4,
                prefix="",
                charset="AB",
                batch_id=uuid.uuid4(),
            )
        assert await _codes(session) == []
