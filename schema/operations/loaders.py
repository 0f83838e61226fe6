"""Operations' DataLoaders: dead letters and pings by id."""

from __future__ import annotations

from collections.abc import Sequence

from app.models.operations import JobFailure, JobPing
from app.services.operations import jobs
from schema.loaders import ContextLoader


class JobFailureByIdLoader(ContextLoader[str, JobFailure | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[JobFailure | None]:
        return await jobs.failures_by_ids(self.session, keys)


class JobPingByIdLoader(ContextLoader[str, JobPing | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[JobPing | None]:
        return await jobs.pings_by_ids(self.session, keys)
