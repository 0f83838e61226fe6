"""Who may use which code: the checks behind a quote and a reservation, in SPEC order.

`evaluate()` returns the true reason a code is refused; what the caller is told is
`errors.client_code(reason)`, which hides whether a code that isn't the caller's exists
(anti-enumeration), while the attempt log keeps the truth.

The rules themselves are pure functions of what was read (`period_rejection`,
`currency_fits`, `subscription_state`, `limit_rejection`): `evaluate()` reads the facts with
one small query each, the reservation (`reservation.py`) reads them all in one statement,
and both decide with these same functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.lean import HotStatement
from app.models.identity import GroupMember, UserStatus
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


class Buyer(Protocol):
    """Who a code is checked for: a `User` row, or the signed-in principal's id and status."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def status(self) -> UserStatus: ...


class CodeTerms(Protocol):
    """What the rules read of a code: a `Promocode` row, or the columns a statement read."""

    @property
    def kind(self) -> PromocodeKind: ...

    @property
    def currency(self) -> str | None: ...

    @property
    def active(self) -> bool: ...

    @property
    def valid_from(self) -> datetime | None: ...

    @property
    def valid_until(self) -> datetime | None: ...

    @property
    def max_uses(self) -> int | None: ...

    @property
    def max_uses_per_user(self) -> int: ...

    @property
    def uses(self) -> int: ...


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


def period_rejection(promocode: CodeTerms, now: datetime) -> Rejection | None:
    """INACTIVE, NOT_STARTED or EXPIRED (the window is half-open: [valid_from, valid_until))."""
    if not promocode.active:
        return Rejection.INACTIVE
    if promocode.valid_from is not None and now < promocode.valid_from:
        return Rejection.NOT_STARTED
    if promocode.valid_until is not None and now >= promocode.valid_until:
        return Rejection.EXPIRED
    return None


def currency_fits(promocode: CodeTerms, plan_currency: str) -> bool:
    """A code priced in money applies only to plans in its currency."""
    priced_in_money = promocode.kind in (PromocodeKind.FIXED_PRICE, PromocodeKind.AMOUNT)
    return not (priced_in_money and promocode.currency and promocode.currency != plan_currency)


def limit_rejection(promocode: CodeTerms, holding: int) -> Rejection | None:
    """ALREADY_USED_BY_USER (the user holds `holding` uses), then EXHAUSTED."""
    if holding >= promocode.max_uses_per_user:
        return Rejection.ALREADY_USED_BY_USER
    if promocode.max_uses is not None and promocode.uses >= promocode.max_uses:
        return Rejection.EXHAUSTED
    return None


async def plan_is_eligible(session: AsyncSession, promocode: Promocode, plan: Plan) -> bool:
    if not currency_fits(promocode, plan.currency):
        return False
    listed = await session.scalars(
        select(promocode_plans.c.plan_id).where(promocode_plans.c.promocode_id == promocode.id)
    )
    plan_ids = set(listed)
    return not plan_ids or plan.id in plan_ids


_SUBSCRIPTIONS = HotStatement(
    select(Purchase.confirmed_at, Plan.duration_days, Purchase.discounted_cycles)
    .join(Plan, Plan.id == Purchase.plan_id)
    .where(Purchase.user_id == bindparam("user_id"), Purchase.status == PurchaseStatus.CONFIRMED)
)


def subscription_state(rows: Iterable[Any], now: datetime) -> SubscriberEligibility:
    """NEVER_SUBSCRIBED, ACTIVE (a confirmed purchase still running) or LAPSED, from the
    user's confirmed purchases as (confirmed_at, duration_days, discounted_cycles)."""
    state = SubscriberEligibility.NEVER_SUBSCRIBED
    for confirmed_at, duration_days, cycles in rows:
        if (
            confirmed_at is not None
            and confirmed_at + timedelta(days=duration_days * max(cycles, 1)) > now
        ):
            return SubscriberEligibility.ACTIVE
        state = SubscriberEligibility.LAPSED
    return state


async def subscriber_status(
    session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> SubscriberEligibility:
    """NEVER_SUBSCRIBED, ACTIVE (a confirmed purchase still running) or LAPSED."""
    return subscription_state(await _SUBSCRIPTIONS.rows(session, user_id=user_id), now)


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
    user: Buyer,
    code: str,
    plan: Plan,
    now: datetime,
) -> Verdict:
    """The first reason `user` can't use `code` for `plan` now, or an accepted verdict.

    The use limits checked here are advisory (a quote reserves nothing); a reservation
    (`reservation.py`) decides them under the code's row lock, which is the authority.
    """
    if user.status is not UserStatus.ACTIVE:
        return Verdict(None, Rejection.USER_NOT_ACTIVE)
    promocode = await find_code(session, code)
    if promocode is None:
        return Verdict(None, Rejection.NOT_FOUND)
    reason = await _first_rejection(session, promocode, user, plan, now)
    return Verdict(promocode, reason)


async def _first_rejection(
    session: AsyncSession,
    promocode: Promocode,
    user: Buyer,
    plan: Plan,
    now: datetime,
) -> Rejection | None:
    if promocode.audience is Audience.GRANTED and not await is_granted(
        session, promocode.id, user.id
    ):
        return Rejection.NOT_ASSIGNED_TO_USER
    if reason := period_rejection(promocode, now):
        return reason
    if not await plan_is_eligible(session, promocode, plan):
        return Rejection.PLAN_NOT_ELIGIBLE
    if promocode.eligibility is not SubscriberEligibility.ANY and (
        await subscriber_status(session, user.id, now) is not promocode.eligibility
    ):
        return Rejection.SUBSCRIBER_NOT_ELIGIBLE
    return limit_rejection(promocode, await holding_uses(session, promocode.id, user.id))
