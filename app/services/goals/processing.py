"""Order processing: match orders against the user's ACTIVE goal and write the ledger.

Two entry points, one engine:

- `process_pending(session, user_ids)` (the `goals.process_orders` job, one per recording
  request; issue 12): under the users' locks (one statement, in id order) it consumes their
  queue rows (`orders.queue.claim`), reads every pending order of those users with its
  ledger row and the user's ACTIVE goal (one statement), processes each user's orders in
  order (completion time, then order id) against the goal as it stands in memory, and
  writes the effects in batches: the new ledger rows (one pipelined INSERT), each goal's
  progress (one conditional UPDATE per goal, pipelined: `progress = <the value read>` in its
  WHERE is the concurrency guard, and the count can never pass the target), and the pending
  markers (`orders.queue.mark_processed`). A typical job therefore costs six statements
  whatever the number of orders and users: lock, claim, load, ledger, progress, markers.
- `process_order(session, order_id, user_id)` (the older per-order `goals.process_order`
  messages still queued at a deploy, and tests): the same engine for one order.

Everything for one user happens under the user's row lock, taken first; the load that
follows runs in a new snapshot (READ COMMITTED) and so sees whatever the previous holder
committed. That makes processing idempotent by state: an order with a ledger row is not
counted again, whatever message brought it. No message claim is needed.

The rare steps flush the batch first and then run one by one: the order that closes a goal
(its progress UPDATE, the `goals.finish` job, the next goal activated from the closing
order's completion, so the surplus orders of the batch count towards it), a cancellation
that gives a count back, an order completed after being reported IN_PROGRESS, and an order
completed after the ACTIVE goal's deadline (the overdue goal ends on the spot). Wallet-paid
orders go through cashback (a statement or two each).

Goal events (PROGRESS, DONE, REVERSED, ACTIVATED, MISSED) wait in the unit of work and go to
pub/sub after the commit in one batch (`app.events`); PROGRESS is one event per goal per
flush, with the count reached, not one per order. Metrics are counted after the commit by
one hook per job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, bindparam, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.lean import DIALECTS, HotStatement, one_of
from app.models.goals import GoalProgressEntry, UserGoal, UserGoalStatus
from app.models.orders import Order
from app.services.goals.conditions import GoalConditions, ProgressReason, snapshot_conditions
from app.services.goals.events import GoalEventKind, goal_event
from app.services.goals.lifecycle import activate_next, mark_missed
from app.services.goals.locking import lock_user, lock_users
from app.services.goals.matching import match_order
from app.services.goals.metrics import GOAL_ORDERS_PROCESSED, GOAL_PROCESSING_LAG, GOALS_COMPLETED
from app.services.orders import consumers, queue
from app.services.orders.facts import REVERSING, OrderFacts, OrderKind, OrderStatus
from app.services.wallet import cashback
from app.uow import on_commit

_COLUMNS = (
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
    Order.pending_at,
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


def _load(where: Any) -> HotStatement:
    return HotStatement(
        select(*_COLUMNS)
        .outerjoin(GoalProgressEntry, GoalProgressEntry.order_id == Order.order_id)
        .outerjoin(
            UserGoal,
            and_(UserGoal.user_id == Order.user_id, UserGoal.status == UserGoalStatus.ACTIVE),
        )
        .where(where)
        .order_by(
            Order.user_id, func.coalesce(Order.completed_at, Order.ordered_at), Order.order_id
        )
    )


_LOAD_ONE = _load(Order.order_id == bindparam("order_id"))
_LOAD_PENDING = {
    d: _load(and_(one_of(Order.user_id, "user_ids", d), Order.pending_at.is_not(None)))
    for d in DIALECTS
}

_ENTRY = GoalProgressEntry.__table__.c
_LEDGER = HotStatement(
    insert(GoalProgressEntry).values(
        id=bindparam("id", type_=_ENTRY["id"].type),
        order_id=bindparam("order_id", type_=_ENTRY["order_id"].type),
        user_id=bindparam("user_id", type_=_ENTRY["user_id"].type),
        user_goal_id=bindparam("user_goal_id", type_=_ENTRY["user_goal_id"].type),
        reason=bindparam("reason", type_=_ENTRY["reason"].type),
        counted=bindparam("counted", type_=_ENTRY["counted"].type),
        created_at=bindparam("now", type_=_ENTRY["created_at"].type),
        updated_at=bindparam("now", type_=_ENTRY["updated_at"].type),
    )
)

# `progress = :expected`: the goal is as this job read it (the user's lock makes that so;
# the guard makes a mistake fail loudly instead of miscounting).
_K = bindparam("k", type_=Integer())
_NOW = bindparam("now", type_=UserGoal.__table__.c.updated_at.type)
_reached = UserGoal.progress + _K >= UserGoal.target
_ADVANCE = HotStatement(
    update(UserGoal)
    .where(
        UserGoal.id == bindparam("b_goal_id"),
        UserGoal.status == UserGoalStatus.ACTIVE,
        UserGoal.progress == bindparam("expected"),
        UserGoal.progress + _K <= UserGoal.target,
    )
    .values(
        progress=UserGoal.progress + _K,
        status=case((_reached, UserGoalStatus.DONE.value), else_=UserGoal.status),
        done_at=case((_reached, _NOW), else_=UserGoal.done_at),
        updated_at=_NOW,
    )
    .returning(UserGoal.id, UserGoal.progress, UserGoal.status)
)

_RETREAT = HotStatement(
    update(UserGoal)
    .where(
        UserGoal.id == bindparam("b_goal_id"),
        UserGoal.status == UserGoalStatus.ACTIVE,
        UserGoal.progress > 0,
    )
    .values(progress=UserGoal.progress - 1, updated_at=bindparam("now"))
    .returning(UserGoal.progress, UserGoal.target)
)
_REVERSE_ENTRY = HotStatement(
    update(GoalProgressEntry)
    .where(GoalProgressEntry.id == bindparam("b_entry_id"))
    .values(reversed_at=bindparam("now"), updated_at=bindparam("now"))
)
_REMATCH_ENTRY = HotStatement(
    update(GoalProgressEntry)
    .where(GoalProgressEntry.id == bindparam("b_entry_id"))
    .values(
        reason=bindparam("b_reason"),
        counted=bindparam("b_counted"),
        user_goal_id=bindparam("b_goal_id"),
        updated_at=bindparam("now"),
    )
)


@dataclass(frozen=True)
class ProcessResult:
    reason: ProgressReason | None  # None: nothing to do (already processed, or unknown order)
    user_goal_id: uuid.UUID | None = None
    closed: bool = False
    reversed: bool = False


@dataclass
class _Goal:
    """The user's ACTIVE goal as this job has made it (written progress + `unwritten`)."""

    id: uuid.UUID
    user_id: uuid.UUID
    template_id: str
    conditions: GoalConditions
    target: int
    progress: int
    starts_at: datetime
    expires_at: datetime
    unwritten: int = 0  # counted in memory, not yet in the progress UPDATE


