"""The promotions domain's actors: storing expiries and writing reminders (periodic).

Rides are counted by the order-processing job (`goals.process_orders`, which offers every
order to `app.services.orders.consumers`), not by an actor of this domain.
"""

from __future__ import annotations

from datetime import timedelta

from app.models.base import utcnow
from app.services.promotions.expiry import expire_due, remind_due
from jobs.broker import actor
from jobs.runtime import job_runtime, unit_of_work


@actor("promotions.expire", max_retries=0, time_limit=5 * 60_000)
async def expire_job() -> None:
    """Store EXPIRED / REWARD_EXPIRED for runs past their deadlines, batch by batch."""
    settings = job_runtime().settings
    grace = timedelta(seconds=settings.promotions_expiry_grace_seconds)
    while True:
        async with unit_of_work() as session:
            moved = await expire_due(
                session, now=utcnow(), grace=grace, batch_size=settings.promotions_batch_size
            )
        if moved == 0:
            return


@actor("promotions.remind", max_retries=0, time_limit=5 * 60_000)
async def remind_job() -> None:
    """Remind users of deadlines within PROMOTIONS_REMINDER_BEFORE_HOURS."""
    settings = job_runtime().settings
    if settings.promotions_reminder_before_hours <= 0:
        return
    before = timedelta(hours=settings.promotions_reminder_before_hours)
    while True:
        async with unit_of_work() as session:
            reminded = await remind_due(
                session, now=utcnow(), before=before, batch_size=settings.promotions_batch_size
            )
        if reminded == 0:
            return


__all__ = ["expire_job", "remind_job"]
