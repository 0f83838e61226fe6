"""The family domain's commands: plan B's bulk migration (`engage family migrate`) and the
passport double for trying migration locally (`engage passport-double`)."""

from __future__ import annotations

import uuid

from app.db import create_engine, create_session_factory
from app.models.base import utcnow
from app.services.family.migration import BulkReport, bulk_batch, migration_on
from app.settings import Settings
from app.uow import unit_of_work


async def migrate_command(settings: Settings, *, dry_run: bool, batch_size: int) -> int:
    """Schedule every eligible, unmigrated family's migration, batch by batch (one unit of
    work each: a crash loses at most the batch in hand, and a rerun skips what was
    scheduled). The jobs are relayed by the outbox sweeper of the running service."""
    if not migration_on(settings):
        print("migration is off: set PASSPORT_URL (and the rollout: FAMILY_MIGRATION_PERCENT)")
        return 2
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    totals = BulkReport(0, 0, 0, None)
    after: uuid.UUID | None = None
    try:
        while True:
            async with unit_of_work(factory) as session:
                report = await bulk_batch(
                    session,
                    settings=settings,
                    after=after,
                    batch_size=batch_size,
                    dry_run=dry_run,
                    now=utcnow(),
                )
            totals = BulkReport(
                totals.examined + report.examined,
                totals.eligible + report.eligible,
                totals.scheduled + report.scheduled,
                None,
            )
            print(
                f"batch: examined {report.examined}, eligible {report.eligible}, "
                f"scheduled {report.scheduled}"
            )
            if report.next_after is None:
                break
            after = report.next_after
    finally:
        await engine.dispose()
    verb = "would schedule" if dry_run else "scheduled"
    print(
        f"{totals.examined} unmigrated families examined, {totals.eligible} eligible, "
        f"{verb} {totals.eligible if dry_run else totals.scheduled}"
    )
    return 0
