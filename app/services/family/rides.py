"""The service caller's ride calls: check (optionally holding the fare), charge, release.

On the lean path (docs/architecture.md): prebuilt statements (`ride_statements`), no ORM
flush, few round trips.
- `check` without a hold: the member's row, then the usage sums (two statements).
- `check` with a hold: the member's row locked (`FOR UPDATE` on PostgreSQL: holds of one
  member take turns, so two rides started at once can't both fit a limit only one fits;
  SQLite's unit of work holds the write lock already), then on PostgreSQL one statement that
  sums the usage and inserts the hold only if the fare fits (a CTE); SQLite runs the sums and
  the insert as two. A refusal adds the owner's RIDE_REFUSED notification.
- `charge` is idempotent by order id (the unique index decides; a repeat with other terms is
  ORDER_ID_REUSED), turns the order's hold into usage and tells the owner when the charge
  crosses 80 % or 100 % of the frame's limit.
- `release` ends a hold (idempotent); the sweeper (`expire_holds`) marks the holds that
  expired, which count for nothing from the moment they expire anyway.

A member without a limit (and the owner) always fits; their holds are still written, so
charge and release behave the same for every ride.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.family import FamilyNotificationKind, HoldStatus
from app.services.errors import DomainError
from app.services.family import metrics
from app.services.family import ride_statements as q
from app.services.family.codes import FamilyRideErrorCode as Code
from app.services.family.codes import RideRefusal
from app.services.family.limits import alerts_crossed
from app.services.family.notifications import Notice, frame_key, notify
from app.services.family.usage import (
    CHARGED,
    FAMILY_EXISTS,
    MEMBER,
    MEMBER_LOCKED,
    USAGE,
    LimitState,
    MemberLimit,
    limit_state,
    member_limit,
    usage_params,
)
from app.services.validation import MAX_MINOR, InvalidValue, check_currency

MAX_ORDER_ID = 64
MIN_TTL = timedelta(seconds=60)
MAX_TTL = timedelta(days=7)
UNLIMITED = 2**62  # the fit check's limit for a member without one


@dataclass(frozen=True, slots=True)
class HoldView:
    id: uuid.UUID
    order_id: str
    amount_minor: int
    currency: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RideCheck:
    available: bool
    refusal: RideRefusal | None
    limit: LimitState | None  # None: the member has no limit
    hold: HoldView | None


@dataclass(frozen=True, slots=True)
class Fare:
    amount_minor: int
    currency: str


def check_fare(amount_minor: int, currency: str, *, positive: bool = True) -> Fare:
    low = 1 if positive else 0
    if not low <= amount_minor <= MAX_MINOR:
        raise DomainError(
            Code.INVALID_AMOUNT,
            f"An amount is {low}-{MAX_MINOR} minor units.",
            "amount.amountMinor",
        )
    try:
        check_currency(currency)
    except InvalidValue as exc:
        raise DomainError(Code.INVALID_CURRENCY, str(exc), "amount.currency") from exc
    return Fare(amount_minor, currency)


def check_order_id(order_id: str, field: str) -> str:
    if not 1 <= len(order_id) <= MAX_ORDER_ID or not order_id.isprintable():
        raise DomainError(
            Code.INVALID_ORDER_ID, f"An order id is 1-{MAX_ORDER_ID} printable characters.", field
        )
    return order_id


def check_ttl(ttl_seconds: int | None, default: timedelta) -> timedelta:
    if ttl_seconds is None:
        return default
    ttl = timedelta(seconds=ttl_seconds)
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise DomainError(
            Code.INVALID_TTL,
            f"A hold lives {int(MIN_TTL.total_seconds())}-{int(MAX_TTL.total_seconds())} s.",
            "hold.ttlSeconds",
        )
    return ttl


# --- check --------------------------------------------------------------------------------


async def _member(
    session: AsyncSession, account_id: uuid.UUID, user_id: uuid.UUID, *, lock: bool, now: datetime
) -> MemberLimit:
    statement = MEMBER_LOCKED if lock else MEMBER
    row = await statement.one_or_none(session, account_id=account_id, user_id=user_id)
    if row is None:
        if await FAMILY_EXISTS.scalar(session, account_id=account_id) is None:
            raise DomainError(Code.NOT_FOUND, "No such family.", "accountId")
        raise DomainError(Code.NOT_A_MEMBER, "The user is not in this family.", "userId")
    return member_limit(row, now)


def _same_currency(member: MemberLimit, fare: Fare) -> None:
    if member.limited and member.currency != fare.currency:
        raise DomainError(
            Code.CURRENCY_MISMATCH,
            f"The member's limit is in {member.currency}.",
            "amount.currency",
        )


@dataclass(frozen=True, slots=True)
class HoldRequest:
    order_id: str
    ttl: timedelta


async def check(
    session: AsyncSession,
    account_id: uuid.UUID,
    user_id: uuid.UUID,
    fare: Fare,
    *,
    hold: HoldRequest | None,
    now: datetime,
) -> RideCheck:
    """Whether the fare fits what remains of the member's limit now (and hold it if asked)."""
    member = await _member(session, account_id, user_id, lock=hold is not None, now=now)
    _same_currency(member, fare)
    if hold is not None:
        return await _check_and_hold(session, account_id, user_id, member, fare, hold, now)
    if not member.limited:
        return _counted(RideCheck(True, None, None, None))
    row = await USAGE.one(session, **usage_params(account_id, user_id, member, now))
    state = limit_state(member, row.charged, row.held)
    if state.usage.fits(fare.amount_minor):
        return _counted(RideCheck(True, None, state, None))
    return await _refused(session, account_id, user_id, member, state, now)


