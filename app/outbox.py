"""The transactional outbox: a job is a row written in the caller's transaction.

`enqueue(session, "goals.process_order", order_id=...)` adds an `outbox_messages` row to the
unit of work. Whoever owns the unit of work (the GraphQL request, an actor, a CLI command)
hands the session to `OutboxRelay.relay_committed()` after a successful commit; the relay
publishes the rows to the broker and marks them sent. A rolled-back transaction leaves no row
and publishes nothing. If the process dies between commit and publish, the periodic sweeper
publishes rows that stayed unsent for longer than a grace period. Workers mark the rows they
finished (`OutboxRelay.finish`, from the jobs middleware); a row sent long ago and never
finished was lost by the broker (Redis restarted without persistence, an in-process queue
died with its process), and the sweeper publishes it again (`redeliver`). So no job is lost;
the price is that a job can be delivered twice, which is why every actor is idempotent and
why a row's id is its message id on every delivery.

Services depend only on this module, never on Dramatiq: the broker is behind `Publish`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, delete, event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.db import SessionFactory, transaction, upsert_insert
from app.metrics import (
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_REDELIVERED,
    OUTBOX_SWEPT,
    OUTBOX_WRITTEN,
)
from app.models.base import utcnow
from app.models.outbox import OutboxMessage, ProcessedMessage

log = structlog.get_logger("engage.outbox")

_PENDING = "engage.outbox.pending"
_MARK_BATCH = 1000

# Actor name -> queue, filled in when the jobs package declares its actors. A name that is
# not here is a programming error, caught at enqueue time inside the caller's transaction.
KNOWN_ACTORS: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the broker needs to deliver one outbox row."""

    id: uuid.UUID
    actor: str
    queue: str
    kwargs: dict[str, Any]
    request_id: str | None = None


Publish = Callable[[Sequence[Envelope]], Awaitable[None]]


@dataclass
class _Pending:
    """A session's jobs: rows still to write (each with the savepoint it was enqueued in, or
    None), the envelopes of everything enqueued, and whether the transaction committed."""

    unwritten: list[dict[str, Any]] = field(default_factory=list)
    envelopes: list[tuple[SessionTransaction | None, Envelope]] = field(default_factory=list)
    committed: bool = False

    def add(self, session: AsyncSession, envelope: Envelope) -> None:
        savepoint = session.sync_session.get_nested_transaction()
        self.envelopes.append((savepoint, envelope))


def register_actor(name: str, queue: str = "default") -> None:
    KNOWN_ACTORS[name] = queue


def _queue_for(actor: str) -> str:
    if actor not in KNOWN_ACTORS:
        raise LookupError(f"unknown actor {actor!r}: declare it in a jobs module")
    return KNOWN_ACTORS[actor]


def _current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value is not None else None


def _pending(session: AsyncSession) -> _Pending:
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = _Pending()
    return pending


def enqueue(session: AsyncSession, actor: str, /, **kwargs: Any) -> uuid.UUID:
    """Add a job for `actor` to the caller's transaction; it is published after commit.

    The row is written by one multi-row INSERT just before the transaction commits (no ORM
    object, no flush: `_write_unwritten`), so a unit of work pays one statement for all its
    jobs; a job enqueued inside a savepoint that rolls back is dropped with it.
    """
    queue = _queue_for(actor)
    json.dumps(kwargs)  # arguments must survive the broker: fail here, inside the transaction
    message_id = uuid.uuid4()
    request_id = _current_request_id()
    row = {
        "id": message_id,
        "actor": actor,
        "queue": queue,
        "kwargs": kwargs,
        "request_id": request_id,
    }  # dedupe_key, created_at (at the INSERT) and publish_attempts: the columns' defaults
    pending = _pending(session)
    pending.unwritten.append(row)
    pending.add(session, Envelope(message_id, actor, queue, kwargs, request_id))
    OUTBOX_WRITTEN.labels(actor).inc()
    return message_id


_INSERT_ROWS = insert(cast(Table, OutboxMessage.__table__))


@event.listens_for(Session, "before_commit")
def _write_unwritten(session: Session) -> None:
    """Write the enqueued rows as the outermost transaction commits (sync: it runs inside
    the async session's commit, where SQLAlchemy bridges to the driver)."""
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is None or not pending.unwritten or session.get_nested_transaction() is not None:
        return
    rows, pending.unwritten = pending.unwritten, []
    session.execute(_INSERT_ROWS, rows)


