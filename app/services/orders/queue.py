"""The order rows are the queue: how recorded orders reach their consumer, with few messages.

Decision (issue 12): instead of one outbox job and one broker message per order, recording
marks the order pending (`goal_orders.pending_at`) and schedules one job per request for the
users that have no job scheduled yet; the job processes each of its users' pending orders,
in order, in one transaction. The protocol, on PostgreSQL (READ COMMITTED):

- **Recording** (`recording.py`), in the request's transaction: insert the order (or change
  its status) with `pending_at = now`, then upsert the user's `order_queue` row with
  `ON CONFLICT DO UPDATE`, which holds the row's lock until commit. A job is scheduled only
  when the upsert *created* the row (`queued_at` comes back as this request's `now`) or found
  it older than `STALE_AFTER` (the job it stood for failed for good: a dead letter; so a
  user's orders are never stuck behind it for more than that).
- **The consumer's job**, in its transaction: lock the users (`FOR NO KEY UPDATE`), delete
  their queue rows (`claim`), then read their pending orders, process them and clear each
  marker only if it still holds the value read (`mark_processed`; `SKIP LOCKED`, so it never
  waits for a request that is changing the order).
- Why nothing is missed: a request whose upsert came first holds the queue row until it
  commits, so the job's DELETE waits and its read (a new snapshot) sees the order. A request
  whose upsert came after the DELETE waits for the job to commit, then finds no row, creates
  it and schedules a new job. A request that found the row and scheduled nothing holds its
  lock until commit, so the DELETE that consumes the row comes after that commit. A report
  that lands between the read and the clear keeps its marker (another `pending_at`), and its
  request scheduled a job (the row was gone).
- Why nothing is done twice: the consumer is idempotent by state (the goals ledger is
  unique per order and read under the user's lock), so a duplicate delivery, a job for a
  user with nothing pending, or an old per-order `goals.process_order` message is harmless.
- SQLite: every unit of work holds the database's write lock from its first statement
  (`BEGIN IMMEDIATE`), so the steps above simply take turns.
- A job whose processing keeps failing rolls back its DELETE: the queue row stays, and new
  orders of that user schedule nothing until the row is `STALE_AFTER` old (15 minutes, the
  outbox's redelivery period); then the next report schedules a job again. Orders of other
  users are not affected (each job holds at most `JOB_USERS` users).

One consumer today (`CONSUMER`): the marker and the queue are its own. A second consumer of
the order stream gets its own marker column and queue table (or a cursor table).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.lean import DIALECTS, HotStatement, one_of
from app.models.orders import Order, OrderQueue

CONSUMER = "goals.process_orders"  # called with user_ids=[...]
STALE_AFTER = timedelta(minutes=15)
JOB_USERS = 100  # users per job: a 500-order batch of 500 users is 5 jobs, run in parallel


def _claim(condition: Any) -> HotStatement:
    # The rows are locked in user order (the subquery's ORDER BY … FOR UPDATE), the order
    # recording takes them in: a job and a request never wait for each other in a cycle.
    ordered = (
        select(OrderQueue.user_id).where(condition).order_by(OrderQueue.user_id).with_for_update()
    )
    return HotStatement(delete(OrderQueue).where(OrderQueue.user_id.in_(ordered.scalar_subquery())))


_CLAIM = {d: _claim(one_of(OrderQueue.user_id, "user_ids", d)) for d in DIALECTS}

# Cleared only if the marker is still the one read, and never waiting for a request that is
# changing the order right now (that request scheduled its own job).
_MARK_PROCESSED = HotStatement(
    update(Order)
    .where(
        Order.order_id
        == select(Order.order_id)
        .where(
            Order.order_id == bindparam("b_order_id"),
            Order.pending_at == bindparam("read_at"),
        )
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    .values(pending_at=None)
)


def dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def claim(session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> None:
    """Consume the users' queue rows; call under the users' locks, before reading orders."""
    await _CLAIM[dialect(session)].execute(session, user_ids=list(user_ids))


async def mark_processed(session: AsyncSession, processed: Sequence[tuple[str, datetime]]) -> None:
    """Clear the pending markers of (order id, the `pending_at` that was read)."""
    await _MARK_PROCESSED.execute_many(
        session, [{"b_order_id": order_id, "read_at": at} for order_id, at in processed]
    )


def job_batches(user_ids: Sequence[uuid.UUID]) -> list[list[str]]:
    """The `user_ids` arguments of the jobs for these users: sorted, `JOB_USERS` a job."""
    ordered = sorted(set(user_ids))
    return [
        [str(user_id) for user_id in ordered[start : start + JOB_USERS]]
        for start in range(0, len(ordered), JOB_USERS)
    ]


def dedupe_key(user_ids: Sequence[str], queued_at: datetime) -> str:
    """One job per queue generation: the first user's queue row created at `queued_at`."""
    return f"{CONSUMER}:{user_ids[0]}:{queued_at.isoformat()}"
