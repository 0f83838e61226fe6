"""Operations: dead letters (jobs that failed after their retries) and ping canaries."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, JSONType, TimestampMixin, UUIDPrimaryKey, utcnow


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
