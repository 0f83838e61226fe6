"""The notifier's DataLoaders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.models.notifier import CorpClient, DeliveryAttempt, QueuedEmail
from app.services.notifier import reading
from schema.loaders import ContextLoader


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class EmailByIdLoader(ContextLoader[str, QueuedEmail | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[QueuedEmail | None]:
        ids = [_uuid(key) for key in keys]
        found = await reading.emails_by_ids(self.session, [i for i in ids if i])
        return [found.get(i) if i else None for i in ids]


class AttemptsByEmailLoader(ContextLoader[uuid.UUID, list[DeliveryAttempt]]):
    async def batch_load(self, keys: Sequence[uuid.UUID]) -> Sequence[list[DeliveryAttempt]]:
        found = await reading.attempts_by_email(self.session, keys)
        return [found.get(key, []) for key in keys]


class ResendsByEmailLoader(ContextLoader[uuid.UUID, list[QueuedEmail]]):
    async def batch_load(self, keys: Sequence[uuid.UUID]) -> Sequence[list[QueuedEmail]]:
        found = await reading.resends_by_parent(self.session, keys)
        return [found.get(key, []) for key in keys]


class CorpClientByIdLoader(ContextLoader[uuid.UUID, CorpClient | None]):
    async def batch_load(self, keys: Sequence[uuid.UUID]) -> Sequence[CorpClient | None]:
        found = await reading.clients_by_ids(self.session, keys)
        return [found.get(key) for key in keys]
