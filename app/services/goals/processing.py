"""Order processing: match an order against the user's ACTIVE goal and write the ledger.

Runs in the `goals.process_order` actor, several at once, with redeliveries. Everything for
one user happens under the user's row lock, taken first; the load that follows runs in a new
snapshot (READ COMMITTED) and so sees whatever the previous holder committed. That makes the
step idempotent by state: an order with a ledger row is not counted again, whatever message
brought it. No message claim is needed.

A typical order costs four statements: lock, load (order + ledger row + active goal in one
query), the ledger insert, and the progress UPDATE that also closes the goal when it reaches
the target (`progress < target` in its WHERE keeps the count from ever passing the target).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.models.goals import GoalProgressEntry, UserGoal, UserGoalStatus
from app.models.orders import Order
from app.services.goals.conditions import ProgressReason, snapshot_conditions
from app.services.goals.events import GoalEventKind, goal_event
from app.services.goals.lifecycle import activate_next, mark_missed
from app.services.goals.locking import lock_user
from app.services.goals.matching import match_order
from app.services.goals.metrics import GOAL_ORDERS_PROCESSED, GOAL_PROCESSING_LAG, GOALS_COMPLETED
from app.services.orders.facts import REVERSING, OrderFacts, OrderKind, OrderStatus
from app.services.wallet import cashback
from app.uow import on_commit

_LOAD = (
    select(
        Order.order_id,
        Order.user_id,
        Order.kind,
        Order.status,
        Order.ride_class,
        Order.payment_method,
        Order.price_minor,
        Order.currency,
        Order.completed_at,
        Order.city_timezone,
        GoalProgressEntry.id.label("entry_id"),
        GoalProgressEntry.reason.label("entry_reason"),
        GoalProgressEntry.user_goal_id.label("entry_goal_id"),
        GoalProgressEntry.reversed_at.label("entry_reversed_at"),
        UserGoal.id.label("goal_id"),
        UserGoal.goal_id.label("template_id"),
        UserGoal.conditions,
        UserGoal.target,
        UserGoal.progress,
        UserGoal.starts_at,
        UserGoal.expires_at,
    )
    .outerjoin(GoalProgressEntry, GoalProgressEntry.order_id == Order.order_id)
    .outerjoin(
        UserGoal,
        and_(UserGoal.user_id == Order.user_id, UserGoal.status == UserGoalStatus.ACTIVE),
    )
    .where(Order.order_id == bindparam("order_id"))
)

_ADVANCE = (
    update(UserGoal)
    .where(
        UserGoal.id == bindparam("b_goal_id"),
        UserGoal.status == UserGoalStatus.ACTIVE,
        UserGoal.progress < UserGoal.target,
    )
    .values(
        progress=UserGoal.progress + 1,
        status=case(
            (UserGoal.progress + 1 >= UserGoal.target, UserGoalStatus.DONE.value),
            else_=UserGoal.status,
        ),
        done_at=case(
            (UserGoal.progress + 1 >= UserGoal.target, bindparam("b_now")),
            else_=UserGoal.done_at,
        ),
        updated_at=bindparam("b_now"),
    )
    .returning(UserGoal.progress, UserGoal.target, UserGoal.status)
)

_RETREAT = (
    update(UserGoal)
    .where(
        UserGoal.id == bindparam("b_goal_id"),
        UserGoal.status == UserGoalStatus.ACTIVE,
        UserGoal.progress > 0,
    )
    .values(progress=UserGoal.progress - 1, updated_at=bindparam("b_now"))
    .returning(UserGoal.progress, UserGoal.target)
)


@dataclass(frozen=True)
class ProcessResult:
    reason: ProgressReason | None  # None: nothing to do (already processed, or unknown order)
    user_goal_id: uuid.UUID | None = None
    closed: bool = False
    reversed: bool = False


async def process_order(
    session: AsyncSession, order_id: str, user_id: uuid.UUID, *, now: datetime
) -> ProcessResult:
    """Apply one order to the user's goals; safe to run any number of times."""
    if not await lock_user(session, user_id):
        return ProcessResult(None)
    row: Any = (await session.execute(_LOAD, {"order_id": order_id})).one_or_none()
    if row is None:
        return ProcessResult(None)
    await cashback.apply(session, row, now=now)
    if row.entry_id is None:
        return await _first_time(session, row, now)
    if row.status in REVERSING:
        return await _reverse(session, row, now)
    if row.entry_reason == ProgressReason.NOT_COMPLETE.value:
        return await _completed_later(session, row, now)
    return ProcessResult(None)


def _facts(row: Row[Any]) -> OrderFacts:
    return OrderFacts(
        order_id=row.order_id,
        kind=OrderKind(row.kind),
        status=OrderStatus(row.status),
        ride_class=row.ride_class,
        payment_method=row.payment_method,
        price_minor=row.price_minor,
        currency=row.currency,
        completed_at=row.completed_at,
        city_timezone=row.city_timezone,
    )


def _match(row: Row[Any]) -> ProgressReason:
    if row.goal_id is None:
        return ProgressReason.NO_ACTIVE_GOAL
    return match_order(
        snapshot_conditions(row.conditions),
        _facts(row),
        goal_starts_at=row.starts_at,
        goal_expires_at=row.expires_at,
    )


