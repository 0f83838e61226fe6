"""Promocode reads for the API: rows by id (DataLoaders, `node(id:)`) and the paged lists.

The statements of the lists are built where their rules live (`grants`, `stats`; a user's
purchases here); this module runs them a page at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.promocodes import (
    Plan,
    Promocode,
    PromocodeAttempt,
    PromocodeGrant,
    Purchase,
    Rejection,
    promocode_plans,
)
from app.services.lookup import parse_uuids, rows_by_ids
from app.services.pagination import OffsetPage, PageRows, fetch_page
from app.services.promocodes.generator import normalize_code
from app.services.promocodes.grants import grants_query
from app.services.promocodes.stats import attempts_query, purchases_of_code_query

MAX_SEARCH_LENGTH = 100


def purchases_of_user(user_id: uuid.UUID) -> Select[Purchase]:
    return (
        select(Purchase)
        .where(Purchase.user_id == user_id)
        .order_by(Purchase.created_at.desc(), Purchase.id)
    )


async def plans_by_ids(session: AsyncSession, keys: Sequence[str]) -> list[Plan | None]:
    return await rows_by_ids(session, Plan, keys)


async def promocodes_by_ids(session: AsyncSession, keys: Sequence[str]) -> list[Promocode | None]:
    return await rows_by_ids(session, Promocode, keys)


async def purchases_by_ids(session: AsyncSession, keys: Sequence[str]) -> list[Purchase | None]:
    return await rows_by_ids(session, Purchase, keys)


async def grants_by_ids(session: AsyncSession, keys: Sequence[str]) -> list[PromocodeGrant | None]:
    return await rows_by_ids(session, PromocodeGrant, keys)


async def attempts_by_ids(
    session: AsyncSession, keys: Sequence[str]
) -> list[PromocodeAttempt | None]:
    return await rows_by_ids(session, PromocodeAttempt, keys)


async def plans_of_promocodes(
    session: AsyncSession, keys: Sequence[str]
) -> list[list[Plan] | None]:
    """The plans each code is restricted to, cheapest first; None for a code that fits every
    plan."""
    parsed = parse_uuids(keys)
    rows = await session.execute(
        select(promocode_plans.c.promocode_id, Plan)
        .join(Plan, Plan.id == promocode_plans.c.plan_id)
        .where(promocode_plans.c.promocode_id.in_(set(parsed.values())))
        .order_by(Plan.price_minor, Plan.slug)
    )
    found: dict[uuid.UUID, list[Plan]] = {}
    for promocode_id, plan in rows:
        found.setdefault(promocode_id, []).append(plan)
    return [found.get(parsed[key]) if key in parsed else None for key in keys]


async def plans_on_sale(session: AsyncSession) -> list[Plan]:
    """Active plans, cheapest first."""
    rows = await session.scalars(
        select(Plan).where(Plan.active.is_(True)).order_by(Plan.price_minor, Plan.slug)
    )
    return list(rows)


async def purchases_page(
    session: AsyncSession, user_id: uuid.UUID, page: OffsetPage
) -> PageRows[Purchase]:
    return await fetch_page(session, purchases_of_user(user_id), page)


async def grants_page(
    session: AsyncSession, promocode_id: uuid.UUID, page: OffsetPage
) -> PageRows[PromocodeGrant]:
    return await fetch_page(session, grants_query(promocode_id), page)


async def purchases_of_code_page(
    session: AsyncSession, promocode_id: uuid.UUID, page: OffsetPage
) -> PageRows[Purchase]:
    return await fetch_page(session, purchases_of_code_query(promocode_id), page)


async def attempts_page(
    session: AsyncSession,
    page: OffsetPage,
    *,
    user_id: uuid.UUID | None = None,
    promocode_id: uuid.UUID | None = None,
    reason: Rejection | None = None,
) -> PageRows[PromocodeAttempt]:
    statement = attempts_query(user_id=user_id, promocode_id=promocode_id, reason=reason)
    return await fetch_page(session, statement, page)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def promocodes_page(
    session: AsyncSession,
    page: OffsetPage,
    *,
    active: bool | None = None,
    search: str | None = None,
    batch_id: uuid.UUID | None = None,
) -> PageRows[Promocode]:
    """Codes, newest first; `search` is part of the code (case-insensitive)."""
    statement = select(Promocode).order_by(Promocode.created_at.desc(), Promocode.id.desc())
    if active is not None:
        statement = statement.where(Promocode.active.is_(active))
    if search and search.strip():
        pattern = _like(normalize_code(search)[:MAX_SEARCH_LENGTH])
        statement = statement.where(Promocode.code.like(pattern, escape="\\"))
    if batch_id is not None:
        statement = statement.where(Promocode.batch_id == batch_id)
    return await fetch_page(session, statement, page)


async def promocode_by_id(session: AsyncSession, promocode_id: uuid.UUID) -> Promocode | None:
    return await session.get(Promocode, promocode_id)
