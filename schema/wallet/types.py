"""The wallet's types: the viewer's balances and ledger entries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.identity import Role
from app.models.wallet import WalletEntry, WalletEntryKind
from app.services.wallet import reading
from schema.base import (
    After,
    Money,
    PageSize,
    connection_of,
    decode_keyset,
    keyset_cursor,
    page_size,
)
from schema.context import Context
from schema.permissions import require, visible_nodes
from schema.wallet.loaders import WalletEntryByIdLoader

strawberry.enum(WalletEntryKind, name="WalletEntryKind", description="Why the wallet changed.")


@strawberry.type(description="A wallet credit or debit.")
class WalletEntryNode(relay.Node):
    id: relay.NodeID[str]
    amount: Money
    kind: WalletEntryKind
    order_id: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, entry: WalletEntry) -> WalletEntryNode:
        return cls(
            id=str(entry.id),
            amount=Money(amount_minor=entry.amount_minor, currency=entry.currency),
            kind=entry.kind,
            order_id=entry.order_id,
            created_at=entry.created_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[WalletEntryNode | None]:
        """The owner sees their entries, an admin anyone's."""
        return await visible_nodes(
            info, WalletEntryByIdLoader, node_ids, cls.from_model, owner=lambda entry: entry.user_id
        )


async def _wallet_owner(info: Info[Context, Any]) -> uuid.UUID:
    """The wallet is `viewer.wallet`: the signed-in user's own."""
    principal = await require(info, Role.USER)
    assert principal.user_id is not None
    return principal.user_id


@strawberry.type(description="The viewer's wallet, credited by goal bonuses and cashback.")
class Wallet:
    @strawberry.field(description="The balance per currency (currencies with entries only).")
    async def balances(self, info: Info[Context, Any]) -> list[Money]:
        user_id = await _wallet_owner(info)
        found = await reading.wallet_balances(info.context.session, user_id)
        return [Money(amount_minor=amount, currency=currency) for amount, currency in found]

    @strawberry.field(description="Entries, newest first.")
    async def entries(
        self,
        info: Info[Context, Any],
        first: PageSize = None,
        after: After = None,
    ) -> relay.Connection[WalletEntryNode]:
        user_id = await _wallet_owner(info)
        limit = page_size(first, info.context.settings.max_page_size)
        before = decode_keyset(after)
        rows = await reading.wallet_entries(
            info.context.session, user_id, limit=limit + 1, before=before
        )
        page = rows[:limit]
        return connection_of(
            [WalletEntryNode.from_model(r) for r in page],
            [keyset_cursor(r.created_at, r.id) for r in page],
            len(rows) > limit,
            before is not None,
        )
