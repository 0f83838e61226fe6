"""CASHBACK bonuses at work: wallet-paid orders earn `percent` back while a grant runs.

A goal's CASHBACK bonus starts a grant (`start_grant`); every processed order is offered to
`apply`. Credits are idempotent by their ledger `source_key` (one per grant and order); a
cancelled or refunded order has its cashback taken back by a reversing entry, once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.wallet import CashbackGrant, WalletEntry, WalletEntryKind
from app.services.orders.facts import REVERSING, OrderStatus, PaymentMethod
from app.services.wallet.ledger import Entry, record_entries


def cashback_minor(price_minor: int, percent: int) -> int:
    """Rounded down to the minor unit: the wallet never gets more than the percent."""
    return price_minor * percent // 100


async def start_grant(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    user_goal_id: uuid.UUID,
    percent: int,
    starts_at: datetime,
    ends_at: datetime,
) -> CashbackGrant:
    """A running grant: `percent` back on wallet payments completed in [starts_at, ends_at)."""
    grant = CashbackGrant(
        user_id=user_id,
        user_goal_id=user_goal_id,
        percent=percent,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    session.add(grant)
    await session.flush()
    return grant


async def apply(session: AsyncSession, order: Row[Any], *, now: datetime) -> None:
    """Credit or take back cashback for one order (a row with the order's columns)."""
    if order.payment_method != PaymentMethod.WALLET.value or order.completed_at is None:
        return
    if order.status == OrderStatus.COMPLETE.value:
        await _credit(session, order, now)
    elif order.status in REVERSING:
        await _take_back(session, order, now)


async def _credit(session: AsyncSession, order: Row[Any], now: datetime) -> None:
    grants = (
        await session.execute(
            select(CashbackGrant.id, CashbackGrant.percent, CashbackGrant.user_goal_id).where(
                CashbackGrant.user_id == order.user_id,
                CashbackGrant.starts_at <= order.completed_at,
                CashbackGrant.ends_at > order.completed_at,
            )
        )
    ).all()
    entries = [
        Entry(
            user_id=order.user_id,
            amount_minor=cashback_minor(order.price_minor, grant.percent),
            currency=order.currency,
            kind=WalletEntryKind.CASHBACK,
            source_key=f"cashback:{grant.id}:{order.order_id}",
            user_goal_id=grant.user_goal_id,
            order_id=order.order_id,
        )
        for grant in grants
        if cashback_minor(order.price_minor, grant.percent) > 0
    ]
    await record_entries(session, entries, now=now)


async def _take_back(session: AsyncSession, order: Row[Any], now: datetime) -> None:
    credits = (
        await session.scalars(
            select(WalletEntry).where(
                WalletEntry.order_id == order.order_id,
                WalletEntry.kind == WalletEntryKind.CASHBACK,
            )
        )
    ).all()
    entries = [
        Entry(
            user_id=credit.user_id,
            amount_minor=-credit.amount_minor,
            currency=credit.currency,
            kind=WalletEntryKind.CASHBACK_REVERSAL,
            source_key=f"reversal:{credit.source_key}",
            user_goal_id=credit.user_goal_id,
            order_id=order.order_id,
        )
        for credit in credits
    ]
    await record_entries(session, entries, now=now)