def _counted(result: RideCheck) -> RideCheck:
    metrics.ride_checked(result.available, held=result.hold is not None)
    return result


async def _check_and_hold(
    session: AsyncSession,
    account_id: uuid.UUID,
    user_id: uuid.UUID,
    member: MemberLimit,
    fare: Fare,
    hold: HoldRequest,
    now: datetime,
) -> RideCheck:
    hold_id = uuid.uuid4()
    expires_at = now + hold.ttl
    params = {
        "account_id": account_id,
        "user_id": user_id,
        "currency": fare.currency,
        "frame_start": member.frame.start if member.frame else now,
        "now": now,
        "hold_id": hold_id,
        "order_id": hold.order_id,
        "amount": fare.amount_minor,
        "status": HoldStatus.HELD,
        "expires_at": expires_at,
        "limit": member.amount_minor if member.limited else UNLIMITED,
    }
    if session.get_bind().dialect.name == "postgresql":
        row = await q.HOLD_PG.one(session, **params)
        charged, held, inserted = int(row.charged), int(row.held), row.hold_id
    else:
        row = await USAGE.one(session, **params)
        charged, held = int(row.charged), int(row.held)
        limit = member.amount_minor if member.limited else UNLIMITED
        fits = charged + held + fare.amount_minor <= (limit or 0)
        inserted = await q.HOLD_SQLITE.scalar(session, **params) if fits else None
    state = limit_state(member, charged, held) if member.limited else None
    if inserted is not None:
        view = HoldView(hold_id, hold.order_id, fare.amount_minor, fare.currency, expires_at)
        after = limit_state(member, charged, held + fare.amount_minor) if member.limited else None
        return _counted(RideCheck(True, None, after, view))
    existing = await q.HOLD_BY_ORDER.one_or_none(session, order_id=hold.order_id)
    if existing is not None:
        return _counted(_repeat(existing, account_id, user_id, fare, hold.order_id, state, now))
    assert state is not None  # an unlimited member always fits
    return await _refused(session, account_id, user_id, member, state, now)


def _repeat(
    existing: Any,
    account_id: uuid.UUID,
    user_id: uuid.UUID,
    fare: Fare,
    order_id: str,
    state: LimitState | None,
    now: datetime,
) -> RideCheck:
    """A check for an order that holds already: the same hold again, or ORDER_ID_REUSED."""
    same = (existing.account_id, existing.user_id, existing.amount_minor, existing.currency) == (
        account_id,
        user_id,
        fare.amount_minor,
        fare.currency,
    )
    if not same or existing.status is not HoldStatus.HELD or existing.expires_at <= now:
        raise DomainError(
            Code.ORDER_ID_REUSED,
            "This order holds (or held) a fare already, with other terms or no longer live; "
            "a new ride needs a new order id.",
            "hold.orderId",
        )
    view = HoldView(existing.id, order_id, fare.amount_minor, fare.currency, existing.expires_at)
    return RideCheck(True, None, state, view)


async def _refused(
    session: AsyncSession,
    account_id: uuid.UUID,
    user_id: uuid.UUID,
    member: MemberLimit,
    state: LimitState,
    now: datetime,
) -> RideCheck:
    kind = FamilyNotificationKind.RIDE_REFUSED
    notice = Notice(
        user_id=member.owner_id,
        account_id=account_id,
        kind=kind,
        dedupe_key=frame_key(kind, account_id, user_id, state.frame.start),
        details=_details(user_id, state),
    )
    await notify(session, [notice], now=now)
    return _counted(RideCheck(False, RideRefusal.LIMIT_EXCEEDED, state, None))


