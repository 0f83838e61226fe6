"""Wallet reads: the balance per currency and the ledger, newest first (keyset pages)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.wallet import WalletEntry
from app.services.lookup import rows_by_ids


async def wallet_balances(session: AsyncSession, user_id: uuid.UUID) -> list[tuple[int, str]]:
    rows = await session.execute(
        select(func.sum(WalletEntry.amount_minor), WalletEntry.currency)
        .where(WalletEntry.user_id == user_id)
        .group_by(WalletEntry.currency)
        .order_by(WalletEntry.currency)
    )
    return [(int(total), currency) for total, currency in rows]


async def wallet_entries(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
) -> list[WalletEntry]:
    query = select(WalletEntry).where(WalletEntry.user_id == user_id)
    if before is not None:
        at, entry_id = before
        query = query.where(
            or_(
                WalletEntry.created_at < at,
                and_(WalletEntry.created_at == at, WalletEntry.id < entry_id),
            )
        )
    rows = await session.scalars(
        query.order_by(WalletEntry.created_at.desc(), WalletEntry.id.desc()).limit(limit)
    )
    return list(rows)


async def entries_by_ids(session: AsyncSession, keys: Sequence[str]) -> list[WalletEntry | None]:
    return await rows_by_ids(session, WalletEntry, keys)