async def _first_time(session: AsyncSession, row: Row[Any], now: datetime) -> ProcessResult:
    if _ended_before(row, now):
        row = await _expire_lazily(session, row, now)
    reason = _match(row)
    counted = reason is ProgressReason.COUNTED
    await session.execute(
        insert(GoalProgressEntry),
        {
            "id": uuid.uuid4(),
            "order_id": row.order_id,
            "user_id": row.user_id,
            "user_goal_id": row.goal_id,
            "reason": reason.value,
            "counted": counted,
            "created_at": now,
            "updated_at": now,
        },
    )
    _observe(session, row, reason, now)
    if not counted:
        return ProcessResult(reason, row.goal_id)
    return await _advance(session, row, reason, now)


def _ended_before(row: Row[Any], now: datetime) -> bool:
    """The active goal's deadline passed before this order completed (and before now)."""
    return (
        row.goal_id is not None
        and row.completed_at is not None
        and row.expires_at <= row.completed_at
        and row.expires_at <= now
    )


async def _expire_lazily(session: AsyncSession, row: Row[Any], now: datetime) -> Row[Any]:
    """End the overdue goal now instead of at the next `goals.expire` run, so the order counts
    towards the goal that follows it (whose period started at the deadline)."""
    goal = await session.get(UserGoal, row.goal_id)
    assert goal is not None and goal.expires_at is not None
    mark_missed(session, goal, now)
    await session.flush()
    await activate_next(session, row.user_id, at=goal.expires_at)
    reloaded: Any = (await session.execute(_LOAD, {"order_id": row.order_id})).one()
    return reloaded


async def _completed_later(session: AsyncSession, row: Row[Any], now: datetime) -> ProcessResult:
    """An order first reported IN_PROGRESS is now COMPLETE: match it again."""
    reason = _match(row)
    if reason is ProgressReason.NOT_COMPLETE:
        return ProcessResult(None)
    await session.execute(
        update(GoalProgressEntry)
        .where(GoalProgressEntry.id == row.entry_id)
        .values(
            reason=reason.value,
            counted=reason is ProgressReason.COUNTED,
            user_goal_id=row.goal_id,
            updated_at=now,
        )
    )
    _observe(session, row, reason, now)
    if reason is not ProgressReason.COUNTED:
        return ProcessResult(reason, row.goal_id)
    return await _advance(session, row, reason, now)


async def _advance(
    session: AsyncSession, row: Row[Any], reason: ProgressReason, now: datetime
) -> ProcessResult:
    advanced = (await session.execute(_ADVANCE, {"b_goal_id": row.goal_id, "b_now": now})).one()
    closed = advanced.status == UserGoalStatus.DONE.value
    kind = GoalEventKind.DONE if closed else GoalEventKind.PROGRESS
    _event(session, row, kind, advanced.progress, advanced.status, now)
    if closed:
        await _close(session, row, now)
    return ProcessResult(reason, row.goal_id, closed=closed)


async def _close(session: AsyncSession, row: Row[Any], now: datetime) -> None:
    """The goal reached its target: grant its bonus (finish job), start the next goal.

    The next goal's period starts when this one was achieved, i.e. at the completion of the
    order that closed it, so the surplus orders of a multi-order count towards it.
    """
    outbox.enqueue(session, "goals.finish", user_goal_id=str(row.goal_id))
    on_commit(session, GOALS_COMPLETED.inc)
    await activate_next(session, row.user_id, at=min(row.completed_at, now))


async def _reverse(session: AsyncSession, row: Row[Any], now: datetime) -> ProcessResult:
    """A cancelled or refunded order gives its count back while its goal is still ACTIVE.

    After the goal is DONE the bonus stays, and so does the count.
    """
    if row.entry_reason != ProgressReason.COUNTED.value or row.entry_reversed_at is not None:
        return ProcessResult(None)
    retreated = (
        await session.execute(_RETREAT, {"b_goal_id": row.entry_goal_id, "b_now": now})
    ).one_or_none()
    if retreated is None:  # the goal is no longer ACTIVE
        return ProcessResult(None, row.entry_goal_id)
    await session.execute(
        update(GoalProgressEntry)
        .where(GoalProgressEntry.id == row.entry_id)
        .values(reversed_at=now, updated_at=now)
    )
    _event(
        session,
        row,
        GoalEventKind.REVERSED,
        retreated.progress,
        UserGoalStatus.ACTIVE.value,
        now,
        user_goal_id=row.entry_goal_id,
    )
    return ProcessResult(ProgressReason.COUNTED, row.entry_goal_id, reversed=True)


def _event(
    session: AsyncSession,
    row: Row[Any],
    kind: GoalEventKind,
    current: int,
    status: str,
    now: datetime,
    *,
    user_goal_id: uuid.UUID | None = None,
) -> None:
    goal_event(
        session,
        kind=kind,
        user_id=row.user_id,
        user_goal_id=user_goal_id or row.goal_id,
        template_id=row.template_id or "",
        status=status,
        current=current,
        total=row.target or 0,
        at=now,
    )


def _observe(session: AsyncSession, row: Row[Any], reason: ProgressReason, now: datetime) -> None:
    lag = (now - row.completed_at).total_seconds() if row.completed_at is not None else None

    def count() -> None:
        GOAL_ORDERS_PROCESSED.labels(reason.value).inc()
        if lag is not None and lag >= 0:
            GOAL_PROCESSING_LAG.observe(lag)

    on_commit(session, count)
