"""The job backbone's tables: the transactional outbox and processed messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class OutboxMessage(Base):
    """A job written in the same transaction as the state change that implies it.

    The row's id is the Dramatiq message id, so every delivery of it (relay, sweeper, broker
    redelivery) carries the same id and an actor can recognise a repeat.

    `sent_at` is set when the broker accepted the message, `finished_at` when a worker was done
    with it (it succeeded, was dead-lettered or skipped). A row sent long ago and still not
    finished was lost by the broker (Redis restarted without persistence, an in-process queue
    died with its process) and is published again (`OutboxRelay.redeliver`).
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
        Index(
            "ix_outbox_messages_unfinished",
            "sent_at",
            postgresql_where=text("sent_at IS NOT NULL AND finished_at IS NULL"),
            sqlite_where=text("sent_at IS NOT NULL AND finished_at IS NULL"),
        ),
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
    finished_at: Mapped[datetime | None]
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)


class ProcessedMessage(Base):
    """Proof that an actor applied a message's effect, written in the effect's transaction."""

    __tablename__ = "processed_messages"

    message_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(100))
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
