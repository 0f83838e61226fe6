"""The wallet's field on `viewer`."""

from __future__ import annotations

import strawberry

from schema.wallet.types import Wallet


@strawberry.type
class WalletViewer:
    @strawberry.field(description="The caller's wallet: balances and entries.")
    def wallet(self) -> Wallet:
        return Wallet()
