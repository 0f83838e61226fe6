"""Wallet test data: ledger entries written through the wallet's own ledger (plain async)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from app.models.base import utcnow
from app.models.wallet import WalletEntry, WalletEntryKind
from app.runtime import Runtime
from app.services.wallet import ledger


async def credit(
    runtime: Runtime,
    user_id: uuid.UUID,
    amount_minor: int,
    currency: str = "RUB",
    *,
    kind: WalletEntryKind = WalletEntryKind.GOAL_BONUS,
    at: datetime | None = None,
) -> uuid.UUID:
    entry = ledger.Entry(
        user_id=user_id,
        amount_minor=amount_minor,
        currency=currency,
        kind=kind,
        source_key=f"test:{uuid.uuid4()}",
    )
    async with runtime.session_factory() as session, session.begin():
        return await ledger.credit(session, entry, now=at or utcnow())


async def entries_of(runtime: Runtime, user_id: uuid.UUID) -> list[WalletEntry]:
    async with runtime.session_factory() as session:
        rows = await session.scalars(
            select(WalletEntry)
            .where(WalletEntry.user_id == user_id)
            .order_by(WalletEntry.created_at)
        )
        return list(rows)
