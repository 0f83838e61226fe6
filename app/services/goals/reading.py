"""What a user reads about their goals. Each read is one statement whatever the list size.

Statuses are computed on read: an ACTIVE goal whose deadline passed shows as MISSED even
before `goals.expire` has marked it, so no read ever shows an expired goal as active.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    exists,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.lean import HotStatement
from app.models.goals import (
    GoalNotification,
    GoalProgressEntry,
    GoalTemplate,
    NotificationKind,
    UserGoal,
    UserGoalStatus,
)
from app.models.orders import Order
from app.services.lookup import parse_uuids

_GOAL_COLUMNS = (
    UserGoal.id,
    UserGoal.user_id,
    UserGoal.goal_id,
    UserGoal.status,
    UserGoal.position,
    UserGoal.conditions,
    UserGoal.bonus,
    UserGoal.target,
    UserGoal.progress,
    UserGoal.starts_at,
    UserGoal.expires_at,
    UserGoal.done_at,
    UserGoal.missed_at,
    UserGoal.bonus_granted_at,
    UserGoal.bonus_details,
    UserGoal.created_at,
    GoalTemplate.default_locale,
    GoalTemplate.title,
    GoalTemplate.description,
    GoalTemplate.details,
    GoalTemplate.button_text,
)


@dataclass(frozen=True, slots=True)
class GoalView:
    """A user goal with its template's texts, as one row of the read query."""

    id: uuid.UUID
    user_id: uuid.UUID
    goal_id: str
    status: UserGoalStatus  # as shown: an overdue ACTIVE goal is MISSED
    position: int
    conditions: dict[str, Any]
    bonus: dict[str, Any]
    target: int
    progress: int
    starts_at: datetime | None
    expires_at: datetime | None
    done_at: datetime | None
    missed_at: datetime | None
    bonus_granted_at: datetime | None
    bonus_details: dict[str, Any] | None
    created_at: datetime
    default_locale: str
    title: dict[str, Any]
    description: dict[str, Any]
    details: dict[str, Any]
    button_text: dict[str, Any]

    @classmethod
    def from_row(cls, row: Row[Any], now: datetime) -> GoalView:
        """From a row that starts with `_GOAL_COLUMNS`, in the fields' order."""
        values = list(row[:_FIELD_COUNT])
        values[_STATUS] = shown_status(UserGoalStatus(values[_STATUS]), row.expires_at, now)
        return cls(*values)


_FIELD_COUNT = len(_GOAL_COLUMNS)
_STATUS = 3
assert [c.key for c in _GOAL_COLUMNS] == list(GoalView.__slots__), "keep the orders in step"


def shown_status(
    status: UserGoalStatus, expires_at: datetime | None, now: datetime
) -> UserGoalStatus:
    if status is UserGoalStatus.ACTIVE and expires_at is not None and expires_at <= now:
        return UserGoalStatus.MISSED
    return status


def _goals_select() -> Select[Any]:
    return select(*_GOAL_COLUMNS).join(GoalTemplate, GoalTemplate.id == UserGoal.goal_id)


@dataclass(frozen=True)
class ViewerGoals:
    active: GoalView | None
    upcoming: list[GoalView]
    recent_done: list[GoalView]


def _viewer_goals_statement() -> Any:
    current = _goals_select().where(
        UserGoal.user_id == bindparam("user_id"),
        UserGoal.status.in_([UserGoalStatus.ACTIVE, UserGoalStatus.NEXT]),
    )
    done = (
        _goals_select()
        .where(UserGoal.user_id == bindparam("user_id"), UserGoal.status == UserGoalStatus.DONE)
        .order_by(UserGoal.done_at.desc(), UserGoal.id)
        .limit(bindparam("recent_done", type_=Integer))
    )
    return union_all(current, done.subquery().select())


# The read path is hot: built once, run on the lean path (app/lean.py, docs/architecture.md).
_VIEWER_GOALS = HotStatement(_viewer_goals_statement())
_HAS_UNSEEN = HotStatement(
    select(
        exists().where(
            GoalNotification.user_id == bindparam("user_id"),
            GoalNotification.kind == NotificationKind.ACHIEVEMENT,
            GoalNotification.seen_at.is_(None),
        )
    )
)


