"""The family domain's actors: a family's migration to passport, the passport cleanup after
an owner's account deletion, and the holds' sweeper (periodic).

`family.migrate` is scheduled through the outbox by `app.services.family.migration.schedule`
(at most one per family in flight). A transient failure puts the family back to PENDING and
the message is retried by Dramatiq after the migration's own backoff (`Retry(delay=…)`);
after FAMILY_MIGRATION_MAX_ATTEMPTS, or a failure retrying can't fix, the family is FAILED
and the message ends. A message that finds the family RUNNING under another run's live lease
retries once the lease is over (that run's worker may have died), and then finds it done.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

import dramatiq
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.integrations.passport.client import PassportClient
from app.integrations.passport.errors import PassportError
from app.models.base import utcnow
from app.models.family import MigrationState
from app.services.family import migration_job, rides
from app.settings import Settings
from jobs.broker import actor
from jobs.runtime import job_runtime, unit_of_work

Units = Callable[[], AbstractAsyncContextManager[AsyncSession]]
log = structlog.get_logger(__name__)
TIME_LIMIT_MS = 10 * 60_000
# A RUNNING migration whose worker died is claimed again once this passes (the time limit).
LEASE = timedelta(milliseconds=TIME_LIMIT_MS)
# A family held by another run is tried again this long after that run's lease ends.
LEASE_MARGIN = timedelta(seconds=5)


async def run_migration(
    units: Units, passport: PassportClient | None, settings: Settings, account_id: str
) -> MigrationState | timedelta | None:
    """One attempt at a family's migration: the state it reached, a delay to retry after,
    or None when there was nothing to do (done already, failed for good, or this run lost
    its claim).

    A family another run holds (RUNNING, its lease not over) is tried again once the lease
    ends: that run's worker may have died, and nothing else would pick the family up (its
    message is gone; app starts and plan B skip RUNNING families).
    """
    family_id = uuid.UUID(account_id)
    now = utcnow()
    async with units() as session:
        snapshot = await migration_job.claim(session, family_id, lease=LEASE, now=now)
        held = None
        if snapshot is None:
            held = await migration_job.lease_held_until(session, family_id, now=now)
    if snapshot is None:
        return None if held is None else held - now + LEASE_MARGIN
    try:
        if passport is None:
            raise migration_job.MigrationFailure("PASSPORT_OFF", permanent=True)
        linked = await migration_job.link_in_passport(passport, snapshot)
        links = migration_job.MovedLinks(
            settings.family_moved_owner_link, settings.family_moved_member_link
        )
        async with units() as session:
            return await migration_job.finish(session, snapshot, linked, links=links, now=utcnow())
    except migration_job.MigrationFailure as failure:
        if passport is not None and (failure.unlink or failure.orphaned):
            left = await migration_job.undo_in_passport(passport, failure)
            if left:
                log.warning(
                    "family.migration_undo_failed",
                    account_id=str(snapshot.account_id),
                    code=failure.code,
                    passport_ids=left,
                )
        return await _failed(units, settings, snapshot, failure)


async def _failed(
    units: Units,
    settings: Settings,
    snapshot: migration_job.Snapshot,
    failure: migration_job.MigrationFailure,
) -> MigrationState | timedelta | None:
    async with units() as session:
        state = await migration_job.record_failure(
            session,
            snapshot,
            failure,
            max_attempts=settings.family_migration_max_attempts,
            now=utcnow(),
        )
    log.warning(
        "family.migration_failed",
        account_id=str(snapshot.account_id),
        attempt=snapshot.attempt,
        code=failure.code,
        retry=state is MigrationState.PENDING,
        lost_claim=state is None,
    )
    if state is not MigrationState.PENDING:
        return state
    return migration_job.backoff(
        snapshot.attempt,
        base=timedelta(seconds=settings.family_migration_retry_base_seconds),
        cap=timedelta(seconds=settings.family_migration_retry_max_seconds),
    )


@actor("family.migrate", max_retries=1000, time_limit=TIME_LIMIT_MS)
async def migrate_job(account_id: str) -> None:
    """Migrate one family to passport (idempotent: a migrated family is skipped)."""
    runtime = job_runtime()
    outcome = await run_migration(unit_of_work, runtime.passport, runtime.settings, account_id)
    if isinstance(outcome, timedelta):
        raise dramatiq.Retry("passport failed; retrying", delay=int(outcome.total_seconds() * 1000))


@actor("family.delete_passport_family", max_retries=20, min_backoff=30_000, max_backoff=3_600_000)
async def delete_passport_family_job(passport_family_id: str) -> None:
    """Delete a passport family whose owner deleted their account (404 is done: idempotent)."""
    passport = job_runtime().passport
    if passport is None:
        log.warning("family.passport_cleanup_skipped", passport_family_id=passport_family_id)
        return
    try:
        await passport.delete_family(passport_family_id)
    except PassportError as exc:
        if exc.transient:
            raise
        log.warning(
            "family.passport_cleanup_failed",
            passport_family_id=passport_family_id,
            code=exc.code.value,
        )


@actor("family.expire_holds", max_retries=0, time_limit=5 * 60_000)
async def expire_holds_job() -> None:
    """Mark the holds past their expiry EXPIRED (periodic; they counted for nothing already)."""
    async with unit_of_work() as session:
        await rides.expire_holds(session, now=utcnow())


__all__ = ["delete_passport_family_job", "expire_holds_job", "migrate_job", "run_migration"]
