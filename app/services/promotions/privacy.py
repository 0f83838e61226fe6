"""What the promotions domain does when an account is deleted (SPEC §0).

A run still in play ends (STARTED → EXPIRED, COMPLETED → REWARD_EXPIRED), so no reward is
accepted for a deleted account. Loan applications and the ride ledger stay, attached to the
anonymised user id, as the financial record.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.promotions import PromotionUser, PromotionUserStatus

Status = PromotionUserStatus


async def forget_user(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> None:
    for current, ended in (
        (Status.STARTED, Status.EXPIRED),
        (Status.COMPLETED, Status.REWARD_EXPIRED),
    ):
        await session.execute(
            update(PromotionUser)
            .where(PromotionUser.user_id == user_id, PromotionUser.status == current)
            .values(status=ended, expired_at=now, updated_at=now)
        )
