"""The migration of a family to passport (SPEC §5): who migrates, scheduling, plan B, the
admin's view; the job's own steps are `migration_job`.

State machine per family (`family_migrations`): PENDING → RUNNING → DONE | PARTIAL | FAILED.
- **Scheduling** (`schedule`) is one `INSERT … ON CONFLICT DO UPDATE … WHERE state = FAILED
  AND finished long enough ago`: a family gets a row once; concurrent triggers race on the
  primary key and only the one that wrote enqueues the job (in the same transaction, through
  the outbox). PENDING, RUNNING, DONE and PARTIAL schedule nothing, so at most one job is in
  flight per family and nothing is scheduled twice; a FAILED family is scheduled again by its
  owner's next app start after `FAMILY_MIGRATION_COOLDOWN_SECONDS`.
- **The job** (jobs/family.py, its steps in `migration_job`): claim, link in passport, finish;
  nothing is half-linked. A member whose phone has no passport account stays local as
  NO_PORTAL_ACCOUNT, one passport won't take as REFUSED; the owner is told who.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.models.family import (
    FamilyAccount,
    FamilyMigration,
    MigrationState,
)
from app.outbox import enqueue
from app.services.errors import DomainError
from app.services.family import metrics
from app.services.family.codes import MigrationErrorCode
from app.services.family.rollout import in_rollout
from app.settings import Settings

MIGRATE_ACTOR = "family.migrate"
LIVE = (MigrationState.PENDING, MigrationState.RUNNING)
TERMINAL_OK = (MigrationState.DONE, MigrationState.PARTIAL)


def migration_on(settings: Settings) -> bool:
    return settings.passport_configured


def eligible(settings: Settings, account_id: uuid.UUID, owner_id: uuid.UUID) -> bool:
    return migration_on(settings) and in_rollout(
        account_id,
        owner_id,
        percent=settings.family_migration_percent,
        allowlist=frozenset(settings.family_migration_allowlist),
    )


async def schedule(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    trigger: str,
    cooldown: timedelta,
    now: datetime,
) -> bool:
    """Schedule the family's migration unless one is in flight, done, or failed recently."""
    table = FamilyMigration.__table__
    statement = upsert_insert(session, FamilyMigration).values(
        account_id=account_id,
        state=MigrationState.PENDING,
        attempts=0,
        trigger=trigger,
        scheduled_at=now,
        created_at=now,
        updated_at=now,
    )
    upsert = statement.on_conflict_do_update(
        index_elements=["account_id"],
        set_={
            "state": MigrationState.PENDING,
            "attempts": 0,
            "trigger": trigger,
            "scheduled_at": now,
            "started_at": None,
            "last_error": None,
            "finished_at": None,
            "lease_until": None,
            "updated_at": now,
        },
        where=and_(
            table.c.state == MigrationState.FAILED,
            table.c.finished_at <= now - cooldown,
        ),
    ).returning(FamilyMigration.account_id)
    scheduled = (await session.execute(upsert)).first() is not None
    if scheduled:
        enqueue(session, MIGRATE_ACTOR, account_id=str(account_id))
        metrics.migration_reached(MigrationState.PENDING.value)
    return scheduled


async def schedule_for_owner(
    session: AsyncSession, user_id: uuid.UUID, *, settings: Settings, now: datetime
) -> bool:
    """The app-start trigger: the caller owns a family not migrated yet, in the rollout."""
    if not migration_on(settings):
        return False
    owned = (
        await session.execute(
            select(FamilyAccount.id, FamilyMigration.state)
            .outerjoin(FamilyMigration, FamilyMigration.account_id == FamilyAccount.id)
            .where(FamilyAccount.owner_id == user_id, FamilyAccount.passport_family_id.is_(None))
        )
    ).one_or_none()
    if owned is None or owned.state in (*LIVE, *TERMINAL_OK):
        return False
    if not eligible(settings, owned.id, user_id):
        return False
    cooldown = timedelta(seconds=settings.family_migration_cooldown_seconds)
    return await schedule(session, owned.id, trigger="APP", cooldown=cooldown, now=now)


