"""The dispatcher's statements, built once (the lean path): the claim, what the send-time
checks read, the throttle's counter, and the outcome marks. `dispatch` runs them; each mark
applies only while the row is SENDING under the caller's claim token."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.lean import DIALECTS, HotStatement, one_of
from app.models.notifier import (
    CorpClient,
    CorpEvent,
    DeliveryAttempt,
    EmailStatus,
    Notice,
    NoticePreference,
    NoticeTemplate,
    NoticeThrottle,
    QueuedEmail,
)
from app.services.notifier.handling import CLIENT_COLUMNS

SCHEDULED, SENDING = EmailStatus.SCHEDULED, EmailStatus.SENDING


def _claim_statement() -> HotStatement:
    now = bindparam("now", type_=QueuedEmail.due_at.type)
    due = (
        select(QueuedEmail.id)
        .where(
            or_(
                and_(QueuedEmail.status == SCHEDULED, QueuedEmail.due_at <= now),
                and_(QueuedEmail.status == SENDING, QueuedEmail.lease_until < now),
            )
        )
        .order_by(QueuedEmail.due_at)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return HotStatement(
        update(QueuedEmail)
        .where(QueuedEmail.id.in_(due))
        .values(
            status=SENDING,
            claim_token=bindparam("b_token", type_=QueuedEmail.claim_token.type),
            lease_until=bindparam("b_lease", type_=QueuedEmail.lease_until.type),
            attempts=QueuedEmail.attempts + 1,
            updated_at=now,
        )
        .returning(
            QueuedEmail.id,
            QueuedEmail.event_id,
            QueuedEmail.client_id,
            QueuedEmail.notice,
            QueuedEmail.rule_version_id,
            QueuedEmail.recipients,
            QueuedEmail.locale,
            QueuedEmail.send_at,
            QueuedEmail.expires_at,
            QueuedEmail.attempts,
        )
    )


CLAIM = _claim_statement()
CLIENTS = {
    d: HotStatement(select(*CLIENT_COLUMNS).where(one_of(CorpClient.id, "ids", d)))
    for d in DIALECTS
}
EVENTS = {
    d: HotStatement(
        select(CorpEvent.id, CorpEvent.type, CorpEvent.payload).where(
            one_of(CorpEvent.id, "ids", d)
        )
    )
    for d in DIALECTS
}
NOTICES = HotStatement(select(Notice.key, Notice.critical))
UNSUBSCRIBED = {
    d: HotStatement(
        select(NoticePreference.client_id, NoticePreference.notice).where(
            one_of(NoticePreference.client_id, "ids", d), NoticePreference.unsubscribed.is_(True)
        )
    )
    for d in DIALECTS
}


def _templates_statement(dialect: str) -> HotStatement:
    newer = NoticeTemplate.__table__.alias("newer")
    latest = (
        select(func.max(newer.c.version))
        .where(newer.c.notice == NoticeTemplate.notice, newer.c.locale == NoticeTemplate.locale)
        .scalar_subquery()
    )
    return HotStatement(
        select(
            NoticeTemplate.notice,
            NoticeTemplate.locale,
            NoticeTemplate.version,
            NoticeTemplate.subject,
            NoticeTemplate.text_body,
            NoticeTemplate.html_body,
        ).where(one_of(NoticeTemplate.notice, "notices", dialect), NoticeTemplate.version == latest)
    )


TEMPLATES = {d: _templates_statement(d) for d in DIALECTS}


def _throttle_statement(insert_: Any) -> HotStatement:
    statement = insert_(NoticeThrottle).values(
        client_id=bindparam("client_id"),
        notice=bindparam("notice"),
        window_start=bindparam("window_start", type_=NoticeThrottle.window_start.type),
        used=1,
    )
    return HotStatement(
        statement.on_conflict_do_update(
            index_elements=["client_id", "notice", "window_start"],
            set_={"used": NoticeThrottle.used + 1},
            where=NoticeThrottle.used < bindparam("max"),
        ).returning(NoticeThrottle.used)
    )


TAKE_SLOT = {
    "postgresql": _throttle_statement(postgresql.insert),
    "sqlite": _throttle_statement(sqlite.insert),
}
GIVE_SLOT = HotStatement(
    update(NoticeThrottle)
    .where(
        NoticeThrottle.client_id == bindparam("b_client_id", type_=NoticeThrottle.client_id.type),
        NoticeThrottle.notice == bindparam("b_notice", type_=NoticeThrottle.notice.type),
        NoticeThrottle.window_start
        == bindparam("b_window_start", type_=NoticeThrottle.window_start.type),
        NoticeThrottle.used > 0,
    )
    .values(used=NoticeThrottle.used - 1)
)


def _mark(**values: Any) -> HotStatement:
    return HotStatement(
        update(QueuedEmail)
        .where(
            QueuedEmail.id == bindparam("email_id"),
            QueuedEmail.claim_token == bindparam("token"),
            QueuedEmail.status == SENDING,
        )
        .values(
            **values,
            claim_token=None,
            lease_until=None,
            updated_at=bindparam("b_now", type_=QueuedEmail.updated_at.type),
        )
    )


MARK_CANCELLED = _mark(
    status=EmailStatus.CANCELLED,
    cancel_reason=bindparam("b_reason", type_=QueuedEmail.cancel_reason.type),
)
MARK_SENT = _mark(
    status=EmailStatus.SENT,
    sent_at=bindparam("b_now", type_=QueuedEmail.sent_at.type),
    last_error=None,
    template_version=bindparam("b_version"),
    subject=bindparam("b_subject", type_=QueuedEmail.subject.type),
)
MARK_RETRY = _mark(
    status=SCHEDULED,
    due_at=bindparam("b_due", type_=QueuedEmail.due_at.type),
    last_error=bindparam("b_error", type_=QueuedEmail.last_error.type),
)
MARK_FAILED = _mark(
    status=EmailStatus.FAILED,
    last_error=bindparam("b_error", type_=QueuedEmail.last_error.type),
)
ATTEMPT = HotStatement(
    insert(DeliveryAttempt).values(
        {
            name: bindparam(name, type_=DeliveryAttempt.__table__.c[name].type)
            for name in ("id", "email_id", "attempt", "outcome", "error", "backend", "at")
        }
    )
)