async def viewer_goals(
    session: AsyncSession, user_id: uuid.UUID, *, now: datetime, recent_done: int
) -> ViewerGoals:
    """The active goal, the waiting ones in order, and the last `recent_done` DONE ones."""
    rows = await _VIEWER_GOALS.rows(session, user_id=user_id, recent_done=recent_done)
    views = [GoalView.from_row(row, now) for row in rows]
    return _arrange(views)


def _arrange(views: Sequence[GoalView]) -> ViewerGoals:
    active = next((v for v in views if v.status is UserGoalStatus.ACTIVE), None)
    overdue = [v for v in views if v.status is UserGoalStatus.MISSED]
    upcoming = sorted(
        (v for v in views if v.status is UserGoalStatus.NEXT), key=lambda v: (v.position, v.id)
    )
    done = sorted(
        (v for v in views if v.status is UserGoalStatus.DONE),
        key=lambda v: v.done_at or v.created_at,
        reverse=True,
    )
    # An overdue goal not yet marked by the expiry job leads the "recent" list as MISSED.
    return ViewerGoals(active, upcoming, overdue + done)


async def goals_by_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID], *, now: datetime
) -> dict[uuid.UUID, GoalView]:
    rows = await session.execute(_goals_select().where(UserGoal.id.in_(ids)))
    return {row.id: GoalView.from_row(row, now) for row in rows}


async def user_goals(
    session: AsyncSession, user_id: uuid.UUID, *, now: datetime, limit: int
) -> list[GoalView]:
    """A user's goals of every status, the newest assignment first (for admins)."""
    rows = await session.execute(
        _goals_select()
        .where(UserGoal.user_id == user_id)
        .order_by(UserGoal.position.desc())
        .limit(limit)
    )
    return [GoalView.from_row(row, now) for row in rows]


