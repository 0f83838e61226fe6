"""Demo plans and promocodes: one code of each kind, a granted one and a one-time one."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.identity import Group
from app.models.promocodes import (
    Audience,
    Plan,
    Promocode,
    PromocodeGrant,
    PromocodeKind,
    SubscriberEligibility,
)

DEMO_CODES = (
    # code, kind, value, what it shows
    ("WELCOME-FREE", PromocodeKind.FREE, 0, "the first month free, for new subscribers"),
    ("HALF-PRICE", PromocodeKind.PERCENT, 50, "50 % off any plan"),
    ("MINUS-100", PromocodeKind.AMOUNT, 10_000, "100 RUB off"),
    ("YEAR-FOR-1990", PromocodeKind.FIXED_PRICE, 199_000, "the yearly plan for 1,990 RUB"),
    ("BETA-TESTERS", PromocodeKind.PERCENT, 30, "granted to the demo group only"),
    ("ONE-TIME-77", PromocodeKind.PERCENT, 77, "one use in total"),
)


async def load_demo_promocodes(session: AsyncSession, group: Group) -> list[Plan]:
    monthly = Plan(
        slug="monthly", name="Monthly", price_minor=49_900, currency="RUB", duration_days=30
    )
    yearly = Plan(
        slug="yearly", name="Yearly", price_minor=399_000, currency="RUB", duration_days=365
    )
    session.add_all([monthly, yearly])
    for code, kind, value, description in DEMO_CODES:
        promocode = Promocode(
            code=code,
            kind=kind,
            value=value,
            currency="RUB" if kind in (PromocodeKind.AMOUNT, PromocodeKind.FIXED_PRICE) else None,
            description=description,
            max_uses=1 if code == "ONE-TIME-77" else None,
            audience=Audience.GRANTED if code == "BETA-TESTERS" else Audience.PUBLIC,
            eligibility=(
                SubscriberEligibility.NEVER_SUBSCRIBED
                if kind is PromocodeKind.FREE
                else SubscriberEligibility.ANY
            ),
            created_by="demo",
        )
        session.add(promocode)
        await session.flush()
        if code == "YEAR-FOR-1990":
            await session.execute(
                Promocode.metadata.tables["promocode_plans"]
                .insert()
                .values(promocode_id=promocode.id, plan_id=yearly.id)
            )
        if code == "BETA-TESTERS":
            session.add(
                PromocodeGrant(promocode_id=promocode.id, group_id=group.id, granted_by="demo")
            )
    await session.flush()
    return [monthly, yearly]