@event.listens_for(Session, "after_commit")
def _mark_committed(session: Session) -> None:
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is not None and session.get_nested_transaction() is None:
        pending.committed = True


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous: SessionTransaction) -> None:
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is None:
        return
    if previous.parent is None:  # the whole unit of work: nothing it enqueued happened
        session.info.pop(_PENDING, None)
        return
    # A savepoint rolled back: drop what was enqueued inside it (its enqueue_unique rows are
    # gone with it; its enqueue rows were never written).
    dropped = {e.id for tx, e in pending.envelopes if _within(tx, previous)}
    if dropped:
        pending.envelopes = [(tx, e) for tx, e in pending.envelopes if e.id not in dropped]
        pending.unwritten = [row for row in pending.unwritten if row["id"] not in dropped]


def _within(transaction: SessionTransaction | None, savepoint: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is savepoint:
            return True
        transaction = transaction.parent
    return False


async def enqueue_unique(
    session: AsyncSession, actor: str, /, dedupe_key: str, **kwargs: Any
) -> uuid.UUID | None:
    """Like `enqueue`, but at most once per `dedupe_key` ever: returns None for a repeat.

    Concurrent callers race on the unique index; the loser waits for the winner's commit and
    then inserts nothing.
    """
    queue = _queue_for(actor)
    json.dumps(kwargs)
    values = {
        "id": uuid.uuid4(),
        "actor": actor,
        "queue": queue,
        "kwargs": kwargs,
        "request_id": _current_request_id(),
        "dedupe_key": dedupe_key,
        "created_at": utcnow(),
        "publish_attempts": 0,
    }
    statement = (
        upsert_insert(session, OutboxMessage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OutboxMessage.id)
    )
    inserted = (await session.execute(statement)).scalar_one_or_none()
    if inserted is None:
        return None
    _pending(session).add(
        session,
        Envelope(inserted, actor, queue, kwargs, values["request_id"]),  # type: ignore[arg-type]
    )
    OUTBOX_WRITTEN.labels(actor).inc()
    return inserted


def take_committed(session: AsyncSession) -> list[Envelope]:
    """The jobs this session's committed transaction wrote; empties the session's list.

    Nothing if the transaction did not commit (a rollback drops them as it happens).
    """
    pending = session.info.pop(_PENDING, None)
    if pending is None or not pending.committed:
        return []
    return [envelope for _, envelope in pending.envelopes]


def discard_pending(session: AsyncSession) -> None:
    session.info.pop(_PENDING, None)


def _envelope(row: OutboxMessage) -> Envelope:
    return Envelope(row.id, row.actor, row.queue, row.kwargs, row.request_id)


class OutboxRelay:
    """Publishes committed outbox rows and marks them sent; marks rows finished; sweeps and
    cleans the table.

    Publishing happens at once. Marking rows sent (and finished) is batched when
    `mark_sent_window` is set: the ids of everything published within the window go out in
    one UPDATE, instead of a second transaction per commit. A crash before that UPDATE only
    means the sweeper publishes those rows again, which every actor tolerates.
    """

    def __init__(
        self,
        session_factory: SessionFactory,
        publish: Publish,
        *,
        mark_sent_window: float | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.publish = publish
        self.mark_sent_window = mark_sent_window
        self._unmarked: list[uuid.UUID] = []
        self._finished: list[uuid.UUID] = []
        self._marker: asyncio.Task[None] | None = None

    async def relay_committed(self, session: AsyncSession) -> int:
        """Call after `session` committed: publish what it enqueued. Never raises."""
        envelopes = take_committed(session)
        if envelopes:
            await self.relay(envelopes)
        return len(envelopes)

    async def relay(self, envelopes: Sequence[Envelope]) -> None:
        try:
            await self.publish(envelopes)
        except Exception:
            # The transaction is committed: the sweeper will publish these rows later.
            OUTBOX_PUBLISH_FAILURES.inc(len(envelopes))
            log.exception("outbox.publish_failed", count=len(envelopes))
            return
        self._unmarked.extend(envelope.id for envelope in envelopes)
        await self._mark_soon()

    def finish(self, message_id: uuid.UUID) -> None:
        """Record that a worker is done with `message_id` (call on the relay's loop)."""
        self._finished.append(message_id)
        self._schedule_marking()

    async def _mark_soon(self) -> None:
        if self.mark_sent_window is None:
            await self.flush()
        else:
            self._schedule_marking()

    def _schedule_marking(self) -> None:
        if self._marker is None or self._marker.done():
            self._marker = asyncio.get_running_loop().create_task(self._flush_after_window())

    async def _flush_after_window(self) -> None:
        # Checked and returned with no await between: an id added later schedules a new task.
        while self._unmarked or self._finished:
            await asyncio.sleep(self.mark_sent_window or 0)
            await self.flush()

    async def flush(self) -> None:
        """Mark everything published so far as sent, and everything finished as finished."""
        await self._mark(self._take_unmarked, "sent_at", "outbox.mark_sent_failed")
        await self._mark(self._take_finished, "finished_at", "outbox.mark_finished_failed")

    def _take_unmarked(self) -> list[uuid.UUID]:
        ids, self._unmarked = self._unmarked[:_MARK_BATCH], self._unmarked[_MARK_BATCH:]
        return ids

    def _take_finished(self) -> list[uuid.UUID]:
        ids, self._finished = self._finished[:_MARK_BATCH], self._finished[_MARK_BATCH:]
        return ids

    async def _mark(self, take: Callable[[], list[uuid.UUID]], column: str, failed: str) -> None:
        while ids := take():
            values: dict[str, Any] = {column: utcnow()}
            if column == "sent_at":
                values["publish_attempts"] = OutboxMessage.publish_attempts + 1
            try:
                async with transaction(self.session_factory) as session:
                    await session.execute(
                        update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(**values)
                    )
            except Exception:
                # Unmarked: the sweeper publishes again; actors are idempotent.
                log.exception(failed, count=len(ids))

    async def close(self) -> None:
        """Finish marking: call before the engine is disposed."""
        if self._marker is not None and not self._marker.done():
            self._marker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._marker
        await self.flush()

    async def sweep(self, grace: timedelta, batch_size: int = 500) -> int:
        """Publish rows committed more than `grace` ago and still unsent; returns how many."""
        unsent = (
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.finished_at.is_(None),
            OutboxMessage.created_at < utcnow() - grace,
        )
        total = await self._republish(unsent, OutboxMessage.created_at, batch_size, "swept")
        if total:
            OUTBOX_SWEPT.inc(total)
        return total

    async def redeliver(self, after: timedelta, max_attempts: int, batch_size: int = 500) -> int:
        """Publish again rows the broker accepted more than `after` ago that no worker finished.

        A row is published at most `max_attempts` times in all: one the workers keep failing
        to finish without dead-lettering it is left to the log, not published forever.
        """
        lost = (
            OutboxMessage.sent_at.is_not(None),
            OutboxMessage.finished_at.is_(None),
            OutboxMessage.sent_at < utcnow() - after,
            OutboxMessage.publish_attempts < max_attempts,
        )
        total = await self._republish(lost, OutboxMessage.sent_at, batch_size, "redelivered")
        if total:
            OUTBOX_REDELIVERED.inc(total)
        return total

    async def _republish(
        self, conditions: Sequence[Any], oldest_first: Any, batch_size: int, event: str
    ) -> int:
        total = 0
        while True:
            async with transaction(self.session_factory) as session:
                rows = (
                    await session.scalars(
                        select(OutboxMessage)
                        .where(*conditions)
                        .order_by(oldest_first)
                        .limit(batch_size)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                if not rows:
                    return total
                await self.publish([_envelope(row) for row in rows])
                now = utcnow()
                for row in rows:
                    row.sent_at = now
                    row.publish_attempts += 1
            total += len(rows)
            log.warning(f"outbox.{event}", count=len(rows), ids=[str(r.id) for r in rows[:20]])
            if len(rows) < batch_size:
                return total

    async def cleanup(self, retention: timedelta) -> int:
        """Delete sent rows and processed-message records older than `retention`."""
        cutoff = utcnow() - retention
        async with transaction(self.session_factory) as session:
            sent = await session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.sent_at.is_not(None), OutboxMessage.sent_at < cutoff
                )
            )
            processed = await session.execute(
                delete(ProcessedMessage).where(ProcessedMessage.processed_at < cutoff)
            )
        removed = int(getattr(sent, "rowcount", 0) or 0)
        log.info("outbox.cleanup", sent_rows=removed, processed=getattr(processed, "rowcount", 0))
        return removed


async def backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many rows are unsent, and when the oldest of them was written."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(OutboxMessage.created_at)).where(
                OutboxMessage.sent_at.is_(None)
            )
        )
    ).one()
    if isinstance(oldest, str):  # SQLite returns aggregate timestamps as text
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), oldest
