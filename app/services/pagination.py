"""Pages of list reads. The GraphQL layer turns cursors into a page and rows into a
connection; services run the statement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OffsetPage:
    """`limit` rows starting at row `offset` (0-based) of an ordered list."""

    offset: int
    limit: int


@dataclass(frozen=True, slots=True)
class PageRows(Generic[T]):
    rows: Sequence[T]
    has_next: bool


async def fetch_page(
    session: AsyncSession, statement: Select[Any], page: OffsetPage
) -> PageRows[Any]:
    """One page of an ordered statement's entities; one row more tells whether more follow."""
    found = (await session.scalars(statement.offset(page.offset).limit(page.limit + 1))).all()
    return PageRows(found[: page.limit], len(found) > page.limit)