async def has_unseen_achievements(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(await _HAS_UNSEEN.scalar(session, user_id=user_id))


@dataclass(frozen=True)
class AchievementView:
    goal: GoalView
    created_at: datetime
    seen_at: datetime | None
    id: uuid.UUID | None = None
    kind: NotificationKind = NotificationKind.ACHIEVEMENT


async def achievements(
    session: AsyncSession, user_id: uuid.UUID, *, unseen_only: bool, now: datetime, limit: int
) -> list[AchievementView]:
    query = (
        select(
            *_GOAL_COLUMNS,
            GoalNotification.created_at.label("notified_at"),
            GoalNotification.seen_at,
        )
        .join(GoalTemplate, GoalTemplate.id == UserGoal.goal_id)
        .join(GoalNotification, GoalNotification.user_goal_id == UserGoal.id)
        .where(
            GoalNotification.user_id == user_id,
            GoalNotification.kind == NotificationKind.ACHIEVEMENT,
        )
        .order_by(GoalNotification.created_at.desc(), GoalNotification.id)
        .limit(limit)
    )
    if unseen_only:
        query = query.where(GoalNotification.seen_at.is_(None))
    rows = await session.execute(query)
    return [AchievementView(GoalView.from_row(r, now), r.notified_at, r.seen_at) for r in rows]


async def notifications(
    session: AsyncSession, user_id: uuid.UUID, *, unseen_only: bool, now: datetime, limit: int
) -> list[AchievementView]:
    """Every kind of goal notification (achievements, reminders, assignments), newest first."""
    query = (
        select(
            *_GOAL_COLUMNS,
            GoalNotification.id.label("notification_id"),
            GoalNotification.kind.label("notification_kind"),
            GoalNotification.created_at.label("notified_at"),
            GoalNotification.seen_at,
        )
        .join(GoalTemplate, GoalTemplate.id == UserGoal.goal_id)
        .join(GoalNotification, GoalNotification.user_goal_id == UserGoal.id)
        .where(GoalNotification.user_id == user_id)
        .order_by(GoalNotification.created_at.desc(), GoalNotification.id)
        .limit(limit)
    )
    if unseen_only:
        query = query.where(GoalNotification.seen_at.is_(None))
    rows = await session.execute(query)
    return [
        AchievementView(
            GoalView.from_row(r, now),
            r.notified_at,
            r.seen_at,
            r.notification_id,
            r.notification_kind,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class LogEntry:
    id: uuid.UUID
    order_id: str
    reason: str
    counted: bool
    reversed_at: datetime | None
    processed_at: datetime
    user_goal_id: uuid.UUID | None
    template_id: str | None
    kind: str
    status: str
    ride_class: str | None
    payment_method: str | None
    price_minor: int
    currency: str
    completed_at: datetime | None
    user_id: uuid.UUID


def progress_log_query(user_id: uuid.UUID | None = None, order_id: str | None = None) -> Any:
    """The ledger joined with its orders (and goals), as `LogEntry` rows."""
    query = (
        select(
            GoalProgressEntry.id,
            GoalProgressEntry.order_id,
            GoalProgressEntry.reason,
            GoalProgressEntry.counted,
            GoalProgressEntry.reversed_at,
            GoalProgressEntry.created_at.label("processed_at"),
            GoalProgressEntry.user_goal_id,
            UserGoal.goal_id.label("template_id"),
            Order.kind,
            Order.status,
            Order.ride_class,
            Order.payment_method,
            Order.price_minor,
            Order.currency,
            Order.completed_at,
            GoalProgressEntry.user_id,
        )
        .join(Order, Order.order_id == GoalProgressEntry.order_id)
        .outerjoin(UserGoal, UserGoal.id == GoalProgressEntry.user_goal_id)
    )
    if user_id is not None:
        query = query.where(GoalProgressEntry.user_id == user_id)
    if order_id is not None:
        query = query.where(GoalProgressEntry.order_id == order_id)
    return query


async def progress_log(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
) -> list[LogEntry]:
    """The user's ledger, newest first; `before` is the keyset cursor (created_at, id)."""
    query = progress_log_query(user_id=user_id)
    if before is not None:
        at, entry_id = before
        query = query.where(
            or_(
                GoalProgressEntry.created_at < at,
                and_(GoalProgressEntry.created_at == at, GoalProgressEntry.id < entry_id),
            )
        )
    rows = await session.execute(
        query.order_by(GoalProgressEntry.created_at.desc(), GoalProgressEntry.id.desc()).limit(
            limit
        )
    )
    return [LogEntry(**row._mapping) for row in rows]


async def log_entry_of_order(session: AsyncSession, order_id: str) -> LogEntry | None:
    """The ledger row of one order; None while it waits to be processed."""
    rows = await session.execute(progress_log_query(order_id=order_id))
    row = rows.first()
    return None if row is None else LogEntry(**row._mapping)


async def log_entries_by_ids(session: AsyncSession, keys: Sequence[str]) -> list[LogEntry | None]:
    """Ledger rows by node key, in key order (None for an unknown key)."""
    parsed = parse_uuids(keys)
    if not parsed:
        return [None] * len(keys)
    rows = await session.execute(
        progress_log_query().where(GoalProgressEntry.id.in_(set(parsed.values())))
    )
    found = {row.id: LogEntry(**row._mapping) for row in rows}
    return [found.get(parsed[key]) if key in parsed else None for key in keys]


async def notifications_by_ids(
    session: AsyncSession, keys: Sequence[str], *, now: datetime
) -> list[AchievementView | None]:
    """Notifications (any kind) with their goals, by node key, in key order."""
    parsed = parse_uuids(keys)
    if not parsed:
        return [None] * len(keys)
    rows = await session.execute(
        select(
            *_GOAL_COLUMNS,
            GoalNotification.id.label("notification_id"),
            GoalNotification.kind.label("notification_kind"),
            GoalNotification.created_at.label("notified_at"),
            GoalNotification.seen_at,
        )
        .join(GoalTemplate, GoalTemplate.id == UserGoal.goal_id)
        .join(GoalNotification, GoalNotification.user_goal_id == UserGoal.id)
        .where(GoalNotification.id.in_(set(parsed.values())))
    )
    found = {
        r.notification_id: AchievementView(
            GoalView.from_row(r, now),
            r.notified_at,
            r.seen_at,
            r.notification_id,
            r.notification_kind,
        )
        for r in rows
    }
    return [found.get(parsed[key]) if key in parsed else None for key in keys]


async def goals_by_keys(
    session: AsyncSession, keys: Sequence[str], *, now: datetime
) -> list[GoalView | None]:
    """User goals by node key, in key order (None for an unknown key)."""
    parsed = parse_uuids(keys)
    found = await goals_by_ids(session, list(parsed.values()), now=now) if parsed else {}
    return [found.get(parsed[key]) if key in parsed else None for key in keys]
