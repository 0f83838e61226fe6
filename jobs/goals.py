"""The goals domain's actors: order processing, finishing a goal, expiry and reminders."""

from __future__ import annotations

import uuid
from datetime import timedelta

from app.models.base import utcnow
from app.services.goals.expiry import expire_due, remind_due
from app.services.goals.granting import finish_goal
from app.services.goals.processing import process_order, process_pending
from jobs.broker import actor
from jobs.runtime import job_runtime, unit_of_work


@actor("goals.process_orders")
async def process_orders_job(user_ids: list[str]) -> None:
    """Process the pending orders of these users (one recording request's users that had no
    job scheduled), each user's in order, in one transaction. Idempotent by state."""
    async with unit_of_work() as session:
        await process_pending(session, [uuid.UUID(u) for u in user_ids], now=utcnow())


@actor("goals.process_order")
async def process_order_job(order_id: str, user_id: str) -> None:
    """One order (messages written before orders became their own queue, migration 0006).
    Idempotent by state (see processing)."""
    async with unit_of_work() as session:
        await process_order(session, order_id, uuid.UUID(user_id), now=utcnow())


@actor("goals.finish")
async def finish_job(user_goal_id: str) -> None:
    """Grant a DONE goal's bonus once and create the achievement. Idempotent by state."""
    async with unit_of_work() as session:
        await finish_goal(session, uuid.UUID(user_goal_id), now=utcnow())


@actor("goals.expire", max_retries=0, time_limit=5 * 60_000)
async def expire_job() -> None:
    """Mark overdue ACTIVE goals MISSED and activate the next, in batches until none is left."""
    settings = job_runtime().settings
    grace = timedelta(seconds=settings.goals_expiry_grace_seconds)
    while True:
        async with unit_of_work() as session:
            expired = await expire_due(
                session, now=utcnow(), grace=grace, batch_size=settings.goals_batch_size
            )
        if expired < settings.goals_batch_size:
            return


@actor("goals.remind", max_retries=0, time_limit=5 * 60_000)
async def remind_job() -> None:
    """Remind users of goals expiring within GOALS_REMINDER_BEFORE_HOURS."""
    settings = job_runtime().settings
    if settings.goals_reminder_before_hours <= 0:
        return
    before = timedelta(hours=settings.goals_reminder_before_hours)
    while True:
        async with unit_of_work() as session:
            reminded = await remind_due(
                session, now=utcnow(), before=before, batch_size=settings.goals_batch_size
            )
        if reminded < settings.goals_batch_size:
            return


__all__ = ["expire_job", "finish_job", "process_order_job", "process_orders_job", "remind_job"]
