"""Domain events, published to pub/sub after commit (for GraphQL subscriptions).

A service calls `publish_after_commit(session, user_channel(user_id), message)` inside the
unit of work; the event waits in `session.info`. The owner of the unit of work publishes it
after a successful commit with `publish_committed(pubsub, session)`: `Context.finish` for a
GraphQL request, `jobs.runtime.unit_of_work` for an actor. A unit of work that other code
owns (`app.db.transaction()`, CLI commands) publishes nothing.

Nothing is sent for a rolled-back transaction, and neither for a rolled-back savepoint: an
event remembers the innermost transaction it was published in (`session.begin_nested()`), and
a rollback of that transaction or of any transaction around it forgets the event, even when
its savepoint had been released before.

Like the outbox (`app/outbox.py`), only what committed is sent; unlike the outbox, delivery is
best effort and at most once: a process dying between commit and publish loses the event,
and a client that isn't connected misses it (clients refetch state when they reconnect).
Work that must not be lost is an outbox job, not an event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.pubsub import Message, PubSub

_PENDING = "engage.events.pending"


@dataclass(frozen=True, slots=True)
class _Event:
    channel: str
    message: Message
    # The innermost transaction when it was published; None before the session began one.
    transaction: SessionTransaction | None


def user_channel(user_id: uuid.UUID) -> str:
    """The channel of one user's events."""
    return f"engage:user:{user_id}"


def publish_after_commit(session: AsyncSession, channel: str, message: Mapping[str, Any]) -> None:
    """Publish `message` on `channel` once `session`'s transaction commits.

    The message must be JSON-serialisable; a message that isn't raises here, inside the
    caller's transaction, like any other programming error.
    """
    orjson.dumps(message)
    sync_session = session.sync_session
    transaction = sync_session.get_nested_transaction() or sync_session.get_transaction()
    pending: list[_Event] = session.info.setdefault(_PENDING, [])
    pending.append(_Event(channel, dict(message), transaction))


def take_committed_events(session: AsyncSession) -> list[tuple[str, Message]]:
    """The events of `session`'s committed transaction, in order; empties the session's list."""
    pending: list[_Event] = session.info.pop(_PENDING, None) or []
    return [(item.channel, item.message) for item in pending]


def discard_pending_events(session: AsyncSession) -> None:
    """Forget the events of a transaction that is being rolled back."""
    session.info.pop(_PENDING, None)


async def publish_committed(pubsub: PubSub, session: AsyncSession) -> int:
    """Call after `session` committed: publish its events. Never raises; returns how many."""
    items = take_committed_events(session)
    if items:
        await pubsub.publish_many(items)
    return len(items)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending: list[_Event] | None = session.info.get(_PENDING)
    if pending:
        pending[:] = [
            item for item in pending if not _within(item.transaction, previous_transaction)
        ]


def _within(transaction: SessionTransaction | None, rolled_back: SessionTransaction) -> bool:
    """Whether `transaction` is `rolled_back` or nested inside it."""
    if transaction is None:  # published before the session began: belongs to its root
        return rolled_back.parent is None
    current: SessionTransaction | None = transaction
    while current is not None:
        if current is rolled_back:
            return True
        current = current.parent
    return False