def _details(user_id: uuid.UUID, state: LimitState) -> dict[str, Any]:
    return {
        "userId": str(user_id),
        "limitMinor": state.amount_minor,
        "usedMinor": state.usage.used,
        "currency": state.currency,
        "frame": state.frame_kind.value,
        "frameStart": state.frame.start.isoformat(),
    }


# --- charge and release -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Charged:
    duplicate: bool  # the order was charged before with the same terms: nothing changed
    limit: LimitState | None


async def charge(
    session: AsyncSession,
    account_id: uuid.UUID,
    user_id: uuid.UUID,
    order_id: str,
    fare: Fare,
    *,
    now: datetime,
) -> Charged:
    """Record the ride's fare as the member's usage (once per order id)."""
    member = await _member(session, account_id, user_id, lock=False, now=now)
    _same_currency(member, fare)
    dialect = session.get_bind().dialect.name
    params = {"account_id": account_id, "user_id": user_id, "order_id": order_id, "now": now}
    charged_id = await q.CHARGE[dialect].scalar(
        session, charge_id=uuid.uuid4(), amount=fare.amount_minor, currency=fare.currency, **params
    )
    if charged_id is None:
        await _same_charge(session, account_id, user_id, order_id, fare)
        return Charged(duplicate=True, limit=None)
    await q.CHARGE_HOLD.rows(session, b_order_id=order_id, b_account_id=account_id, b_now=now)
    metrics.ride_charged()
    if not member.limited:
        return Charged(duplicate=False, limit=None)
    usage = usage_params(account_id, user_id, member, now)
    charged = int(await CHARGED.scalar(session, **usage) or 0)
    state = limit_state(member, charged, 0)
    await _alert(session, account_id, user_id, member, state, charged - fare.amount_minor, now)
    return Charged(duplicate=False, limit=state)


async def _same_charge(
    session: AsyncSession, account_id: uuid.UUID, user_id: uuid.UUID, order_id: str, fare: Fare
) -> None:
    found = await q.CHARGE_BY_ORDER.one(session, order_id=order_id)
    if tuple(found) != (account_id, user_id, fare.amount_minor, fare.currency):
        raise DomainError(
            Code.ORDER_ID_REUSED,
            "This order was charged already with other terms.",
            "orderId",
        )


async def _alert(
    session: AsyncSession,
    account_id: uuid.UUID,
    user_id: uuid.UUID,
    member: MemberLimit,
    state: LimitState,
    before: int,
    now: datetime,
) -> None:
    kinds = alerts_crossed(state.amount_minor, max(before, 0), state.usage.charged)
    await notify(
        session,
        [
            Notice(
                user_id=member.owner_id,
                account_id=account_id,
                kind=kind,
                dedupe_key=frame_key(kind, account_id, user_id, state.frame.start),
                details=_details(user_id, state),
            )
            for kind in kinds
        ],
        now=now,
    )


class ReleaseOutcome(enum.Enum):
    RELEASED = "RELEASED"
    ALREADY_RELEASED = "ALREADY_RELEASED"  # released before: nothing changed
    EXPIRED = "EXPIRED"  # the hold had expired: it counted for nothing already


async def release(
    session: AsyncSession, account_id: uuid.UUID, order_id: str, *, now: datetime
) -> ReleaseOutcome:
    """End the order's hold (a cancelled ride): what it held counts for nothing from now."""
    released = await q.RELEASE_HOLD.rows(
        session, b_order_id=order_id, b_account_id=account_id, b_now=now
    )
    if released:
        metrics.hold_released()
        return ReleaseOutcome.RELEASED
    found = await q.HOLD_BY_ORDER.one_or_none(session, order_id=order_id)
    if found is None or found.account_id != account_id:
        raise DomainError(Code.HOLD_NOT_FOUND, "No hold for this order.", "orderId")
    if found.status is HoldStatus.CHARGED:
        raise DomainError(Code.ALREADY_CHARGED, "The ride was charged already.", "orderId")
    if found.status is HoldStatus.EXPIRED:
        return ReleaseOutcome.EXPIRED
    return ReleaseOutcome.ALREADY_RELEASED


async def expire_holds(session: AsyncSession, *, now: datetime) -> int:
    """Mark the holds past their expiry EXPIRED (they stopped counting when they expired)."""
    expired = await q.EXPIRE_HOLDS.execute(session, b_now=now)
    metrics.holds_expired(expired)
    return expired
