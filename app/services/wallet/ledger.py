"""The wallet ledger: every credit and debit, each written once. Only this module writes it.

Each entry names what caused it in `source_key` (`goal:<user goal id>` for a goal's bonus,
`cashback:<grant id>:<order id>`, `reversal:<key of the entry taken back>`). Writing a key
again changes nothing (INSERT … ON CONFLICT DO NOTHING on its unique index), so a retried or
redelivered step never pays twice. The balance is the sum of a user's entries per currency.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.models.wallet import WalletEntry, WalletEntryKind


@dataclass(frozen=True)
class Entry:
    user_id: uuid.UUID
    amount_minor: int  # never 0; negative for a debit
    currency: str
    kind: WalletEntryKind
    source_key: str
    user_goal_id: uuid.UUID | None = None
    order_id: str | None = None


async def credit(session: AsyncSession, entry: Entry, *, now: datetime) -> uuid.UUID:
    """Write `entry` unless its source_key is in the ledger already; the id it was given
    (when the key existed, the earlier entry stays and this id names nothing)."""
    entry_id = uuid.uuid4()
    await session.execute(_insert(session).values(**_row(entry, entry_id, now)))
    return entry_id


async def record_entries(session: AsyncSession, entries: Sequence[Entry], *, now: datetime) -> None:
    """Write each of `entries` whose source_key is new, in one statement."""
    if not entries:
        return
    rows = [_row(entry, uuid.uuid4(), now) for entry in entries]
    await session.execute(_insert(session), rows)


def _insert(session: AsyncSession) -> postgresql.Insert | sqlite.Insert:
    return upsert_insert(session, WalletEntry).on_conflict_do_nothing(index_elements=["source_key"])


def _row(entry: Entry, entry_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    return {"id": entry_id, "created_at": now, "updated_at": now, **asdict(entry)}