# --- bulk (plan B) and the admin's view -------------------------------------------------


@dataclass(frozen=True, slots=True)
class BulkReport:
    examined: int
    eligible: int
    scheduled: int
    next_after: uuid.UUID | None  # the keyset cursor of the next batch; None: the last one


async def bulk_batch(
    session: AsyncSession,
    *,
    settings: Settings,
    after: uuid.UUID | None,
    batch_size: int,
    dry_run: bool,
    now: datetime,
) -> BulkReport:
    """One batch of plan B: schedule every eligible, unmigrated family (none with dry_run).

    Eligible: in the rollout, never scheduled or FAILED longer than the cooldown ago, so a
    dry run counts exactly the families the real run schedules.
    """
    query = (
        select(
            FamilyAccount.id,
            FamilyAccount.owner_id,
            FamilyMigration.state,
            FamilyMigration.finished_at,
        )
        .outerjoin(FamilyMigration, FamilyMigration.account_id == FamilyAccount.id)
        .where(FamilyAccount.passport_family_id.is_(None))
        .order_by(FamilyAccount.id)
        .limit(batch_size)
    )
    if after is not None:
        query = query.where(FamilyAccount.id > after)
    rows: Sequence[Any] = (await session.execute(query)).all()
    cooldown = timedelta(seconds=settings.family_migration_cooldown_seconds)
    chosen = [
        row
        for row in rows
        if _due(row.state, row.finished_at, now - cooldown)
        and eligible(settings, row.id, row.owner_id)
    ]
    scheduled = 0
    if not dry_run:
        for row in chosen:
            scheduled += await schedule(session, row.id, trigger="BULK", cooldown=cooldown, now=now)
    last = rows[-1].id if len(rows) == batch_size else None
    return BulkReport(len(rows), len(chosen), scheduled, last)


def _due(state: MigrationState | None, finished_at: datetime | None, failed_by: datetime) -> bool:
    """Whether `schedule` would take the family: no migration yet, or one FAILED by then."""
    if state is None:
        return True
    return state is MigrationState.FAILED and finished_at is not None and finished_at <= failed_by


async def list_migrations(
    session: AsyncSession, *, state: MigrationState | None, limit: int
) -> list[FamilyMigration]:
    """The newest migrations (of one state), for admins."""
    query = select(FamilyMigration).order_by(
        FamilyMigration.scheduled_at.desc(), FamilyMigration.account_id
    )
    if state is not None:
        query = query.where(FamilyMigration.state == state)
    return list((await session.scalars(query.limit(limit))).all())


async def counts_by_state(session: AsyncSession) -> dict[MigrationState, int]:
    rows = await session.execute(
        select(FamilyMigration.state, func.count()).group_by(FamilyMigration.state)
    )
    return {state: int(count) for state, count in rows}


async def start_by_admin(
    session: AsyncSession, account_id: uuid.UUID, *, settings: Settings, now: datetime
) -> FamilyMigration:
    """Schedule one family now, whatever the rollout says (not while in flight or done)."""
    if not migration_on(settings):
        raise DomainError(
            MigrationErrorCode.PASSPORT_OFF, "No passport is configured: migration is off.", None
        )
    account = (
        await session.execute(
            select(FamilyAccount.passport_family_id).where(FamilyAccount.id == account_id)
        )
    ).one_or_none()
    if account is None:
        raise DomainError(MigrationErrorCode.NOT_FOUND, "No such family.", "accountId")
    if account.passport_family_id is not None:
        raise DomainError(MigrationErrorCode.ALREADY_MIGRATED, "Migrated already.", "accountId")
    if not await schedule(session, account_id, trigger="ADMIN", cooldown=timedelta(0), now=now):
        raise DomainError(
            MigrationErrorCode.IN_FLIGHT, "Its migration is scheduled or running.", "accountId"
        )
    found = await session.get(FamilyMigration, account_id, populate_existing=True)
    assert found is not None
    return found
