"""Family accounts, admin side: each family's migration state, one family's migration, and
plan B (the bulk migration in batches, with a dry run). ADMIN only."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.base import utcnow
from app.models.family import FamilyMigration as MigrationRow
from app.models.family import MigrationState
from app.models.identity import Role
from app.services.errors import DomainError
from app.services.family import migration
from app.services.family.codes import MigrationErrorCode
from schema.base import decode_global_id
from schema.context import Context
from schema.errors import payload_errors
from schema.family.errors import FamilyMigrationError
from schema.family.inputs import (
    FamilyMigration,
    FamilyMigrationBulkInput,
    FamilyMigrationBulkPayload,
    FamilyMigrationStartPayload,
)
from schema.family.types import account_uuid
from schema.permissions import require

InfoT = Info[Context, Any]
MAX_LIST = 100


def _global(account_id: uuid.UUID) -> strawberry.ID:
    return strawberry.ID(relay.to_base64("FamilyAccount", str(account_id)))


def migration_of(row: MigrationRow) -> FamilyMigration:
    return FamilyMigration(
        account_id=_global(row.account_id),
        state=row.state,
        attempts=row.attempts,
        last_error=row.last_error,
        trigger=row.trigger,
        scheduled_at=row.scheduled_at,
        finished_at=row.finished_at,
    )


@strawberry.type(description="How many families are in each migration state.")
class FamilyMigrationCount:
    state: MigrationState
    count: int


@strawberry.input(description="The family to migrate now.")
class FamilyMigrationStartInput:
    account_id: strawberry.ID


@strawberry.type
class FamilyAdminQuery:
    @strawberry.field(description="The newest migrations, of one state if given. ADMIN only.")
    async def family_migrations(
        self, info: InfoT, state: MigrationState | None = None, first: int = 50
    ) -> list[FamilyMigration]:
        await require(info, Role.ADMIN)
        rows = await migration.list_migrations(
            info.context.session, state=state, limit=max(0, min(first, MAX_LIST))
        )
        return [migration_of(row) for row in rows]

    @strawberry.field(description="Families per migration state. ADMIN only.")
    async def family_migration_counts(self, info: InfoT) -> list[FamilyMigrationCount]:
        await require(info, Role.ADMIN)
        counts = await migration.counts_by_state(info.context.session)
        return [FamilyMigrationCount(state=s, count=counts.get(s, 0)) for s in MigrationState]


def _bulk_after(value: strawberry.ID | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return decode_global_id(value, "FamilyAccount")
    except ValueError as exc:
        raise DomainError(MigrationErrorCode.NOT_FOUND, "Not a FamilyAccount id.", "after") from exc


async def _bulk(info: InfoT, data: FamilyMigrationBulkInput) -> FamilyMigrationBulkPayload:
    await require(info, Role.ADMIN)
    settings = info.context.settings
    try:
        if not migration.migration_on(settings):
            raise DomainError(MigrationErrorCode.PASSPORT_OFF, "Migration is off.", None)
        batch_size = (
            settings.family_migration_batch_size if data.batch_size is None else data.batch_size
        )
        if not 1 <= batch_size <= 10_000:
            raise DomainError(MigrationErrorCode.INVALID_LIMIT, "1-10,000.", "batchSize")
        report = await migration.bulk_batch(
            info.context.session,
            settings=settings,
            after=_bulk_after(data.after),
            batch_size=batch_size,
            dry_run=data.dry_run,
            now=utcnow(),
        )
    except DomainError as exc:
        return FamilyMigrationBulkPayload(errors=payload_errors(FamilyMigrationError, exc))
    return FamilyMigrationBulkPayload(
        examined=report.examined,
        eligible=report.eligible,
        scheduled=report.scheduled,
        next_after=_global(report.next_after) if report.next_after else None,
        errors=[],
    )


async def _start(info: InfoT, data: FamilyMigrationStartInput) -> FamilyMigrationStartPayload:
    await require(info, Role.ADMIN)
    try:
        try:
            account_id = account_uuid(str(data.account_id))
        except ValueError as exc:
            raise DomainError(
                MigrationErrorCode.NOT_FOUND, "Not a family id.", "accountId"
            ) from exc
        row = await migration.start_by_admin(
            info.context.session, account_id, settings=info.context.settings, now=utcnow()
        )
    except DomainError as exc:
        return FamilyMigrationStartPayload(errors=payload_errors(FamilyMigrationError, exc))
    return FamilyMigrationStartPayload(migration=migration_of(row), errors=[])


@strawberry.type
class FamilyAdminMutation:
    @strawberry.mutation(
        description=(
            "Plan B: schedule the migration of one batch of eligible, unmigrated families "
            "(keyset by id: pass `nextAfter` as `after` to go on); `dryRun` counts only."
        )
    )
    async def family_migration_bulk(
        self, info: InfoT, input: FamilyMigrationBulkInput
    ) -> FamilyMigrationBulkPayload:
        return await _bulk(info, input)

    @strawberry.mutation(description="Schedule one family's migration now, whatever the rollout.")
    async def family_migration_start(
        self, info: InfoT, input: FamilyMigrationStartInput
    ) -> FamilyMigrationStartPayload:
        return await _start(info, input)