@dataclass
class _Job:
    """What one transaction has decided and not yet written."""

    session: AsyncSession
    now: datetime
    entries: list[dict[str, Any]] = field(default_factory=list)
    goals: dict[uuid.UUID, _Goal] = field(default_factory=dict)  # goals with unwritten counts
    observed: list[tuple[str, float | None]] = field(default_factory=list)

    async def flush(self) -> None:
        """Write the ledger rows and progress counts decided so far, and their events."""
        await _LEDGER.execute_many(self.session, self.entries)
        self.entries = []
        goals, self.goals = [g for g in self.goals.values() if g.unwritten], {}
        if not goals:
            return
        params = [
            {
                "b_goal_id": goal.id,
                "k": goal.unwritten,
                "expected": goal.progress - goal.unwritten,
                "now": self.now,
            }
            for goal in goals
        ]
        written = {row.id: row for row in await _ADVANCE.rows_many(self.session, params)}
        if len(written) != len(goals):
            # Only another writer of these goals without the user's lock could cause it.
            raise RuntimeError("a goal changed under the user's lock; retrying the job")
        for goal in goals:
            goal.unwritten = 0
            row = written[goal.id]
            done = row.status == UserGoalStatus.DONE.value
            kind = GoalEventKind.DONE if done else GoalEventKind.PROGRESS
            _event(self.session, goal, kind, row.progress, row.status, self.now)


async def process_pending(
    session: AsyncSession, user_ids: Sequence[uuid.UUID], *, now: datetime
) -> list[ProcessResult]:
    """Process every pending order of `user_ids`, each user's in order; safe to repeat."""
    locked = await lock_users(session, user_ids)
    if not locked:
        return []
    await queue.claim(session, locked)
    rows = await _LOAD_PENDING[queue.dialect(session)].rows(session, user_ids=locked)
    results = await _process(session, rows, now)
    await consumers.offer(session, rows, now=now)
    await queue.mark_processed(session, [(row.order_id, row.pending_at) for row in rows])
    return results


