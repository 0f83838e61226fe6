"""Promocodes test data: plans and codes (plain async factories, one transaction each)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from app.models.identity import Group, User
from app.models.promocodes import (
    Plan,
    Promocode,
    PromocodeGrant,
    PromocodeKind,
    Purchase,
    PurchaseStatus,
    promocode_plans,
)
from app.runtime import Runtime


async def create_plan(
    runtime: Runtime,
    slug: str | None = None,
    *,
    name: str | None = None,
    price_minor: int = 999,
    currency: str = "RUB",
    duration_days: int = 30,
    active: bool = True,
) -> Plan:
    """A plan; the slug is random unless given, the name is the slug in title case."""
    slug = slug or f"plan-{uuid.uuid4().hex[:6]}"
    async with runtime.session_factory() as session, session.begin():
        plan = Plan(
            slug=slug,
            name=name or slug.title(),
            price_minor=price_minor,
            currency=currency,
            duration_days=duration_days,
            active=active,
        )
        session.add(plan)
    return plan


async def create_promocode(
    runtime: Runtime,
    code: str | None = None,
    kind: PromocodeKind = PromocodeKind.PERCENT,
    value: int = 10,
    *,
    plans: Sequence[Plan] = (),
    **fields: Any,
) -> Promocode:
    """A code as an admin would create it (stored normalised), optionally limited to plans.

    `fields` are further `Promocode` columns (`max_uses`, `audience`, `valid_until`, …).
    """
    text = (code or f"CODE-{uuid.uuid4().hex[:8]}").upper()
    async with runtime.session_factory() as session, session.begin():
        promocode = Promocode(code=text, kind=kind, value=value, **fields)
        session.add(promocode)
        await session.flush()
        if plans:
            await session.execute(
                insert(promocode_plans),
                [{"promocode_id": promocode.id, "plan_id": plan.id} for plan in plans],
            )
    return promocode


async def grant_promocode(
    runtime: Runtime,
    promocode: Promocode,
    *,
    user: User | None = None,
    group: Group | None = None,
) -> PromocodeGrant:
    """A grant of `promocode` to a user or a group, as an admin would make it."""
    async with runtime.session_factory() as session, session.begin():
        grant = PromocodeGrant(
            promocode_id=promocode.id,
            user_id=user.id if user else None,
            group_id=group.id if group else None,
            granted_by="user:admin",
        )
        session.add(grant)
    return grant


async def create_purchase_row(
    runtime: Runtime,
    user: User,
    plan: Plan,
    status: PurchaseStatus = PurchaseStatus.CONFIRMED,
    *,
    confirmed_at: datetime | None = None,
    discounted_cycles: int = 0,
) -> Purchase:
    """A purchase without a code, in `status` (history for subscriber eligibility).

    A CONFIRMED purchase is confirmed at `confirmed_at` (default: now).
    """
    if status is PurchaseStatus.CONFIRMED and confirmed_at is None:
        confirmed_at = datetime.now(UTC)
    async with runtime.session_factory() as session, session.begin():
        purchase = Purchase(
            user_id=user.id,
            plan_id=plan.id,
            status=status,
            list_price_minor=plan.price_minor,
            final_price_minor=plan.price_minor,
            currency=plan.currency,
            discounted_cycles=discounted_cycles,
            created_by="service:test",
            confirmed_at=confirmed_at if status is PurchaseStatus.CONFIRMED else None,
            failed_at=datetime.now(UTC) if status is PurchaseStatus.FAILED else None,
        )
        session.add(purchase)
    return purchase
