"""The stale-reservation sweep: RESERVED uses past their TTL (abandoned purchases) are
RELEASED (TIMEOUT), by the periodic `promocodes.release_stale_reservations` actor.

Locking: on PostgreSQL the sweep skips rows another transaction holds (`FOR UPDATE SKIP
LOCKED`: a confirmation or failure in flight decides those); on SQLite it waits for the
write lock (`BEGIN IMMEDIATE`, `app.db`), then sees which uses are still RESERVED.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import utcnow
from app.models.promocodes import PromocodeUse, ReleaseReason, UseStatus
from app.services.promocodes.confirmation import release_use


async def release_stale_reservations(session: AsyncSession, *, batch_size: int = 500) -> int:
    """Release RESERVED uses past their TTL (abandoned purchases); returns how many."""
    stale = (
        await session.scalars(
            select(PromocodeUse)
            .where(
                PromocodeUse.status == UseStatus.RESERVED, PromocodeUse.reserved_until < utcnow()
            )
            .order_by(PromocodeUse.reserved_until)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for use in stale:
        await release_use(session, use, ReleaseReason.TIMEOUT)
    return len(stale)
