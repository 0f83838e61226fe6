"""Who may use which code: the checks behind a quote and a reservation, in SPEC order.

`evaluate()` returns the true reason a code is refused; what the caller is told is
`errors.client_code(reason)`, which hides whether a code that isn't the caller's exists
(anti-enumeration), while the attempt log keeps the truth.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.identity import GroupMember, User, UserStatus
from app.models.promocodes import (
    Audience,
    Plan,
    Promocode,
    PromocodeGrant,
    PromocodeKind,
    PromocodeUse,
    Purchase,
    PurchaseStatus,
    Rejection,
    SubscriberEligibility,
    UseStatus,
    promocode_plans,
)
from app.services.promocodes.generator import MAX_CODE_LENGTH, normalize_code


def is_well_formed(code: str) -> bool:
    return 0 < len(code) <= MAX_CODE_LENGTH and code.isprintable() and code.isascii()


@dataclass(frozen=True)
class Verdict:
    promocode: Promocode | None
    rejection: Rejection | None
    retry_after: int | None = None

    @property
    def accepted(self) -> bool:
        return self.rejection is None


async def find_code(session: AsyncSession, code: str) -> Promocode | None:
    if not is_well_formed(code):
        return None
    return await session.scalar(select(Promocode).where(Promocode.code == normalize_code(code)))


async def is_granted(session: AsyncSession, promocode_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    via_group = select(GroupMember.group_id).where(GroupMember.user_id == user_id)
    grant = select(PromocodeGrant.id).where(
        PromocodeGrant.promocode_id == promocode_id,
        or_(PromocodeGrant.user_id == user_id, PromocodeGrant.group_id.in_(via_group)),
    )
    return bool(await session.scalar(select(exists(grant))))


async def plan_is_eligible(session: AsyncSession, promocode: Promocode, plan: Plan) -> bool:
    priced_in_money = promocode.kind in (PromocodeKind.FIXED_PRICE, PromocodeKind.AMOUNT)
    if priced_in_money and promocode.currency and promocode.currency != plan.currency:
        return False
    listed = await session.scalars(
        select(promocode_plans.c.plan_id).where(promocode_plans.c.promocode_id == promocode.id)
    )
    plan_ids = set(listed)
    return not plan_ids or plan.id in plan_ids


async def subscriber_status(
    session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> SubscriberEligibility:
    """NEVER_SUBSCRIBED, ACTIVE (a confirmed purchase still running) or LAPSED."""
    rows = (
        await session.execute(
            select(Purchase.confirmed_at, Plan.duration_days, Purchase.discounted_cycles)
            .join(Plan, Plan.id == Purchase.plan_id)
            .where(Purchase.user_id == user_id, Purchase.status == PurchaseStatus.CONFIRMED)
        )
    ).all()
    if not rows:
        return SubscriberEligibility.NEVER_SUBSCRIBED
    for confirmed_at, duration_days, cycles in rows:
        if (
            confirmed_at is not None
            and confirmed_at + timedelta(days=duration_days * max(cycles, 1)) > now
        ):
            return SubscriberEligibility.ACTIVE
    return SubscriberEligibility.LAPSED


async def holding_uses(session: AsyncSession, promocode_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Uses the user holds on the code: reserved or confirmed, not released."""
    count = await session.scalar(
        select(func.count()).where(
            PromocodeUse.promocode_id == promocode_id,
            PromocodeUse.user_id == user_id,
            PromocodeUse.status != UseStatus.RELEASED,
        )
    )
    return int(count or 0)


async def evaluate(
    session: AsyncSession,
    user: User,
    code: str,
    plan: Plan,
    now: datetime,
    *,
    check_limits: bool = True,
) -> Verdict:
    """The first reason `user` can't use `code` for `plan` now, or an accepted verdict.

    The use limits checked here are advisory. A reservation passes `check_limits=False`,
    because it checks them again under the code's row lock, which is the authority.
    """
    if user.status is not UserStatus.ACTIVE:
        return Verdict(None, Rejection.USER_NOT_ACTIVE)
    promocode = await find_code(session, code)
    if promocode is None:
        return Verdict(None, Rejection.NOT_FOUND)
    reason = await _first_rejection(session, promocode, user, plan, now, check_limits)
    return Verdict(promocode, reason)


async def _first_rejection(
    session: AsyncSession,
    promocode: Promocode,
    user: User,
    plan: Plan,
    now: datetime,
    check_limits: bool,
) -> Rejection | None:
    if promocode.audience is Audience.GRANTED and not await is_granted(
        session, promocode.id, user.id
    ):
        return Rejection.NOT_ASSIGNED_TO_USER
    if not promocode.active:
        return Rejection.INACTIVE
    if promocode.valid_from is not None and now < promocode.valid_from:
        return Rejection.NOT_STARTED
    if promocode.valid_until is not None and now >= promocode.valid_until:
        return Rejection.EXPIRED
    if not await plan_is_eligible(session, promocode, plan):
        return Rejection.PLAN_NOT_ELIGIBLE
    if promocode.eligibility is not SubscriberEligibility.ANY and (
        await subscriber_status(session, user.id, now) is not promocode.eligibility
    ):
        return Rejection.SUBSCRIBER_NOT_ELIGIBLE
    if not check_limits:
        return None
    if await holding_uses(session, promocode.id, user.id) >= promocode.max_uses_per_user:
        return Rejection.ALREADY_USED_BY_USER
    if promocode.max_uses is not None and promocode.uses >= promocode.max_uses:
        return Rejection.EXHAUSTED
    return None
