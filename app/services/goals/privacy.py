"""What the goals domain does when an account is deleted (SPEC §0).

Pending goals end (MISSED, nothing activates after them), and the free-form `data` of the
user's orders, which may carry addresses or notes, is erased. The ledger, the wallet and
granted bonuses stay, attached to the anonymised user id, as the financial record.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.goals import UserGoal, UserGoalStatus
from app.models.orders import Order


async def forget_user(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> None:
    await session.execute(
        update(UserGoal)
        .where(
            UserGoal.user_id == user_id,
            UserGoal.status.in_([UserGoalStatus.NEXT, UserGoalStatus.ACTIVE]),
        )
        .values(status=UserGoalStatus.MISSED, missed_at=now, updated_at=now)
    )
    await session.execute(
        update(Order).where(Order.user_id == user_id).values(data={}, updated_at=now)
    )
