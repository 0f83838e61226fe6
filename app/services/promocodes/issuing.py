"""Codes given to people: an admin applying a code for users, and personal bonus codes.

`apply_code` creates purchases for selected users, one reservation each, and reports every
user's outcome; when the code runs out midway the rest are reported EXHAUSTED (partial
success). `issue_personal_code` is what the goals domain calls for a PROMOCODE bonus: a
single-use code granted to one user, written in the caller's transaction.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.identity import AuditLog, User
from app.models.promocodes import (
    AttemptOperation,
    Audience,
    Promocode,
    PromocodeGrant,
    PromocodeKind,
    Rejection,
    promocode_plans,
)
from app.services.errors import DomainError
from app.services.promocodes.attempts import Caller, PromocodeRejected
from app.services.promocodes.eligibility import find_code
from app.services.promocodes.errors import PromocodeErrorCode
from app.services.promocodes.generator import SAFE_CHARSET, generate
from app.services.promocodes.pricing import final_price
from app.services.promocodes.quotes import plan_on_sale
from app.services.promocodes.reservation import PurchaseView, create_purchase
from app.settings import Settings

MAX_APPLY_USERS = 1000
PERSONAL_CODE_LENGTH = 10


class ApplyStatus(enum.Enum):
    APPLIED = "APPLIED"
    REJECTED = "REJECTED"
    UNKNOWN_USER = "UNKNOWN_USER"


@dataclass(frozen=True)
class ApplyOutcome:
    user_id: uuid.UUID
    status: ApplyStatus
    purchase: PurchaseView | None = None
    rejection: Rejection | None = None  # the true reason, for the admin


def count_applied(outcomes: Sequence[ApplyOutcome]) -> int:
    return sum(outcome.status is ApplyStatus.APPLIED for outcome in outcomes)


async def apply_code(
    session: AsyncSession,
    *,
    code: str,
    plan_id: uuid.UUID,
    user_ids: Sequence[uuid.UUID],
    actor: str,
    reason: str,
    settings: Settings,
) -> list[ApplyOutcome]:
    """Create a purchase with `code` for each user; every outcome is reported.

    The request is refused as a whole (before any purchase is made) for a plan not on sale,
    no or too many users, or a bad reason.
    """
    if await plan_on_sale(session, plan_id) is None:
        raise DomainError(PromocodeErrorCode.UNKNOWN_PLAN, "No such plan.", "planId")
    unique_ids = _checked_users(user_ids)
    if len(reason) > 500 or not reason.isprintable():
        raise DomainError(
            PromocodeErrorCode.INVALID_REASON, "reason: at most 500 printable characters.", "reason"
        )
    users = {
        user.id: user for user in await session.scalars(select(User).where(User.id.in_(unique_ids)))
    }
    outcomes = [
        await _apply_one(session, users.get(user_id), user_id, code, plan_id, actor, settings)
        for user_id in unique_ids
    ]
    await _audit_apply(
        session, code, actor, f"{reason} ({count_applied(outcomes)}/{len(outcomes)} applied)"
    )
    return outcomes


async def _audit_apply(session: AsyncSession, code: str, actor: str, reason: str) -> None:
    """The audit names the promocode by id, as every audit target (`<kind>:<uuid>`); a code
    that names none applied nothing (its rejections are in the attempts), so has no entry."""
    promocode = await find_code(session, code)
    if promocode is not None:
        session.add(
            AuditLog(
                actor=actor,
                action="promocode.apply",
                target=f"promocode:{promocode.id}",
                reason=reason[:500],
            )
        )


def _checked_users(user_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    unique_ids = list(dict.fromkeys(user_ids))
    if not unique_ids:
        raise DomainError(PromocodeErrorCode.NO_USERS, "Give at least one user.", "userIds")
    if len(unique_ids) > MAX_APPLY_USERS:
        raise DomainError(
            PromocodeErrorCode.TOO_MANY_USERS,
            f"At most {MAX_APPLY_USERS} users at once.",
            "userIds",
        )
    return unique_ids


async def _apply_one(
    session: AsyncSession,
    user: User | None,
    user_id: uuid.UUID,
    code: str,
    plan_id: uuid.UUID,
    actor: str,
    settings: Settings,
) -> ApplyOutcome:
    if user is None:
        return ApplyOutcome(user_id, ApplyStatus.UNKNOWN_USER)
    try:
        purchase, _ = await create_purchase(
            session,
            Caller(user),
            plan_id=plan_id,
            code=code,
            idempotency_key=None,
            settings=settings,
            operation=AttemptOperation.ADMIN_APPLY,
            created_by=actor,
        )
    except PromocodeRejected as rejection:
        return ApplyOutcome(user_id, ApplyStatus.REJECTED, rejection=rejection.reason)
    return ApplyOutcome(user_id, ApplyStatus.APPLIED, purchase=purchase)


@dataclass(frozen=True)
class PersonalCode:
    """What a bonus gives: PERCENT (1-100) or AMOUNT (minor units, with a currency)."""

    kind: PromocodeKind
    value: int
    currency: str | None = None
    valid_until: datetime | None = None
    plan_ids: Sequence[uuid.UUID] = ()
    description: str = ""


async def issue_personal_code(
    session: AsyncSession, user_id: uuid.UUID, offer: PersonalCode, *, created_by: str
) -> Promocode:
    """A single-use code only `user_id` can use, in the caller's transaction (no commit)."""
    if offer.kind not in (PromocodeKind.PERCENT, PromocodeKind.AMOUNT):
        raise ValueError("a personal bonus code is PERCENT or AMOUNT")
    final_price(100, offer.kind, offer.value)  # validates the value the same way pricing does
    if offer.kind is PromocodeKind.AMOUNT and not offer.currency:
        raise ValueError("an AMOUNT code needs a currency")
    [text] = generate(1, length=PERSONAL_CODE_LENGTH, prefix="BONUS-", charset=SAFE_CHARSET)
    promocode = Promocode(
        code=text,
        kind=offer.kind,
        value=offer.value,
        currency=offer.currency,
        description=offer.description,
        valid_until=offer.valid_until,
        max_uses=1,
        max_uses_per_user=1,
        audience=Audience.GRANTED,
        created_by=created_by,
    )
    session.add(promocode)
    await session.flush()
    session.add(PromocodeGrant(promocode_id=promocode.id, user_id=user_id, granted_by=created_by))
    if offer.plan_ids:
        await session.execute(
            promocode_plans.insert(),
            [{"promocode_id": promocode.id, "plan_id": plan_id} for plan_id in offer.plan_ids],
        )
    return promocode
