"""The wallet's DataLoaders."""

from __future__ import annotations

from collections.abc import Sequence

from app.models.wallet import WalletEntry
from app.services.wallet import reading
from schema.loaders import ContextLoader


class WalletEntryByIdLoader(ContextLoader[str, WalletEntry | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[WalletEntry | None]:
        return await reading.entries_by_ids(self.session, keys)
