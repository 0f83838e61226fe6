"""The finish step: grant a DONE goal's bonus exactly once, then tell the user.

`finish_goal` locks the user goal and checks "DONE and not yet granted" under that lock, so a
second run (a redelivery, a retry after a crash) finds the bonus granted and does nothing; a
crash before commit leaves nothing behind. Each bonus type has one handler; adding a type is
a bonus class in `bonuses` plus one handler class here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.goals import NotificationKind, UserGoal, UserGoalStatus
from app.models.promocodes import PromocodeKind
from app.models.wallet import WalletEntryKind
from app.services.goals.bonuses import (
    Bonus,
    BonusType,
    CashbackBonus,
    PromocodeBonus,
    WalletBonus,
    parse_bonus,
)
from app.services.goals.events import GoalEventKind, event_for
from app.services.goals.metrics import GOAL_BONUSES_GRANTED
from app.services.goals.notifications import notify
from app.services.promocodes.issuing import PersonalCode, issue_personal_code
from app.services.wallet import cashback, ledger
from app.uow import on_commit

GRANTED_BY = "goals"


@dataclass(frozen=True)
class Granted:
    """What was given: a reference to the thing (a code, a wallet entry) and its details."""

    ref: str
    details: dict[str, Any]


class BonusHandler(Protocol):
    bonus_type: ClassVar[BonusType]

    async def grant(
        self, session: AsyncSession, goal: UserGoal, bonus: Any, now: datetime
    ) -> Granted: ...


class PromocodeHandler:
    """A personal single-use code from the promocodes domain.

    Promocodes discount subscription plans, so the code applies to any plan; the ride classes
    the bonus names are kept in the grant's details and the code's description.
    """

    bonus_type: ClassVar[BonusType] = BonusType.PROMOCODE

    async def grant(
        self, session: AsyncSession, goal: UserGoal, bonus: PromocodeBonus, now: datetime
    ) -> Granted:
        classes = sorted(c.value for c in bonus.ride_classes)
        code = await issue_personal_code(
            session,
            goal.user_id,
            PersonalCode(
                kind=PromocodeKind(bonus.kind.value),
                value=bonus.value,
                currency=bonus.currency,
                valid_until=now + timedelta(days=bonus.validity_days),
                description=_code_description(goal, classes),
            ),
            created_by=f"{GRANTED_BY}:{goal.id}",
        )
        return Granted(
            ref=f"promocode:{code.id}",
            details={
                "code": code.code,
                "kind": bonus.kind.value,
                "value": bonus.value,
                "currency": bonus.currency,
                "validUntil": code.valid_until.isoformat() if code.valid_until else None,
                "rideClasses": classes,
            },
        )


def _code_description(goal: UserGoal, classes: list[str]) -> str:
    scope = ", ".join(classes) if classes else "any ride class"
    return f"Bonus for goal {goal.goal_id} ({scope})"


class WalletHandler:
    bonus_type: ClassVar[BonusType] = BonusType.WALLET

    async def grant(
        self, session: AsyncSession, goal: UserGoal, bonus: WalletBonus, now: datetime
    ) -> Granted:
        entry = ledger.Entry(
            user_id=goal.user_id,
            amount_minor=bonus.amount_minor,
            currency=bonus.currency,
            kind=WalletEntryKind.GOAL_BONUS,
            source_key=f"goal:{goal.id}",
            user_goal_id=goal.id,
        )
        entry_id = await ledger.credit(session, entry, now=now)
        return Granted(
            ref=f"wallet:{entry_id}",
            details={"amountMinor": bonus.amount_minor, "currency": bonus.currency},
        )


class CashbackHandler:
    bonus_type: ClassVar[BonusType] = BonusType.CASHBACK

    async def grant(
        self, session: AsyncSession, goal: UserGoal, bonus: CashbackBonus, now: datetime
    ) -> Granted:
        grant = await cashback.start_grant(
            session,
            user_id=goal.user_id,
            user_goal_id=goal.id,
            percent=bonus.percent,
            starts_at=now,
            ends_at=now + timedelta(days=bonus.days),
        )
        return Granted(
            ref=f"cashback:{grant.id}",
            details={
                "percent": bonus.percent,
                "startsAt": grant.starts_at.isoformat(),
                "endsAt": grant.ends_at.isoformat(),
            },
        )


HANDLERS: dict[BonusType, BonusHandler] = {
    handler.bonus_type: handler
    for handler in (PromocodeHandler(), WalletHandler(), CashbackHandler())
}


async def finish_goal(session: AsyncSession, user_goal_id: uuid.UUID, *, now: datetime) -> bool:
    """Grant the bonus of a DONE goal and create its achievement; False when nothing to do."""
    goal = await session.scalar(
        select(UserGoal).where(UserGoal.id == user_goal_id).with_for_update()
    )
    if goal is None or goal.status is not UserGoalStatus.DONE or goal.bonus_granted_at:
        return False
    bonus: Bonus = parse_bonus(goal.bonus)
    granted = await HANDLERS[bonus.TYPE].grant(session, goal, bonus, now)
    goal.bonus_granted_at = now
    goal.bonus_ref = granted.ref
    goal.bonus_details = {"type": bonus.TYPE.value, **granted.details}
    await notify(session, goal, NotificationKind.ACHIEVEMENT, now)
    on_commit(session, GOAL_BONUSES_GRANTED.labels(bonus.TYPE.value).inc)
    event_for(session, goal, GoalEventKind.ACHIEVEMENT, now)
    return True
