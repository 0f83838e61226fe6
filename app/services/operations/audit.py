"""The audit log, read back: what admins and services did, to what, when and why.

Every admin or service action writes an `AuditLog` row in the transaction of its effect
(identity, goals, promocodes and operations each write their own): `actor` is the caller's
principal key (`user:<uuid>`, `service:<name>`), `action` a dotted verb (`user.block`,
`promocode.apply`), `target` the object acted on as `<kind>:<key>`, the key being the one in
the object's global id (a UUID; a goal template's slug). This module only reads them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.identity import AuditLog
from app.services.errors import DomainError
from app.services.lookup import rows_by_ids
from app.services.pagination import OffsetPage, PageRows, fetch_page

# The column lengths: a longer filter can match nothing and is a mistake.
_MAX_LENGTHS = {"actor": 100, "action": 64, "target": 100}


class AuditErrorCode(enum.Enum):
    """Why an audit read was refused (the API reports it as BAD_USER_INPUT)."""

    INVALID_FILTER = "INVALID_FILTER"


@dataclass(frozen=True)
class AuditFilter:
    """Entries matching every given value; `since` inclusive, `until` exclusive (UTC-aware)."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def check_filter(filters: AuditFilter) -> AuditFilter:
    """The filter if it can be used, or DomainError(INVALID_FILTER) naming the argument."""
    for name, limit in _MAX_LENGTHS.items():
        value = getattr(filters, name)
        if value is not None and len(value) > limit:
            raise DomainError(AuditErrorCode.INVALID_FILTER, f"At most {limit} characters.", name)
    for moment, name in ((filters.since, "from"), (filters.until, "until")):
        if moment is not None and moment.tzinfo is None:
            raise DomainError(
                AuditErrorCode.INVALID_FILTER, "Give the time with a timezone offset.", name
            )
    if filters.since and filters.until and filters.until < filters.since:
        raise DomainError(
            AuditErrorCode.INVALID_FILTER, "The period ends before it starts.", "until"
        )
    return filters


def _entries_query(filters: AuditFilter) -> Select[AuditLog]:
    query = select(AuditLog).order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    for column, value in (
        (AuditLog.actor, filters.actor),
        (AuditLog.action, filters.action),
        (AuditLog.target, filters.target),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(AuditLog.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditLog.created_at < filters.until)
    return query


async def entries_page(
    session: AsyncSession, page: OffsetPage, filters: AuditFilter
) -> PageRows[AuditLog]:
    """Entries matching `filters`, newest first; DomainError(INVALID_FILTER) for a bad one."""
    return await fetch_page(session, _entries_query(check_filter(filters)), page)


async def entries_by_ids(session: AsyncSession, keys: Sequence[str]) -> list[AuditLog | None]:
    return await rows_by_ids(session, AuditLog, keys)
