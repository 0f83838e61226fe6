"""The corporate notifier: clients, their events, rules, templates and the email queue (SPEC §4).

Invariants the database keeps (not only the code):
- a client's external id is unique; an event's idempotency key is unique (the same key twice
  is one event);
- one queued email per (event, client, notice, send time): handling an event twice, or two
  handlers at once, can't queue a notice twice (manual sends and resends have no event, and
  NULLs never collide, so they are not limited by it);
- a rule version and a template version are immutable once written: editing writes the next
  version (`(rule, version)` and `(notice, locale, version)` are unique), so an email scheduled
  by version 1 of a sequence keeps version 1's steps and conditions whatever is edited later;
- one preference row per (client, notice); one throttle counter per (client, notice, window).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin, UUIDPrimaryKey, utcnow


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32)


class ContractType(enum.StrEnum):
    PREPAID = "PREPAID"
    POSTPAID = "POSTPAID"


class CorpEventType(enum.StrEnum):
    CLIENT_CREATED_BY_OFFER = "CLIENT_CREATED_BY_OFFER"
    CONTRACT_ACTIVATED = "CONTRACT_ACTIVATED"
    BALANCE_CHANGED = "BALANCE_CHANGED"
    LIMIT_REACHED = "LIMIT_REACHED"
    FINANCIAL_UNBLOCK = "FINANCIAL_UNBLOCK"
    RIDE_TAKEN = "RIDE_TAKEN"
    PAYMENT_RECEIVED = "PAYMENT_RECEIVED"


class EmailStatus(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    SENDING = "SENDING"
    SENT = "SENT"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


class CancelReason(enum.StrEnum):
    """Why a CANCELLED email did not go out."""

    EVENT = "EVENT"  # a cancel event withdrew it (a top-up, a first ride)
    CONDITION = "CONDITION"  # the send-time check found the client already did the thing
    EXPIRED = "EXPIRED"  # it could not go out before its expiry: never sent late
    THROTTLED = "THROTTLED"  # the per-client limit of this notice in its period was reached
    UNSUBSCRIBED = "UNSUBSCRIBED"  # the client unsubscribed from this (non-critical) notice
    NO_RECIPIENTS = "NO_RECIPIENTS"  # the client has no contact email
    ADMIN = "ADMIN"  # an operator cancelled it


class EmailOrigin(enum.StrEnum):
    EVENT = "EVENT"  # scheduled by a rule on an event
    MANUAL = "MANUAL"  # an operator sent a configured notice by hand
    RESEND = "RESEND"  # an operator sent an email again (parent_id: the original)


class AttemptOutcome(enum.StrEnum):
    SENT = "SENT"
    RETRY = "RETRY"  # a transient failure: scheduled again with backoff
    FAILED = "FAILED"  # permanent, or the last allowed attempt


class CorpClient(UUIDPrimaryKey, TimestampMixin, Base):
    """A corporate client as the notifier knows it, kept current by its events."""

    __tablename__ = "corp_clients"
    __table_args__ = (
        CheckConstraint("low_balance_threshold_minor >= 0", name="threshold_not_negative"),
    )

    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    emails: Mapped[list[str]] = mapped_column()
    contract_type: Mapped[ContractType] = mapped_column(_enum(ContractType))
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    low_balance_threshold_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    locale: Mapped[str] = mapped_column(String(8), default="ru")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    # What the events told us; the send-time checks read these.
    activated_at: Mapped[datetime | None] = mapped_column()
    first_ride_at: Mapped[datetime | None] = mapped_column()
    last_payment_at: Mapped[datetime | None] = mapped_column()
    limit_reached_at: Mapped[datetime | None] = mapped_column()
    # The occurrence time of the event the balance came from: an older event arriving late
    # never overwrites a newer balance.
    balance_as_of: Mapped[datetime | None] = mapped_column()


class CorpEvent(UUIDPrimaryKey, Base):
    __tablename__ = "corp_events"

    type: Mapped[CorpEventType] = mapped_column(_enum(CorpEventType))
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("corp_clients.id", ondelete="CASCADE"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column()
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    # sha256 of (type, client, payload): the same key with other content is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column()
    published_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column()


class Notice(TimestampMixin, Base):
    """A kind of email (LowBalanceNotice, …): its templates are versioned per locale."""

    __tablename__ = "notifier_notices"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(String(500), default="")


class NoticeTemplate(UUIDPrimaryKey, Base):
    """One version of a notice's template in one locale; the highest version is current."""

    __tablename__ = "notifier_templates"
    __table_args__ = (UniqueConstraint("notice", "locale", "version"),)

    notice: Mapped[str] = mapped_column(ForeignKey("notifier_notices.key", ondelete="CASCADE"))
    locale: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(500))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotifierRule(UUIDPrimaryKey, TimestampMixin, Base):
    """An event type → the emails it may trigger; its definition lives in versions."""

    __tablename__ = "notifier_rules"

    key: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[CorpEventType] = mapped_column(_enum(CorpEventType), index=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class NotifierRuleVersion(UUIDPrimaryKey, Base):
    __tablename__ = "notifier_rule_versions"
    __table_args__ = (UniqueConstraint("rule_id", "version"),)

    rule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notifier_rules.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # The rule as `app.services.notifier.rules.parse_rule` reads it (the file's shape).
    definition: Mapped[dict[str, Any]] = mapped_column()
    # The catalog file version it came from (None: written by an admin).
    catalog_version: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotifierCatalog(Base):
    """The catalog file versions loaded, so a start loads a file once."""

    __tablename__ = "notifier_catalogs"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class QueuedEmail(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "email_queue"
    __table_args__ = (
        UniqueConstraint("event_id", "client_id", "notice", "send_at"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # The dispatcher's claim: due rows by time.
        Index(
            "ix_email_queue_due",
            "due_at",
            postgresql_where=text("status IN ('SCHEDULED', 'SENDING')"),
            sqlite_where=text("status IN ('SCHEDULED', 'SENDING')"),
        ),
        Index("ix_email_queue_client_notice", "client_id", "notice", "status"),
    )

    event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("corp_events.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("corp_clients.id", ondelete="CASCADE"))
    notice: Mapped[str] = mapped_column(ForeignKey("notifier_notices.key"))
    rule_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("notifier_rule_versions.id")
    )
    rule_key: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[EmailOrigin] = mapped_column(_enum(EmailOrigin))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("email_queue.id", ondelete="SET NULL"), index=True
    )
    requested_by: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500), default="")
    # Fixed at scheduling: who gets it, in which language.
    recipients: Mapped[list[str]] = mapped_column()
    locale: Mapped[str] = mapped_column(String(8))
    send_at: Mapped[datetime] = mapped_column()  # when it was scheduled for (the unique key)
    due_at: Mapped[datetime] = mapped_column()  # when the next attempt is due (retries move it)
    expires_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[EmailStatus] = mapped_column(_enum(EmailStatus), default=EmailStatus.SCHEDULED)
    cancel_reason: Mapped[CancelReason | None] = mapped_column(_enum(CancelReason))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    # The dispatcher holding a SENDING row, and until when; a lapsed lease is claimed again.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    template_version: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str | None] = mapped_column(String(500))


class DeliveryAttempt(UUIDPrimaryKey, Base):
    __tablename__ = "email_delivery_attempts"

    email_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("email_queue.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[AttemptOutcome] = mapped_column(_enum(AttemptOutcome))
    error: Mapped[str | None] = mapped_column(String(1000))
    backend: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class NoticePreference(TimestampMixin, Base):
    """A client's choice about a notice: a row means unsubscribed (critical ones can't be)."""

    __tablename__ = "notifier_preferences"

    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("corp_clients.id", ondelete="CASCADE"), primary_key=True
    )
    notice: Mapped[str] = mapped_column(ForeignKey("notifier_notices.key"), primary_key=True)
    unsubscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_by: Mapped[str] = mapped_column(String(100))


class NoticeThrottle(Base):
    """Emails of a notice claimed for a client in a fixed window: an atomic counter."""

    __tablename__ = "notifier_throttle"

    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("corp_clients.id", ondelete="CASCADE"), primary_key=True
    )
    notice: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
