"""Rides count for STARTED promotions: the promotions consumer of the order stream.

It runs inside the order-processing job (`app.services.orders.consumers`), after goals, on
the same order rows and under the same user locks: a user's orders are processed one job at
a time, in completion order, so the counts read here can't change under it. On the hot path:
prebuilt statements, no ORM; a batch of users none of whom has a STARTED promotion costs
one statement, and one with promotions four (runs, ledger, new ledger rows, progress).

Rules (pure, `rules.ride_reason`): a complete ride, in the promotion's currency, of at least
the minimum amount, completed inside `[started_at, challenge_ends_at)`. One ledger row per
(run, order) says why a ride did or did not count. A ride first reported IN_PROGRESS is
looked at again when it completes. A cancelled or refunded ride gives its count back while
the run is STARTED; once COMPLETED the count (and the earned reward) stays. The ride that
reaches the target completes the run: `claim_ends_at` is then `claim_days` after the
processing time (the reward can't be claimed before the app can know about it).

Idempotent by state: the ledger is unique per (run, order), and the progress UPDATE is
guarded by the progress this job read (`progress = :expected`, status STARTED), which the
user's lock makes true; a mismatch fails the job loudly instead of miscounting.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, bindparam, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.lean import DIALECTS, HotStatement, one_of
from app.models.promotions import PromotionRide, PromotionUser, PromotionUserStatus, RideReason
from app.services.orders.facts import REVERSING, OrderKind, OrderStatus
from app.services.promotions import metrics
from app.services.promotions.rules import Ride, Terms, claim_deadline, ride_reason

STARTED = PromotionUserStatus.STARTED


_RUN_COLUMNS = (
    PromotionUser.id,
    PromotionUser.user_id,
    PromotionUser.progress,
    PromotionUser.target_rides,
    PromotionUser.min_ride_amount_minor,
    PromotionUser.currency,
    PromotionUser.claim_days,
    PromotionUser.started_at,
    PromotionUser.challenge_ends_at,
)
_RUNS = {
    d: HotStatement(
        select(*_RUN_COLUMNS).where(
            one_of(PromotionUser.user_id, "user_ids", d), PromotionUser.status == STARTED
        )
    )
    for d in DIALECTS
}
_LEDGER = {
    d: HotStatement(
        select(
            PromotionRide.id,
            PromotionRide.promotion_user_id,
            PromotionRide.order_id,
            PromotionRide.reason,
            PromotionRide.reversed_at,
        ).where(
            one_of(PromotionRide.promotion_user_id, "run_ids", d),
            one_of(PromotionRide.order_id, "order_ids", d),
        )
    )
    for d in DIALECTS
}
_RIDE = PromotionRide.__table__.c
_INSERT_RIDE = HotStatement(
    insert(PromotionRide).values(
        id=bindparam("id", type_=_RIDE["id"].type),
        promotion_user_id=bindparam("run_id", type_=_RIDE["promotion_user_id"].type),
        user_id=bindparam("user_id", type_=_RIDE["user_id"].type),
        order_id=bindparam("order_id", type_=_RIDE["order_id"].type),
        reason=bindparam("reason", type_=_RIDE["reason"].type),
        counted=bindparam("counted", type_=_RIDE["counted"].type),
        amount_minor=bindparam("amount_minor", type_=_RIDE["amount_minor"].type),
        currency=bindparam("currency", type_=_RIDE["currency"].type),
        ride_at=bindparam("ride_at", type_=_RIDE["ride_at"].type),
        reversed_at=bindparam("reversed_at", type_=_RIDE["reversed_at"].type),
        created_at=bindparam("now", type_=_RIDE["created_at"].type),
        updated_at=bindparam("now", type_=_RIDE["updated_at"].type),
    )
)
_UPDATE_RIDE = HotStatement(
    update(PromotionRide)
    .where(PromotionRide.id == bindparam("b_id"))
    .values(
        reason=bindparam("b_reason", type_=_RIDE["reason"].type),
        counted=bindparam("b_counted", type_=_RIDE["counted"].type),
        ride_at=bindparam("b_ride_at", type_=_RIDE["ride_at"].type),
        reversed_at=bindparam("b_reversed_at", type_=_RIDE["reversed_at"].type),
        updated_at=bindparam("now", type_=_RIDE["updated_at"].type),
    )
)
_RUN = PromotionUser.__table__.c
_NOW = bindparam("now", type_=_RUN["updated_at"].type)
_PROGRESS = bindparam("b_progress", type_=Integer())
_DONE = PromotionUser.target_rides <= _PROGRESS
_ADVANCE = HotStatement(
    update(PromotionUser)
    .where(
        and_(
            PromotionUser.id == bindparam("b_run_id"),
            PromotionUser.status == STARTED,
            PromotionUser.progress == bindparam("b_expected", type_=Integer()),
        )
    )
    .values(
        progress=_PROGRESS,
        status=case((_DONE, PromotionUserStatus.COMPLETED.value), else_=PromotionUser.status),
        completed_at=case((_DONE, _NOW), else_=PromotionUser.completed_at),
        claim_ends_at=case(
            (_DONE, bindparam("b_claim_ends_at", type_=_RUN["claim_ends_at"].type)),
            else_=PromotionUser.claim_ends_at,
        ),
        updated_at=_NOW,
    )
    .returning(PromotionUser.id, PromotionUser.status)
)


@dataclass
class _Run:
    row: Any
    progress: int
    read_progress: int
    completed: bool = False
    ledger: dict[str, Any] = field(default_factory=dict)  # order id -> its ledger row

    @property
    def terms(self) -> Terms:
        return Terms(
            self.row.min_ride_amount_minor,
            self.row.currency,
            self.row.started_at,
            self.row.challenge_ends_at,
        )


@dataclass
class _Batch:
    now: datetime
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[RideReason] = field(default_factory=list)


def _ride(order: Any) -> Ride:
    return Ride(
        is_ride=order.kind == OrderKind.RIDE.value,
        complete=order.status == OrderStatus.COMPLETE.value,
        amount_minor=order.price_minor,
        currency=order.currency,
        at=order.completed_at,
    )


async def consume(session: AsyncSession, orders: Sequence[Any], *, now: datetime) -> None:
    """Apply `orders` (rows with the order columns, each user's in order) to STARTED runs."""
    if not orders:
        return
    dialect = session.get_bind().dialect.name
    user_ids = list({order.user_id for order in orders})
    runs = {
        row.user_id: _Run(row, row.progress, row.progress)
        for row in await _RUNS[dialect].rows(session, user_ids=user_ids)
    }
    if not runs:
        return
    mine = [order for order in orders if order.user_id in runs]
    runs_by_id = {run.row.id: run for run in runs.values()}
    for row in await _LEDGER[dialect].rows(
        session, run_ids=list(runs_by_id), order_ids=list({order.order_id for order in mine})
    ):
        runs_by_id[row.promotion_user_id].ledger[row.order_id] = row
    batch = _Batch(now)
    for order in mine:
        _offer(batch, runs[order.user_id], order)
    await _INSERT_RIDE.execute_many(session, batch.inserts)
    await _UPDATE_RIDE.execute_many(session, batch.updates)
    await _write_progress(session, list(runs.values()), now)
    metrics.rides_seen(session, batch.reasons)


def _offer(batch: _Batch, run: _Run, order: Any) -> None:
    entry = run.ledger.get(order.order_id)
    if entry is None:
        _first_time(batch, run, order)
    elif order.status in REVERSING:
        _reverse(batch, run, order, entry)
    elif entry.reason == RideReason.NOT_COMPLETE and order.status == OrderStatus.COMPLETE.value:
        _completed_later(batch, run, order, entry)


def _decide(run: _Run, order: Any) -> RideReason:
    reason = ride_reason(_ride(order), run.terms)
    if reason is RideReason.COUNTED and run.completed:
        return RideReason.TARGET_REACHED
    return reason


def _count(run: _Run, reason: RideReason) -> None:
    if reason is RideReason.COUNTED:
        run.progress += 1
        run.completed = run.progress >= run.row.target_rides


def _first_time(batch: _Batch, run: _Run, order: Any) -> None:
    reason = _decide(run, order)
    _count(run, reason)
    batch.inserts.append(
        {
            "id": uuid.uuid4(),
            "run_id": run.row.id,
            "user_id": order.user_id,
            "order_id": order.order_id,
            "reason": reason.value,
            "counted": reason is RideReason.COUNTED,
            "amount_minor": order.price_minor,
            "currency": order.currency,
            "ride_at": order.completed_at,
            "reversed_at": None,
            "now": batch.now,
        }
    )
    batch.reasons.append(reason)


def _completed_later(batch: _Batch, run: _Run, order: Any, entry: Any) -> None:
    reason = _decide(run, order)
    _count(run, reason)
    batch.updates.append(_ledger_update(batch, entry, reason, order.completed_at, None))
    batch.reasons.append(reason)


def _reverse(batch: _Batch, run: _Run, order: Any, entry: Any) -> None:
    if entry.reason != RideReason.COUNTED or entry.reversed_at is not None or run.completed:
        return
    run.progress -= 1
    batch.updates.append(
        _ledger_update(batch, entry, RideReason.COUNTED, order.completed_at, batch.now)
    )


def _ledger_update(
    batch: _Batch, entry: Any, reason: RideReason, ride_at: datetime | None, reversed_at: Any
) -> dict[str, Any]:
    return {
        "b_id": entry.id,
        "b_reason": reason.value,
        "b_counted": reason is RideReason.COUNTED,
        "b_ride_at": ride_at,
        "b_reversed_at": reversed_at,
        "now": batch.now,
    }


async def _write_progress(session: AsyncSession, runs: Sequence[_Run], now: datetime) -> None:
    changed = [run for run in runs if run.progress != run.read_progress]
    params = [
        {
            "b_run_id": run.row.id,
            "b_expected": run.read_progress,
            "b_progress": run.progress,
            "b_claim_ends_at": claim_deadline(now, run.row.claim_days),
            "now": now,
        }
        for run in changed
    ]
    written = await _ADVANCE.rows_many(session, params)
    if len(written) != len(changed):
        raise RuntimeError("a promotion run changed under the user's lock; retrying the job")
    for row in written:
        if row.status == PromotionUserStatus.COMPLETED.value:
            metrics.completed(session)
