"""What an operator does to the email queue: send a notice by hand, send an email again,
cancel a scheduled one, dispatch now. Every action is audited and names who and why.

- A manual send is a configured notice (one that exists, with templates) to a client's
  current contacts, due now (origin MANUAL). No rule is attached: nothing is re-checked at
  send time except expiry and preferences (a critical notice ignores an unsubscribe).
- A resend is a new email linked to the original (`parent_id`, origin RESEND), so the
  history stays a tree: who asked, when, why. Only a SENT or FAILED email can be sent again.
- Cancelling is for SCHEDULED emails only: a conditional update, so a cancel racing the
  dispatcher either wins (the email never goes) or finds it SENDING / SENT and says so.
- With an idempotency key, a repeat of the same request returns the first email.
All three enqueue a dispatch right away.
"""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.models.base import utcnow
from app.models.identity import AuditLog
from app.models.notifier import (
    CancelReason,
    CorpClient,
    EmailOrigin,
    EmailStatus,
    Notice,
    QueuedEmail,
)
from app.services.errors import DomainError
from app.services.idempotency import IdempotencyErrorCode, run_once
from app.services.notifier import metrics, reading
from app.services.notifier.codes import NotifierErrorCode as Code
from app.services.notifier.editing import check_reason
from app.services.notifier.handling import DISPATCH_ACTOR

RESENDABLE = (EmailStatus.SENT, EmailStatus.FAILED)


def _code(code: IdempotencyErrorCode) -> Code:
    return Code(code.value)


async def dispatch_now(session: AsyncSession) -> None:
    """Enqueue the dispatcher after this transaction (never deduplicated: a dispatch that
    started before the commit would miss this transaction's emails)."""
    outbox.enqueue(session, DISPATCH_ACTOR)


async def _email(session: AsyncSession, email_id: uuid.UUID) -> QueuedEmail:
    found = await session.get(QueuedEmail, email_id)
    if found is None:
        raise DomainError(Code.NOT_FOUND, "No email has this id.", "emailId")
    return found


def _new_email(
    client: CorpClient,
    notice: str,
    *,
    origin: EmailOrigin,
    actor: str,
    reason: str,
    parent: QueuedEmail | None = None,
) -> QueuedEmail:
    now = utcnow()
    return QueuedEmail(
        id=uuid.uuid4(),
        event_id=None,
        client_id=client.id,
        notice=notice,
        rule_version_id=None,
        rule_key=parent.rule_key if parent else None,
        origin=origin,
        parent_id=parent.id if parent else None,
        requested_by=actor,
        reason=reason,
        recipients=list(client.emails),
        locale=client.locale,
        send_at=now,
        due_at=now,
        expires_at=None,
        status=EmailStatus.SCHEDULED,
        attempts=0,
    )


async def send_notice(
    session: AsyncSession,
    client: CorpClient,
    notice_key: str,
    *,
    actor: str,
    reason: str,
    idempotency_key: str | None = None,
) -> QueuedEmail:
    why = check_reason(reason)
    notice = await session.get(Notice, notice_key) if len(notice_key) <= 64 else None
    if notice is None:
        raise DomainError(Code.UNKNOWN_NOTICE, "No notice has this name.", "notice")

    async def create() -> str:
        email = _new_email(client, notice.key, origin=EmailOrigin.MANUAL, actor=actor, reason=why)
        session.add(email)
        session.add(
            AuditLog(actor=actor, action="notifier.send", target=f"email:{email.id}", reason=why)
        )
        await session.flush()
        metrics.scheduled(session, notice.key)
        await dispatch_now(session)
        return str(email.id)

    reference, _ = await run_once(
        session,
        principal=actor,
        operation="corpEmailSend",
        key=idempotency_key,
        request={"client": str(client.id), "notice": notice.key, "reason": why},
        create=create,
        error_code=_code,
    )
    return await _email(session, uuid.UUID(reference))


async def resend(
    session: AsyncSession,
    email_id: uuid.UUID,
    *,
    actor: str,
    reason: str,
    idempotency_key: str | None = None,
) -> QueuedEmail:
    why = check_reason(reason)
    original = await _email(session, email_id)
    if original.status not in RESENDABLE:
        raise DomainError(
            Code.NOT_RESENDABLE,
            f"Only a SENT or FAILED email can be sent again; this one is {original.status}.",
            "emailId",
        )
    client = await session.get(CorpClient, original.client_id)
    assert client is not None  # the foreign key cascades

    async def create() -> str:
        email = _new_email(
            client, original.notice, origin=EmailOrigin.RESEND, actor=actor, reason=why,
            parent=original,
        )  # fmt: skip
        session.add(email)
        session.add(
            AuditLog(
                actor=actor,
                action="notifier.resend",
                target=f"email:{original.id}->{email.id}",
                reason=why,
            )
        )
        await session.flush()
        metrics.scheduled(session, original.notice)
        await dispatch_now(session)
        return str(email.id)

    reference, _ = await run_once(
        session,
        principal=actor,
        operation="corpEmailResend",
        key=idempotency_key,
        request={"email": str(original.id), "reason": why},
        create=create,
        error_code=_code,
    )
    return await _email(session, uuid.UUID(reference))


async def cancel(
    session: AsyncSession, email_id: uuid.UUID, *, actor: str, reason: str
) -> QueuedEmail:
    why = check_reason(reason)
    email = await _email(session, email_id)
    cancelled = await session.scalar(
        update(QueuedEmail)
        .where(QueuedEmail.id == email_id, QueuedEmail.status == EmailStatus.SCHEDULED)
        .values(status=EmailStatus.CANCELLED, cancel_reason=CancelReason.ADMIN, updated_at=utcnow())
        .returning(QueuedEmail.id)
    )
    if cancelled is None:
        await session.refresh(email)
        raise DomainError(
            Code.NOT_CANCELLABLE,
            f"Only a SCHEDULED email can be cancelled; this one is {email.status}.",
            "emailId",
        )
    session.add(
        AuditLog(actor=actor, action="notifier.cancel", target=f"email:{email_id}", reason=why)
    )
    metrics.cancelled(session, email.notice, CancelReason.ADMIN)
    await session.refresh(email)
    return email


async def client_by_key(session: AsyncSession, client_id: str) -> CorpClient:
    found = await reading.client_by_external_id(session, client_id)
    if found is None:
        raise DomainError(Code.UNKNOWN_CLIENT, "No client has this id.", "clientId")
    return found
