"""The notifier's actors: an event's handling, and the dispatcher (periodic and on demand).

`notifier.dispatch_due` runs every minute (SCHEDULES) and whenever handling queued an email
due now (deduplicated per second). It works batch by batch, each batch two units of work
around the network (see `app.services.notifier.dispatch`), until no due email is left or
its time budget is spent; several at once (workers, a manual run) share the queue safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.integrations.mail import MailBackend, mail_backend
from app.models.base import utcnow
from app.services.notifier import dispatch
from app.services.notifier.handling import handle_event
from app.settings import Settings
from jobs.broker import actor
from jobs.runtime import job_runtime, unit_of_work

Units = Callable[[], AbstractAsyncContextManager[AsyncSession]]
DISPATCH_BUDGET_SECONDS = 50.0  # below the minute between scheduled runs


@dataclass
class DispatchTotals:
    batches: int = 0
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0

    def add(
        self, batch: dispatch.Batch, outcomes: list[dispatch.Outcome], max_attempts: int
    ) -> None:
        self.batches += 1
        self.claimed += batch.claimed
        self.cancelled += batch.cancelled
        self.failed += batch.failed
        for outcome in outcomes:
            if outcome.error is None:
                self.sent += 1
            elif outcome.error.permanent or outcome.ready.attempt >= max_attempts:
                self.failed += 1
            else:
                self.retried += 1


def dispatch_config(settings: Settings) -> dispatch.DispatchConfig:
    return dispatch.DispatchConfig(
        batch_size=settings.notifier_batch_size,
        max_attempts=settings.notifier_max_attempts,
        retry_base=timedelta(seconds=settings.notifier_retry_base_seconds),
        retry_max=timedelta(seconds=settings.notifier_retry_max_seconds),
        lease=timedelta(seconds=settings.notifier_lease_seconds),
        sender=settings.mail_from,
        cabinet_url=settings.notifier_cabinet_url,
    )


async def _claim(units: Units, config: dispatch.DispatchConfig) -> dispatch.Batch:
    async with units() as session:
        return await dispatch.claim(session, config, now=utcnow())


async def _finish(
    units: Units,
    backend: MailBackend,
    config: dispatch.DispatchConfig,
    batch: dispatch.Batch,
    totals: DispatchTotals,
) -> None:
    """Send a claimed batch and record what happened."""
    outcomes = await dispatch.deliver(backend, batch.ready)
    if outcomes:
        async with units() as session:
            await dispatch.record(
                session, batch, outcomes, config, backend=backend.name, now=utcnow()
            )
    totals.add(batch, outcomes, config.max_attempts)


async def dispatch_batch(
    units: Units, backend: MailBackend, config: dispatch.DispatchConfig, totals: DispatchTotals
) -> int:
    """One batch: claim (and cancel what must not go), send, record. Returns the claimed."""
    batch = await _claim(units, config)
    await _finish(units, backend, config, batch, totals)
    return batch.claimed


async def dispatch_all(
    units: Units,
    backend: MailBackend,
    config: dispatch.DispatchConfig,
    *,
    budget_seconds: float = DISPATCH_BUDGET_SECONDS,
) -> DispatchTotals:
    """Batches until one comes back short or the budget is spent. The next batch is claimed
    (and rendered) while the current one is being sent, so the database work and the
    rendering overlap the SMTP round trips."""
    totals = DispatchTotals()
    deadline = time.monotonic() + budget_seconds
    claiming = asyncio.create_task(_claim(units, config))
    try:
        while True:
            batch = await claiming
            more = batch.claimed >= config.batch_size and time.monotonic() < deadline
            if more:
                claiming = asyncio.create_task(_claim(units, config))
            await _finish(units, backend, config, batch, totals)
            if not more:
                return totals
    finally:
        if not claiming.done():  # a failure while sending: the claim in flight is not used
            claiming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await claiming


@actor("notifier.handle_event")
async def handle_event_job(event_id: str) -> None:
    """Cancel what the event withdraws and schedule what it triggers. Idempotent by state
    (the event's `handled_at`, the queue's unique key)."""
    async with unit_of_work() as session:
        await handle_event(session, uuid.UUID(event_id))


@actor("notifier.dispatch_due", max_retries=0, time_limit=5 * 60_000)
async def dispatch_due_job() -> None:
    """Send the due emails. Safe to run several at once (rows are claimed)."""
    settings = job_runtime().settings
    await dispatch_all(unit_of_work, mail_backend(settings), dispatch_config(settings))


__all__ = ["dispatch_all", "dispatch_batch", "dispatch_due_job", "handle_event_job"]
