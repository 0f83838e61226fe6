"""Periodic jobs of the promocodes domain."""

from __future__ import annotations

from app.services.promocodes.purchases import release_stale_reservations
from jobs.broker import actor
from jobs.runtime import job_runtime, unit_of_work


@actor("promocodes.release_stale_reservations", max_retries=0, time_limit=5 * 60_000)
async def release_stale() -> None:
    """Release reservations of abandoned purchases, in batches until none is left.

    Idempotent by construction: only RESERVED uses past their TTL are taken, under
    `FOR UPDATE SKIP LOCKED`. No retries: the next tick runs again.
    """
    job = job_runtime()
    while True:
        async with unit_of_work() as session:
            released = await release_stale_reservations(
                session, batch_size=job.settings.outbox_batch_size
            )
        if released < job.settings.outbox_batch_size:
            return
