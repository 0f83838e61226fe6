"""Prices and the codes a user may use: plans on sale, quotes (a dry run), the offer list.

Nothing here reserves or locks anything: a quote's use limits are advisory, the reservation
(`reservation.py`) decides them under the code's row lock. A refused quote is logged and
counts towards the caller's rate limit, as a refused purchase does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ScalarSelect, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import utcnow
from app.models.identity import GroupMember
from app.models.promocodes import (
    AttemptOperation,
    Audience,
    Plan,
    Promocode,
    PromocodeGrant,
    PromocodeUse,
    Rejection,
    UseStatus,
)
from app.services.errors import DomainError
from app.services.promocodes.attempts import (
    Caller,
    PromocodeRejected,
    RejectionLimits,
    record_attempt,
)
from app.services.promocodes.eligibility import Verdict, evaluate
from app.services.promocodes.errors import PurchaseErrorCode
from app.services.promocodes.pricing import final_price


@dataclass(frozen=True)
class Quote:
    plan: Plan
    promocode: Promocode | None
    list_price_minor: int
    final_price_minor: int
    currency: str
    trial_days: int
    discounted_cycles: int


async def plan_on_sale(session: AsyncSession, plan_id: uuid.UUID) -> Plan | None:
    """The plan, if it exists and is still sold."""
    plan = await session.get(Plan, plan_id)
    return plan if plan is not None and plan.active else None


async def get_plan(session: AsyncSession, plan_id: uuid.UUID) -> Plan:
    plan = await plan_on_sale(session, plan_id)
    if plan is None:
        raise DomainError(PurchaseErrorCode.UNKNOWN_PLAN, "No such plan.", "planId")
    return plan


def price(plan: Plan, promocode: Promocode | None) -> Quote:
    if promocode is None:
        return Quote(plan, None, plan.price_minor, plan.price_minor, plan.currency, 0, 0)
    return Quote(
        plan,
        promocode,
        plan.price_minor,
        final_price(plan.price_minor, promocode.kind, promocode.value),
        plan.currency,
        promocode.trial_days,
        promocode.discounted_cycles,
    )


async def quote(
    session: AsyncSession,
    caller: Caller,
    *,
    plan_id: uuid.UUID,
    code: str,
    limits: RejectionLimits | None = None,
) -> Quote:
    """A dry run: the price under `code`, or PromocodeRejected (the attempt is logged)."""
    plan = await get_plan(session, plan_id)
    if limits is not None and (retry_after := await limits.blocked(caller)):
        verdict = Verdict(None, Rejection.RATE_LIMITED, retry_after)
    else:
        verdict = await evaluate(session, caller.user, code, plan, utcnow())
    if verdict.rejection is not None:
        rejection = PromocodeRejected(
            verdict.rejection,
            verdict.promocode.id if verdict.promocode else None,
            retry_after=verdict.retry_after,
        )
        await record_attempt(
            session,
            caller=caller,
            code=code,
            plan_id=plan.id,
            operation=AttemptOperation.QUOTE,
            rejection=rejection,
        )
        if limits is not None and verdict.rejection is not Rejection.RATE_LIMITED:
            await limits.count_rejection(caller)
        raise rejection
    return price(plan, verdict.promocode)


def _holding(user_id: uuid.UUID) -> ScalarSelect[int]:
    return (
        select(func.count())
        .where(
            PromocodeUse.promocode_id == Promocode.id,
            PromocodeUse.user_id == user_id,
            PromocodeUse.status != UseStatus.RELEASED,
        )
        .correlate(Promocode)
        .scalar_subquery()
    )


async def available_promocodes(
    session: AsyncSession, user_id: uuid.UUID, now: datetime | None = None
) -> Sequence[Promocode]:
    """Active, currently valid codes the user may use: those granted to them (personally or
    through a group) and public campaign codes. Generated codes (a batch) are bearer secrets
    and are never listed, nor are codes the user already holds all their uses of."""
    now = now or utcnow()
    groups = select(GroupMember.group_id).where(GroupMember.user_id == user_id)
    granted = select(PromocodeGrant.promocode_id).where(
        or_(PromocodeGrant.user_id == user_id, PromocodeGrant.group_id.in_(groups))
    )
    query = (
        select(Promocode)
        .where(
            Promocode.active.is_(True),
            or_(Promocode.valid_from.is_(None), Promocode.valid_from <= now),
            or_(Promocode.valid_until.is_(None), Promocode.valid_until > now),
            or_(
                and_(Promocode.audience == Audience.PUBLIC, Promocode.batch_id.is_(None)),
                Promocode.id.in_(granted),
            ),
            Promocode.max_uses_per_user > _holding(user_id),
            or_(Promocode.max_uses.is_(None), Promocode.uses < Promocode.max_uses),
        )
        .order_by(Promocode.valid_until.is_(None), Promocode.valid_until, Promocode.code)
        .limit(100)
    )
    return (await session.scalars(query)).all()
