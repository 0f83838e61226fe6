"""A member's usage in a frame, in prebuilt statements: the ride calls and the reads share them.

Usage is summed, never stored (see `app.models.family`): the member's charges in the limit's
currency since the frame's start, plus the holds still alive (HELD and not expired). The
member's row comes with the limit and the owner's timezone, the frame's clock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Uuid, bindparam, cast, func, select

from app.lean import HotStatement
from app.models.base import UTCDateTime
from app.models.family import (
    FamilyAccount,
    FamilyCharge,
    FamilyHold,
    FamilyMember,
    FamilyRole,
    HoldStatus,
    LimitFrame,
)
from app.models.identity import User
from app.services.family.frames import Frame, frame_at
from app.services.family.limits import Usage
from app.services.local_time import zone_or_utc

ACCOUNT = bindparam("account_id", type_=Uuid())
USER = bindparam("user_id", type_=Uuid())


def at(name: str) -> Any:
    return bindparam(name, type_=UTCDateTime())


def _member_read() -> Any:
    return (
        select(
            FamilyMember.id,
            FamilyMember.role,
            FamilyMember.limit_amount_minor,
            FamilyMember.limit_currency,
            FamilyMember.limit_frame,
            FamilyAccount.owner_id,
            User.timezone.label("owner_timezone"),
        )
        .select_from(FamilyMember)
        .join(FamilyAccount, FamilyAccount.id == FamilyMember.account_id)
        .join(User, User.id == FamilyAccount.owner_id)
        .where(
            FamilyMember.account_id == ACCOUNT,
            FamilyMember.user_id == USER,
            FamilyMember.accepted_at.is_not(None),  # an invitation pays for no ride
        )
    )


MEMBER = HotStatement(_member_read())
# Ride checks that hold take turns per member: the hold's fit is checked and written under it.
MEMBER_LOCKED = HotStatement(_member_read().with_for_update(of=FamilyMember))
FAMILY_EXISTS = HotStatement(select(FamilyAccount.id).where(FamilyAccount.id == ACCOUNT))


def charged_sum() -> Any:
    return (
        select(cast(func.coalesce(func.sum(FamilyCharge.amount_minor), 0), BigInteger))
        .where(
            FamilyCharge.account_id == ACCOUNT,
            FamilyCharge.user_id == USER,
            FamilyCharge.currency == bindparam("currency"),
            FamilyCharge.charged_at >= at("frame_start"),
        )
        .scalar_subquery()
    )


def held_sum() -> Any:
    return (
        select(cast(func.coalesce(func.sum(FamilyHold.amount_minor), 0), BigInteger))
        .where(
            FamilyHold.account_id == ACCOUNT,
            FamilyHold.user_id == USER,
            FamilyHold.currency == bindparam("currency"),
            FamilyHold.status == HoldStatus.HELD,
            FamilyHold.expires_at > at("now"),
        )
        .scalar_subquery()
    )


USAGE = HotStatement(select(charged_sum().label("charged"), held_sum().label("held")))
CHARGED = HotStatement(select(charged_sum().label("charged")))


@dataclass(frozen=True, slots=True)
class MemberLimit:
    """A member as the ride calls see them: the limit, if any, and its frame now."""

    member_id: uuid.UUID
    role: FamilyRole
    owner_id: uuid.UUID
    amount_minor: int | None
    currency: str | None
    frame_kind: LimitFrame | None
    frame: Frame | None

    @property
    def limited(self) -> bool:
        return self.amount_minor is not None


def member_limit(row: Any, now: datetime) -> MemberLimit:
    frame = None
    if row.limit_frame is not None:
        frame = frame_at(row.limit_frame, zone_or_utc(row.owner_timezone), now)
    return MemberLimit(
        member_id=row.id,
        role=row.role,
        owner_id=row.owner_id,
        amount_minor=row.limit_amount_minor,
        currency=row.limit_currency,
        frame_kind=row.limit_frame,
        frame=frame,
    )


@dataclass(frozen=True, slots=True)
class LimitState:
    """A limit, its frame and what was used of it, for the API."""

    amount_minor: int
    currency: str
    frame_kind: LimitFrame
    frame: Frame
    usage: Usage

    @property
    def remaining(self) -> int:
        return self.usage.remaining


def usage_params(
    account_id: uuid.UUID, user_id: uuid.UUID, member: MemberLimit, now: datetime
) -> dict[str, Any]:
    assert member.frame is not None and member.currency is not None
    return {
        "account_id": account_id,
        "user_id": user_id,
        "currency": member.currency,
        "frame_start": member.frame.start,
        "now": now,
    }


def limit_state(member: MemberLimit, charged: int, held: int) -> LimitState:
    assert member.amount_minor is not None and member.currency is not None
    assert member.frame_kind is not None and member.frame is not None
    return LimitState(
        amount_minor=member.amount_minor,
        currency=member.currency,
        frame_kind=member.frame_kind,
        frame=member.frame,
        usage=Usage(member.amount_minor, int(charged), int(held)),
    )
