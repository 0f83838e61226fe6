"""Job bookkeeping: do-the-effect-once records and dead letters with their replay."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import upsert_insert
from app.lean import HotStatement
from app.models.base import utcnow
from app.models.identity import AuditLog
from app.models.operations import JobFailure, JobFailureStatus, JobPing
from app.models.outbox import ProcessedMessage
from app.services.errors import DomainError
from app.services.lookup import rows_by_ids
from app.services.pagination import OffsetPage, PageRows, fetch_page

log = structlog.get_logger("engage.jobs")

PING_ACTOR = "system.ping"
MAX_PING_NOTE = 200


class JobErrorCode(enum.Enum):
    NOT_FOUND = "NOT_FOUND"
    INVALID_NOTE = "INVALID_NOTE"
    ALREADY_RETRIED = "ALREADY_RETRIED"
    UNKNOWN_ACTOR = "UNKNOWN_ACTOR"


def _claim_statement(insert: Any) -> Any:
    # Built once: constructing a statement per message costs more CPU than executing it.
    return (
        insert(ProcessedMessage)
        .values(
            message_id=bindparam("message_id"),
            actor=bindparam("actor"),
            processed_at=bindparam("processed_at"),
        )
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(ProcessedMessage.message_id)
    )


# Every claiming actor runs these: the lean path (app/lean.py).
_CLAIM = {
    "postgresql": HotStatement(_claim_statement(postgresql.insert)),
    "sqlite": HotStatement(_claim_statement(sqlite.insert)),
}


async def claim_message(session: AsyncSession, message_id: uuid.UUID, actor: str) -> bool:
    """Record that `message_id` is being applied; False when it already was.

    Call it first in the transaction that applies the message's effect: the record commits or
    rolls back with the effect. A concurrent duplicate delivery blocks on the primary key
    until the first commits, then sees the record and does nothing.
    """
    claim = _CLAIM[session.get_bind().dialect.name]
    claimed = await claim.scalar(session, message_id=message_id, actor=actor, processed_at=utcnow())
    return claimed is not None


async def record_failure(
    session: AsyncSession,
    *,
    message_id: uuid.UUID,
    actor: str,
    queue: str,
    args: list[Any],
    kwargs: dict[str, Any],
    error: str,
    traceback: str,
    retries: int,
    request_id: str | None,
) -> bool:
    """Store a dead letter; a second report of the same message is ignored."""
    statement = (
        upsert_insert(session, JobFailure)
        .values(
            id=uuid.uuid4(),
            message_id=message_id,
            actor=actor,
            queue=queue,
            args=args,
            kwargs=kwargs,
            error=error[:10_000],
            traceback=traceback[-50_000:],
            retries=retries,
            request_id=request_id,
            status=JobFailureStatus.DEAD,
            failed_at=utcnow(),
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(JobFailure.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


def failures_query(
    *, actor: str | None = None, status: JobFailureStatus | None = None
) -> Select[JobFailure]:
    query = select(JobFailure).order_by(JobFailure.failed_at.desc(), JobFailure.id)
    if actor is not None:
        query = query.where(JobFailure.actor == actor)
    if status is not None:
        query = query.where(JobFailure.status == status)
    return query


async def retry_failure(session: AsyncSession, failure_id: uuid.UUID, *, by: str) -> JobFailure:
    """Replay a dead letter through the outbox, once: a second retry is refused."""
    failure = await session.scalar(
        select(JobFailure).where(JobFailure.id == failure_id).with_for_update()
    )
    if failure is None:
        raise DomainError(JobErrorCode.NOT_FOUND, "No such job failure.", "id")
    if failure.status is JobFailureStatus.RETRIED:
        raise DomainError(
            JobErrorCode.ALREADY_RETRIED,
            "This failure was already retried; a new failure is recorded if it fails again.",
            "id",
        )
    if failure.actor not in outbox.KNOWN_ACTORS:
        raise DomainError(JobErrorCode.UNKNOWN_ACTOR, "The actor no longer exists.", "id")
    failure.retry_message_id = outbox.enqueue(session, failure.actor, **failure.kwargs)
    failure.status = JobFailureStatus.RETRIED
    failure.retried_at = utcnow()
    failure.retried_by = by
    session.add(AuditLog(actor=by, action="job.retry", target=f"job_failure:{failure.id}"))
    return failure


async def request_ping(session: AsyncSession, *, note: str, by: str) -> JobPing:
    """Send a canary job through the outbox; the worker marks it processed."""
    note = note.strip()
    if len(note) > MAX_PING_NOTE or not note.isprintable():
        raise DomainError(
            JobErrorCode.INVALID_NOTE,
            f"The note must be printable and at most {MAX_PING_NOTE} characters.",
            "note",
        )
    ping = JobPing(id=uuid.uuid4(), note=note, requested_by=by)
    session.add(ping)
    ping.message_id = outbox.enqueue(session, PING_ACTOR, ping_id=str(ping.id))
    await session.flush()
    return ping


_APPLY_PING = HotStatement(
    update(JobPing)
    .where(JobPing.id == bindparam("ping_id"))
    .values(
        deliveries=JobPing.deliveries + 1,
        processed_at=func.coalesce(JobPing.processed_at, bindparam("now")),
        updated_at=bindparam("now"),
    )
)


async def apply_ping(session: AsyncSession, ping_id: uuid.UUID) -> None:
    """The ping's effect: an atomic counter, not idempotent on its own (the actor claims the
    message first, in the same transaction)."""
    await _APPLY_PING.execute(session, ping_id=ping_id, now=utcnow())
    log.debug("job.ping_applied", ping_id=str(ping_id))


async def failures_by_ids(session: AsyncSession, keys: Sequence[str]) -> list[JobFailure | None]:
    return await rows_by_ids(session, JobFailure, keys)


async def pings_by_ids(session: AsyncSession, keys: Sequence[str]) -> list[JobPing | None]:
    return await rows_by_ids(session, JobPing, keys)


async def get_ping(session: AsyncSession, ping_id: uuid.UUID) -> JobPing | None:
    return await session.get(JobPing, ping_id)


async def failures_page(
    session: AsyncSession,
    page: OffsetPage,
    *,
    actor: str | None = None,
    status: JobFailureStatus | None = None,
) -> PageRows[JobFailure]:
    """Dead letters, most recently failed first."""
    return await fetch_page(session, failures_query(actor=actor, status=status), page)
