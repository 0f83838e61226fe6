"""Operations' DataLoaders: dead letters, pings and audit log entries by id."""

from __future__ import annotations

from collections.abc import Sequence

from app.models.identity import AuditLog
from app.models.operations import JobFailure, JobPing
from app.services.operations import audit, jobs
from schema.loaders import ContextLoader


class JobFailureByIdLoader(ContextLoader[str, JobFailure | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[JobFailure | None]:
        return await jobs.failures_by_ids(self.session, keys)


class JobPingByIdLoader(ContextLoader[str, JobPing | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[JobPing | None]:
        return await jobs.pings_by_ids(self.session, keys)


class AuditLogEntryByIdLoader(ContextLoader[str, AuditLog | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[AuditLog | None]:
        return await audit.entries_by_ids(self.session, keys)
