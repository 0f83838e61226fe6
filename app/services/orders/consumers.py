"""The other consumers of the order stream: every domain's `order_consumer.consume`.

Goals run the order-processing job (`goals.processing.process_pending`: the users' locks,
the queue, one load that joins the goals' own state); each further consumer then gets the
same order rows in the same transaction, under the same locks, and keeps its own ledger. So
one job, one transaction and one order read serve every consumer: an order is applied to
all of them or to none, and a retry re-offers it to all (each is idempotent by state).

A consumer is `app/services/<domain>/order_consumer.py` defining
`async def consume(session, orders, *, now)`; `orders` are rows with the order columns
(`order_id`, `user_id`, `kind`, `status`, `price_minor`, `currency`, `completed_at`, …),
each user's in completion order.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.domains import domain_modules

Consume = Callable[..., Awaitable[None]]


@functools.cache
def registered() -> tuple[Consume, ...]:
    """The consumers, in `DOMAINS` order (found once per process)."""
    return tuple(module.consume for module in domain_modules("app.services", "order_consumer"))


async def offer(session: AsyncSession, orders: Sequence[Any], *, now: datetime) -> None:
    """Give `orders` to every consumer, in turn, in the caller's transaction."""
    for consume in registered():
        await consume(session, orders, now=now)
