"""What the goals domain does when an account is deleted (SPEC §0).

Pending goals end (MISSED, nothing activates after them). The ledger and granted bonuses
stay, attached to the anonymised user id, as the financial record.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.goals import UserGoal, UserGoalStatus


async def forget_user(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> None:
    await session.execute(
        update(UserGoal)
        .where(
            UserGoal.user_id == user_id,
            UserGoal.status.in_([UserGoalStatus.NEXT, UserGoalStatus.ACTIVE]),
        )
        .values(status=UserGoalStatus.MISSED, missed_at=now, updated_at=now)
    )
