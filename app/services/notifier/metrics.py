"""The notifier's Prometheus metrics: emails by notice and outcome, dispatch lag, SMTP errors.

Queue outcomes are counted after commit (`app.uow.on_commit`), so a rolled-back transaction
counts nothing; delivery errors are counted when they happen (the attempt did happen).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from app.uow import on_commit

EMAILS_SCHEDULED = Counter(
    "engage_notifier_emails_scheduled_total", "Emails queued, by notice.", ["notice"]
)
EMAILS_SENT = Counter(
    "engage_notifier_emails_sent_total", "Emails delivered, by notice.", ["notice"]
)
EMAILS_CANCELLED = Counter(
    "engage_notifier_emails_cancelled_total",
    "Emails withdrawn before sending, by notice and reason.",
    ["notice", "reason"],
)
EMAILS_FAILED = Counter(
    "engage_notifier_emails_failed_total",
    "Emails given up on (permanent error or out of attempts), by notice.",
    ["notice"],
)
EMAILS_RETRIED = Counter(
    "engage_notifier_emails_retried_total", "Transient delivery failures retried later.", ["notice"]
)
DELIVERY_ERRORS = Counter(
    "engage_notifier_delivery_errors_total",
    "Delivery errors by backend and kind (transient or permanent) and SMTP code.",
    ["backend", "kind", "code"],
)
DISPATCH_LAG = Histogram(
    "engage_notifier_dispatch_lag_seconds",
    "Seconds from an email's send_at to its delivery.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 900, 3600, 6 * 3600, 86400),
)
EVENTS_PUBLISHED = Counter(
    "engage_notifier_events_total", "Corporate events stored, by type.", ["type"]
)


def scheduled(session: AsyncSession, notice: str) -> None:
    on_commit(session, EMAILS_SCHEDULED.labels(notice).inc)


def cancelled(session: AsyncSession, notice: str, reason: str) -> None:
    on_commit(session, EMAILS_CANCELLED.labels(notice, str(reason)).inc)


def sent(session: AsyncSession, notice: str, lag_seconds: float) -> None:
    on_commit(session, EMAILS_SENT.labels(notice).inc)
    on_commit(session, lambda: DISPATCH_LAG.observe(max(0.0, lag_seconds)))


def failed(session: AsyncSession, notice: str) -> None:
    on_commit(session, EMAILS_FAILED.labels(notice).inc)


def retried(session: AsyncSession, notice: str) -> None:
    on_commit(session, EMAILS_RETRIED.labels(notice).inc)


def published(session: AsyncSession, event_type: str) -> None:
    on_commit(session, EVENTS_PUBLISHED.labels(event_type).inc)


def delivery_error(backend: str, permanent: bool, code: int | None) -> None:
    DELIVERY_ERRORS.labels(
        backend, "permanent" if permanent else "transient", str(code or "")
    ).inc()
