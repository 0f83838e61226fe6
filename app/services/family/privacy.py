"""What the family domain does when an account is deleted (SPEC §0).

The user's cards go. A member leaves their family (their holds end; charges stay, as the
family's ride ledger, attached to the anonymised user id). An owner's family is deleted with
everything in it; if it was migrated, a `family.delete_passport_family` job deletes the
passport family after commit (account deletion can't wait on passport, and the job retries).
The user's family notifications go.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.family import (
    FamilyAccount,
    FamilyHold,
    FamilyMember,
    FamilyNotification,
    HoldStatus,
    PaymentCard,
)
from app.outbox import enqueue

DELETE_PASSPORT_FAMILY = "family.delete_passport_family"


async def forget_user(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> None:
    owned = (
        await session.execute(
            select(FamilyAccount.id, FamilyAccount.passport_family_id).where(
                FamilyAccount.owner_id == user_id
            )
        )
    ).one_or_none()
    if owned is not None:
        await session.execute(delete(FamilyAccount).where(FamilyAccount.id == owned.id))
        if owned.passport_family_id is not None:
            enqueue(session, DELETE_PASSPORT_FAMILY, passport_family_id=owned.passport_family_id)
    await session.execute(
        update(FamilyHold)
        .where(FamilyHold.user_id == user_id, FamilyHold.status == HoldStatus.HELD)
        .values(status=HoldStatus.RELEASED, updated_at=now)
    )
    await session.execute(delete(FamilyMember).where(FamilyMember.user_id == user_id))
    await session.execute(delete(FamilyNotification).where(FamilyNotification.user_id == user_id))
    await session.execute(delete(PaymentCard).where(PaymentCard.user_id == user_id))
