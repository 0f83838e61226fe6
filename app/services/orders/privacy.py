"""What the orders domain does when an account is deleted (SPEC §0).

The free-form `data` of the user's orders, which may carry addresses or notes, is erased;
the orders themselves stay (goals' ledger and cashback refer to them).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.orders import Order


async def forget_user(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> None:
    await session.execute(
        update(Order).where(Order.user_id == user_id).values(data={}, updated_at=now)
    )
