"""The job backbone's tables: the transactional outbox, processed messages, dead letters."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, JSONType, TimestampMixin, UUIDPrimaryKey, utcnow


class OutboxMessage(Base):
    """A job written in the same transaction as the state change that implies it.

    The row's id is the Dramatiq message id, so every delivery of it (relay, sweeper, broker
    redelivery) carries the same id and an actor can recognise a repeat.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index(
            "ix_outbox_messages_unsent",
            "created_at",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
        Index("ix_outbox_messages_sent_at", "sent_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    actor: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(100), default="default")
    kwargs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Set for jobs that must be enqueued at most once, e.g. one scheduler tick.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)


class ProcessedMessage(Base):
    """Proof that an actor applied a message's effect, written in the effect's transaction."""

    __tablename__ = "processed_messages"

    message_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(100))
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class JobFailureStatus(enum.StrEnum):
    DEAD = "DEAD"
    RETRIED = "RETRIED"


class JobFailure(UUIDPrimaryKey, TimestampMixin, Base):
    """A message that exhausted its retries: what ran, with what, and why it failed."""

    __tablename__ = "job_failures"

    message_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    queue: Mapped[str] = mapped_column(String(100))
    args: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    kwargs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str] = mapped_column(Text, default="")
    retries: Mapped[int] = mapped_column(Integer, default=0)
    request_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[JobFailureStatus] = mapped_column(
        Enum(JobFailureStatus, native_enum=False, length=16), default=JobFailureStatus.DEAD
    )
    failed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    retried_at: Mapped[datetime | None]
    retried_by: Mapped[str | None] = mapped_column(String(100))
    retry_message_id: Mapped[uuid.UUID | None]


class JobPing(UUIDPrimaryKey, TimestampMixin, Base):
    """A canary job an operator sends through the whole pipeline (outbox, broker, worker).

    `deliveries` counts applied effects: it must never exceed 1, however often the message
    is delivered.
    """

    __tablename__ = "job_pings"

    note: Mapped[str] = mapped_column(String(200), default="")
    requested_by: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[uuid.UUID | None]
    processed_at: Mapped[datetime | None]
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
