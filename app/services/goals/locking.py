"""The user lock: what serialises every change to one user's goals.

Decision: every step that changes a user's goals (order processing, assignment, expiry,
activation of the next goal) first takes the user's row lock with `lock_user`, and does its
reads after it. Concurrent orders, assignments and expiry runs for one user therefore take
turns, and each sees what the previous holder committed (READ COMMITTED gives every
statement a new snapshot). The partial unique index on ACTIVE goals
(`uq_user_goals_one_active`) is the database's backstop should a step forget the lock.

- The lock is the user row's `FOR NO KEY UPDATE`: it does not conflict with the KEY SHARE
  locks foreign keys take, so rows referencing the user (orders, ledger rows, outbox rows)
  can still be written by others meanwhile.
- Why the user row and not the ACTIVE goal's row: a waiting step would miss a goal the
  previous holder activated (that row did not match `status = 'ACTIVE'` in its snapshot).
- Batch steps (a CSV upload, an expiry batch) lock their users one after another in one
  transaction and hold every lock until commit. Order processing (`goals.process_orders`)
  locks its users with one statement, in id order (`lock_users`).
- SQLite ignores `FOR … UPDATE`. There every unit of work begins `BEGIN IMMEDIATE` and
  holds the database's write lock from its first statement to its end (`app.db`), so steps
  for one user (indeed all writing steps) take turns, and each reads after the previous one
  committed: the same guarantee, coarser. The other goals locks rely on this too: the user
  goal's row lock in `granting.finish_goal`, `get_template(lock=True)`, and the expiry
  batch's `SKIP LOCKED` (on SQLite the batch simply waits for the lock).
- Granting a bonus (`granting.finish_goal`) locks the user goal's row instead: it changes
  that goal only and nothing about which goal is active.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.lean import DIALECTS, HotStatement, one_of
from app.models.identity import User, UserStatus

_LOCK_USER = HotStatement(
    select(User.status).where(User.id == bindparam("user_id")).with_for_update(key_share=True)
)


async def lock_user(session: AsyncSession, user_id: uuid.UUID) -> UserStatus | None:
    """Take the user's row lock for this transaction; the user's status, None if no such user."""
    status: UserStatus | None = await _LOCK_USER.scalar(session, user_id=user_id)
    return status


_LOCK_USERS = {
    d: HotStatement(
        select(User.id)
        .where(one_of(User.id, "user_ids", d))
        .order_by(User.id)
        # SQLite ignores it: its unit of work holds the write lock
        .with_for_update(key_share=True)
    )
    for d in DIALECTS
}


async def lock_users(session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Take several users' row locks in one statement, in id order (so two batches never
    deadlock each other); the ids of the users that exist."""
    rows = await _LOCK_USERS[session.get_bind().dialect.name].rows(
        session, user_ids=sorted(set(user_ids))
    )
    return [row.id for row in rows]
