"""Reads of the order stream: an order as the ordering service reported it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.orders import Order


async def find_order(session: AsyncSession, order_id: str) -> Order | None:
    return await session.get(Order, order_id)