async def process_order(
    session: AsyncSession, order_id: str, user_id: uuid.UUID, *, now: datetime
) -> ProcessResult:
    """Apply one order to the user's goals; safe to run any number of times."""
    if not await lock_user(session, user_id):
        return ProcessResult(None)
    row = await _LOAD_ONE.one_or_none(session, order_id=order_id)
    if row is None:
        return ProcessResult(None)
    [result] = await _process(session, [row], now)
    await consumers.offer(session, [row], now=now)
    if row.pending_at is not None:
        await queue.mark_processed(session, [(row.order_id, row.pending_at)])
    return result


async def _process(
    session: AsyncSession, rows: Sequence[Any], now: datetime
) -> list[ProcessResult]:
    job = _Job(session, now)
    results: list[ProcessResult] = []
    goal: _Goal | None = None
    user: uuid.UUID | None = None
    for row in rows:
        if row.user_id != user:
            user, goal = row.user_id, _goal_of(row)
        await cashback.apply(session, row, now=now)
        result, goal = await _one(job, row, goal)
        results.append(result)
    await job.flush()
    _observe(job)
    return results


async def _one(job: _Job, row: Any, goal: _Goal | None) -> tuple[ProcessResult, _Goal | None]:
    if row.entry_id is None:
        return await _first_time(job, row, goal)
    if row.status in REVERSING:
        return await _reverse(job, row, goal), goal
    if row.entry_reason == ProgressReason.NOT_COMPLETE.value:
        return await _completed_later(job, row, goal)
    return ProcessResult(None), goal


def _goal_of(row: Any) -> _Goal | None:
    if row.goal_id is None:
        return None
    return _Goal(
        id=row.goal_id,
        user_id=row.user_id,
        template_id=row.template_id,
        conditions=snapshot_conditions(row.conditions),
        target=row.target,
        progress=row.progress,
        starts_at=row.starts_at,
        expires_at=row.expires_at,
    )


def _from_model(goal: UserGoal | None) -> _Goal | None:
    if goal is None:
        return None
    assert goal.starts_at is not None and goal.expires_at is not None
    return _Goal(
        id=goal.id,
        user_id=goal.user_id,
        template_id=goal.goal_id,
        conditions=snapshot_conditions(goal.conditions),
        target=goal.target,
        progress=goal.progress,
        starts_at=goal.starts_at,
        expires_at=goal.expires_at,
    )


def _facts(row: Any) -> OrderFacts:
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


def _match(row: Any, goal: _Goal | None) -> ProgressReason:
    if goal is None:
        return ProgressReason.NO_ACTIVE_GOAL
    return match_order(
        goal.conditions,
        _facts(row),
        goal_starts_at=goal.starts_at,
        goal_expires_at=goal.expires_at,
    )


async def _first_time(
    job: _Job, row: Any, goal: _Goal | None
) -> tuple[ProcessResult, _Goal | None]:
    if _ended_before(row, goal, job.now):
        assert goal is not None
        goal = await _expire_lazily(job, goal)
    reason = _match(row, goal)
    counted = reason is ProgressReason.COUNTED
    job.entries.append(
        {
            "id": uuid.uuid4(),
            "order_id": row.order_id,
            "user_id": row.user_id,
            "user_goal_id": goal.id if goal is not None else None,
            "reason": reason.value,
            "counted": counted,
            "now": job.now,
        }
    )
    _observed(job, row, reason)
    goal_id = goal.id if goal is not None else None
    if not counted:
        return ProcessResult(reason, goal_id), goal
    assert goal is not None
    return await _count(job, row, goal, reason)


def _ended_before(row: Any, goal: _Goal | None, now: datetime) -> bool:
    """The active goal's deadline passed before this order completed (and before now)."""
    return (
        goal is not None
        and row.completed_at is not None
        and goal.expires_at <= row.completed_at
        and goal.expires_at <= now
    )


async def _expire_lazily(job: _Job, goal: _Goal) -> _Goal | None:
    """End the overdue goal now instead of at the next `goals.expire` run, so the order counts
    towards the goal that follows it (whose period started at the deadline). Rare: the ORM."""
    await job.flush()
    model = await job.session.get(UserGoal, goal.id, populate_existing=True)
    assert model is not None and model.expires_at is not None
    mark_missed(job.session, model, job.now)
    await job.session.flush()
    return _from_model(await activate_next(job.session, goal.user_id, at=model.expires_at))


