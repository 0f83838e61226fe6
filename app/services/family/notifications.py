"""In-app family notifications: written at most once per dedupe key, read and acknowledged
by their recipient.

Dedupe keys: a limit alert or a refused ride once per (family, member, frame start) — the
owner hears that a member ran out once per frame, not at every retried ride; "your family
moved" once per (family, recipient); the members left without a portal account once per
family and migration.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.lean import HotStatement
from app.models.family import FamilyNotification, FamilyNotificationKind
from app.services.errors import DomainError
from app.services.family.codes import FamilyErrorCode

MAX_MARK_SEEN = 100
_COLUMNS = ("id", "user_id", "account_id", "kind", "dedupe_key", "details", "created_at")


def _insert(insert: Any) -> HotStatement:
    table = FamilyNotification.__table__
    values = {name: bindparam(name, type_=table.c[name].type) for name in _COLUMNS}
    values["updated_at"] = bindparam("created_at", type_=table.c.created_at.type)
    return HotStatement(
        insert(FamilyNotification)
        .values(values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )


_INSERT = {"postgresql": _insert(postgresql.insert), "sqlite": _insert(sqlite.insert)}


@dataclass(frozen=True, slots=True)
class Notice:
    user_id: uuid.UUID
    account_id: uuid.UUID | None
    kind: FamilyNotificationKind
    dedupe_key: str
    details: dict[str, Any]


async def notify(session: AsyncSession, notices: Sequence[Notice], *, now: datetime) -> None:
    """Write the notices; one already written under its dedupe key is skipped."""
    if not notices:
        return
    statement = _INSERT[session.get_bind().dialect.name]
    await statement.execute_many(
        session,
        [
            {
                "id": uuid.uuid4(),
                "user_id": notice.user_id,
                "account_id": notice.account_id,
                "kind": notice.kind,
                "dedupe_key": notice.dedupe_key,
                "details": notice.details,
                "created_at": now,
            }
            for notice in notices
        ],
    )


def frame_key(
    kind: FamilyNotificationKind, account_id: uuid.UUID, user_id: uuid.UUID, frame_start: datetime
) -> str:
    return f"{kind.value}:{account_id}:{user_id}:{frame_start.isoformat()}"


@dataclass(frozen=True, slots=True)
class NotificationView:
    id: uuid.UUID
    kind: FamilyNotificationKind
    account_id: uuid.UUID | None
    details: dict[str, Any]
    created_at: datetime
    seen_at: datetime | None


async def recent(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int, unseen_only: bool
) -> list[NotificationView]:
    """The user's newest family notifications, newest first."""
    query = select(
        FamilyNotification.id,
        FamilyNotification.kind,
        FamilyNotification.account_id,
        FamilyNotification.details,
        FamilyNotification.created_at,
        FamilyNotification.seen_at,
    ).where(FamilyNotification.user_id == user_id)
    if unseen_only:
        query = query.where(FamilyNotification.seen_at.is_(None))
    rows = await session.execute(
        query.order_by(FamilyNotification.created_at.desc(), FamilyNotification.id).limit(limit)
    )
    return [NotificationView(*row) for row in rows]


def check_count(count: int) -> None:
    if count > MAX_MARK_SEEN:
        raise DomainError(
            FamilyErrorCode.TOO_MANY_IDS, f"At most {MAX_MARK_SEEN} ids at once.", "ids"
        )


async def mark_seen(
    session: AsyncSession, user_id: uuid.UUID, ids: Sequence[uuid.UUID], *, now: datetime
) -> int:
    """Acknowledge the caller's own notifications; other ids change nothing and say nothing."""
    check_count(len(ids))
    if not ids:
        return 0
    result = await session.execute(
        update(FamilyNotification)
        .where(
            FamilyNotification.user_id == user_id,
            FamilyNotification.id.in_(ids),
            FamilyNotification.seen_at.is_(None),
        )
        .values(seen_at=now, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
