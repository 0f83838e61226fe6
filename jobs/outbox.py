"""Periodic upkeep of the outbox: republish what the relay missed, drop old sent rows."""

from __future__ import annotations

from datetime import timedelta

from jobs.broker import actor
from jobs.runtime import job_runtime


@actor("outbox.sweep", max_retries=0, time_limit=5 * 60_000)
async def sweep() -> None:
    """Publish rows committed but never relayed (the process died between commit and
    publish), and again those the broker accepted but lost (no worker finished them).

    No retries: the next tick sweeps again.
    """
    job = job_runtime()
    settings = job.settings
    await job.relay.sweep(
        timedelta(seconds=settings.outbox_sweep_grace_seconds), settings.outbox_batch_size
    )
    await job.relay.redeliver(
        timedelta(seconds=settings.outbox_redeliver_after_seconds),
        settings.outbox_max_publishes,
        settings.outbox_batch_size,
    )


@actor("outbox.cleanup", max_retries=0, time_limit=15 * 60_000)
async def cleanup() -> None:
    job = job_runtime()
    await job.relay.cleanup(timedelta(hours=job.settings.outbox_retention_hours))