async def _count(
    job: _Job, row: Any, goal: _Goal, reason: ProgressReason
) -> tuple[ProcessResult, _Goal | None]:
    """Count the order in memory; the order that reaches the target closes the goal now."""
    goal.progress += 1
    goal.unwritten += 1
    job.goals[goal.id] = goal
    if goal.progress < goal.target:
        return ProcessResult(reason, goal.id), goal
    # The UPDATE that writes progress up to the target makes the goal DONE (`_ADVANCE`), and
    # `flush` fails the job if any goal it writes was not as this job read it.
    await job.flush()
    following = await _close(job, row, goal)
    return ProcessResult(reason, goal.id, closed=True), following


async def _close(job: _Job, row: Any, goal: _Goal) -> _Goal | None:
    """The goal reached its target: grant its bonus (finish job), start the next goal.

    The next goal's period starts when this one was achieved, i.e. at the completion of the
    order that closed it, so the surplus orders of a multi-order count towards it.
    """
    outbox.enqueue(job.session, "goals.finish", user_goal_id=str(goal.id))
    on_commit(job.session, GOALS_COMPLETED.inc)
    following = await activate_next(job.session, goal.user_id, at=min(row.completed_at, job.now))
    return _from_model(following)


async def _completed_later(
    job: _Job, row: Any, goal: _Goal | None
) -> tuple[ProcessResult, _Goal | None]:
    """An order first reported IN_PROGRESS is now COMPLETE: match it again."""
    reason = _match(row, goal)
    if reason is ProgressReason.NOT_COMPLETE:
        return ProcessResult(None), goal
    await _REMATCH_ENTRY.execute(
        job.session,
        b_entry_id=row.entry_id,
        b_reason=reason.value,
        b_counted=reason is ProgressReason.COUNTED,
        b_goal_id=goal.id if goal is not None else None,
        now=job.now,
    )
    _observed(job, row, reason)
    if reason is not ProgressReason.COUNTED:
        return ProcessResult(reason, goal.id if goal is not None else None), goal
    assert goal is not None
    return await _count(job, row, goal, reason)


async def _reverse(job: _Job, row: Any, goal: _Goal | None) -> ProcessResult:
    """A cancelled or refunded order gives its count back while its goal is still ACTIVE.

    After the goal is DONE the bonus stays, and so does the count.
    """
    if row.entry_reason != ProgressReason.COUNTED.value or row.entry_reversed_at is not None:
        return ProcessResult(None)
    await job.flush()
    retreated = await _RETREAT.one_or_none(job.session, b_goal_id=row.entry_goal_id, now=job.now)
    if retreated is None:  # the goal is no longer ACTIVE
        return ProcessResult(None, row.entry_goal_id)
    await _REVERSE_ENTRY.execute(job.session, b_entry_id=row.entry_id, now=job.now)
    if goal is not None and goal.id == row.entry_goal_id:
        goal.progress = retreated.progress
        _event(
            job.session,
            goal,
            GoalEventKind.REVERSED,
            retreated.progress,
            UserGoalStatus.ACTIVE.value,
            job.now,
        )
    return ProcessResult(ProgressReason.COUNTED, row.entry_goal_id, reversed=True)


def _event(
    session: AsyncSession,
    goal: _Goal,
    kind: GoalEventKind,
    current: int,
    status: str,
    now: datetime,
) -> None:
    goal_event(
        session,
        kind=kind,
        user_id=goal.user_id,
        user_goal_id=goal.id,
        template_id=goal.template_id or "",
        status=status,
        current=current,
        total=goal.target or 0,
        at=now,
    )


def _observed(job: _Job, row: Any, reason: ProgressReason) -> None:
    lag = (job.now - row.completed_at).total_seconds() if row.completed_at is not None else None
    job.observed.append((reason.value, lag))


def _observe(job: _Job) -> None:
    """One after-commit hook per job counts its orders."""
    observed = job.observed
    if not observed:
        return

    def count() -> None:
        for reason, lag in observed:
            GOAL_ORDERS_PROCESSED.labels(reason).inc()
            if lag is not None and lag >= 0:
                GOAL_PROCESSING_LAG.observe(lag)

    on_commit(job.session, count)
