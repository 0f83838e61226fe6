"""The dispatcher: claim due emails, re-check them, render, send, record (SPEC §4).

One batch is two short transactions around the network, so no row lock is held while SMTP
talks:

1. **claim** — `UPDATE … SET status = 'SENDING', claim_token, lease_until, attempts + 1
   WHERE id IN (SELECT … WHERE due … ORDER BY due_at LIMIT n FOR UPDATE SKIP LOCKED)
   RETURNING …`: several dispatchers at once take disjoint rows (on SQLite the unit of work
   holds the write lock, so claims take turns). Then, for every claimed row, the send-time
   checks, in this order: expired → CANCELLED/EXPIRED (never sent late); no recipients;
   unsubscribed from a non-critical notice; the rule's `still_due` conditions against the
   client **as it is now** → CANCELLED/CONDITION (a reminder never goes out after the client
   did the thing, even if no cancel event came); the throttle (an atomic counter per client,
   notice and window: `INSERT … ON CONFLICT DO UPDATE SET used = used + 1 WHERE used < max
   RETURNING`) → CANCELLED/THROTTLED. What is left is rendered with the notice's current
   template in the email's locale; a template that fails to render fails the email.
2. **send** — outside any transaction, over one backend session (one SMTP connection).
3. **record** — each outcome is written only where the claim token still matches (a row
   whose lease lapsed and was claimed again is the other dispatcher's now): SENT; a
   transient error → SCHEDULED again, due after an exponential backoff
   (`base · 2^(attempts-1)`, capped); a permanent error, or the last allowed attempt →
   FAILED with the error kept. Every attempt is a row in `email_delivery_attempts`, and a
   failed or retried email gives its throttle slot back.

A dispatcher that dies between 2 and 3 leaves SENDING rows whose lease lapses; they are
claimed again and may be delivered twice — the one duplicate SMTP allows. The Message-ID
is the email's id on every attempt, so receiving systems can tell.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.integrations.mail import DeliveryError, MailBackend, OutgoingEmail
from app.models.notifier import (
    AttemptOutcome,
    CancelReason,
    CorpEventType,
)
from app.services.notifier import conditions, events, metrics, templates
from app.services.notifier import queue_statements as sql
from app.services.notifier.clients import client_view, template_client
from app.services.notifier.handling import rules_by_version
from app.services.notifier.rules import Rule

_ERROR_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    batch_size: int
    max_attempts: int
    retry_base: timedelta
    retry_max: timedelta
    lease: timedelta
    sender: str
    cabinet_url: str


@dataclass(frozen=True, slots=True)
class Slot:
    """A throttle slot: one of `max` emails of a notice for a client in a window."""

    client_id: uuid.UUID
    notice: str
    window_start: datetime
    max: int

    def key(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "notice": self.notice,
            "window_start": self.window_start,
        }


@dataclass(frozen=True, slots=True)
class Ready:
    """A claimed email, rendered, to be sent."""

    email_id: uuid.UUID
    notice: str
    attempt: int
    send_at: datetime
    template_version: int
    message: OutgoingEmail
    slot: Slot | None  # the throttle slot it holds, if any


@dataclass(frozen=True, slots=True)
class Outcome:
    ready: Ready
    error: DeliveryError | None = None


@dataclass
class Batch:
    token: str
    claimed: int
    ready: list[Ready]
    cancelled: int = 0
    failed: int = 0  # failed before sending (a template that does not render)


def window_start(now: datetime, period: timedelta) -> datetime:
    """The fixed throttle window `now` falls in (windows are aligned to the epoch)."""
    seconds = int(period.total_seconds())
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=now.tzinfo)


def backoff(config: DispatchConfig, attempts: int) -> timedelta:
    delay = config.retry_base * (2 ** max(0, attempts - 1))
    return min(delay, config.retry_max)


async def claim(session: AsyncSession, config: DispatchConfig, *, now: datetime) -> Batch:
    """Claim a batch of due emails, cancel what must not go, render the rest."""
    token = secrets.token_hex(16)
    rows = await sql.CLAIM.rows(
        session, now=now, limit=config.batch_size, b_token=token, b_lease=now + config.lease
    )
    batch = Batch(token=token, claimed=len(rows), ready=[])
    if not rows:
        return batch
    context = await _Context.load(session, rows)
    cancels: list[dict[str, Any]] = []
    for row in rows:
        reason = _why_not(row, context, now)
        slot = _slot(row, context, now)
        if reason is None and slot is not None and not await _take_slot(session, slot):
            reason = CancelReason.THROTTLED
        if reason is not None:
            cancels.append({"email_id": row.id, "token": token, "b_reason": reason, "b_now": now})
            metrics.cancelled(session, row.notice, reason)
            continue
        ready = _render(row, context, config, slot)
        if isinstance(ready, str):
            await _fail_unrendered(session, row, token, ready, now)
            batch.failed += 1
            continue
        batch.ready.append(ready)
    await sql.MARK_CANCELLED.execute_many(session, cancels)
    batch.cancelled = len(cancels)
    return batch


@dataclass
class _Context:
    clients: dict[uuid.UUID, Any]
    payloads: dict[uuid.UUID, dict[str, Any]]
    critical: dict[str, bool]
    unsubscribed: set[tuple[uuid.UUID, str]]
    rules: dict[uuid.UUID, Rule]
    templates: dict[tuple[str, str], Any]

    def rule_of(self, row: Any) -> Rule | None:
        return self.rules.get(row.rule_version_id) if row.rule_version_id else None

    @classmethod
    async def load(cls, session: AsyncSession, rows: Sequence[Any]) -> _Context:
        dialect = session.get_bind().dialect.name
        client_ids = list({row.client_id for row in rows})
        event_ids = list({row.event_id for row in rows if row.event_id is not None})
        version_ids = [row.rule_version_id for row in rows if row.rule_version_id is not None]
        notices = list({row.notice for row in rows})
        clients = await sql.CLIENTS[dialect].rows(session, ids=client_ids)
        event_rows = await sql.EVENTS[dialect].rows(session, ids=event_ids) if event_ids else []
        return cls(
            clients={client.id: client for client in clients},
            payloads={e.id: events.loaded(CorpEventType(e.type), e.payload) for e in event_rows},
            critical={n.key: n.critical for n in await sql.NOTICES.rows(session)},
            unsubscribed={
                (p.client_id, p.notice)
                for p in await sql.UNSUBSCRIBED[dialect].rows(session, ids=client_ids)
            },
            rules=await rules_by_version(session, version_ids) if version_ids else {},
            templates={
                (t.notice, t.locale): t
                for t in await sql.TEMPLATES[dialect].rows(session, notices=notices)
            },
        )


def _why_not(row: Any, context: _Context, now: datetime) -> CancelReason | None:
    client = context.clients[row.client_id]
    rule = context.rule_of(row)
    if row.expires_at is not None and now > row.expires_at:
        return CancelReason.EXPIRED
    if not row.recipients:
        return CancelReason.NO_RECIPIENTS
    critical = context.critical.get(row.notice, False)
    if not critical and (row.client_id, row.notice) in context.unsubscribed:
        return CancelReason.UNSUBSCRIBED
    if rule is not None and not conditions.all_hold(rule.still_due, client_view(client), {}):
        return CancelReason.CONDITION
    return None


def _slot(row: Any, context: _Context, now: datetime) -> Slot | None:
    rule = context.rule_of(row)
    if rule is None or rule.throttle is None:
        return None
    throttle = rule.throttle
    return Slot(row.client_id, row.notice, window_start(now, throttle.period), throttle.max)


async def _take_slot(session: AsyncSession, slot: Slot) -> bool:
    dialect = session.get_bind().dialect.name
    used = await sql.TAKE_SLOT[dialect].scalar(session, **slot.key(), max=slot.max)
    return used is not None


def _render(row: Any, context: _Context, config: DispatchConfig, slot: Slot | None) -> Ready | str:
    template = context.templates.get((row.notice, row.locale))
    if template is None:
        return f"no {row.locale} template for {row.notice}"
    client = context.clients[row.client_id]
    source = templates.TemplateSource(template.subject, template.text_body, template.html_body)
    values = templates.template_context(
        client=template_client(client),
        event=context.payloads.get(row.event_id, {}) if row.event_id else {},
        cabinet_url=config.cabinet_url,
        notice=row.notice,
        locale=row.locale,
    )
    try:
        rendered = templates.render(source, values)
    except templates.TemplateRenderError as exc:
        first = exc.problems[0]
        where = f"{row.notice}/{row.locale} v{template.version} {first.part} line {first.line}"
        return f"template {where}: {first.message}"
    return Ready(
        email_id=row.id,
        notice=row.notice,
        attempt=row.attempts,
        send_at=row.send_at,
        template_version=template.version,
        message=OutgoingEmail(
            message_id=f"<{row.id}@notifier.engage>",
            sender=config.sender,
            recipients=tuple(row.recipients),
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            language=row.locale,
            headers={"X-Engage-Notice": row.notice, "X-Engage-Email-Id": str(row.id)},
        ),
        slot=slot,
    )


async def _fail_unrendered(
    session: AsyncSession, row: Any, token: str, error: str, now: datetime
) -> None:
    await sql.MARK_FAILED.execute(
        session, email_id=row.id, token=token, b_error=error[:_ERROR_LIMIT], b_now=now
    )
    await sql.ATTEMPT.execute(
        session,
        id=uuid.uuid4(),
        email_id=row.id,
        attempt=row.attempts,
        outcome=AttemptOutcome.FAILED,
        error=error[:_ERROR_LIMIT],
        backend="render",
        at=now,
    )
    metrics.failed(session, row.notice)


async def deliver(backend: MailBackend, ready: Sequence[Ready]) -> list[Outcome]:
    """Send the batch over one backend session; never raises for one email's failure."""
    if not ready:
        return []
    async with backend.session() as mail:
        errors = await mail.send_many([item.message for item in ready])
    for error in errors:
        if error is not None:
            metrics.delivery_error(backend.name, error.permanent, error.code)
    return [Outcome(item, error) for item, error in zip(ready, errors, strict=True)]


async def record(
    session: AsyncSession,
    batch: Batch,
    outcomes: Sequence[Outcome],
    config: DispatchConfig,
    *,
    backend: str,
    now: datetime,
) -> None:
    """Write what each send did; a row claimed again by someone else is left alone."""
    sent, retried, failed, attempts, slots = [], [], [], [], []
    for outcome in outcomes:
        item, error = outcome.ready, outcome.error
        base = {"email_id": item.email_id, "token": batch.token, "b_now": now}
        if error is None:
            sent.append(
                {
                    **base,
                    "b_version": item.template_version,
                    "b_subject": item.message.subject[:500],
                }
            )
            metrics.sent(session, item.notice, (now - item.send_at).total_seconds())
            kind = AttemptOutcome.SENT
        elif error.permanent or item.attempt >= config.max_attempts:
            failed.append({**base, "b_error": str(error)[:_ERROR_LIMIT]})
            metrics.failed(session, item.notice)
            kind = AttemptOutcome.FAILED
        else:
            retried.append(
                {
                    **base,
                    "b_error": str(error)[:_ERROR_LIMIT],
                    "b_due": now + backoff(config, item.attempt),
                }
            )
            metrics.retried(session, item.notice)
            kind = AttemptOutcome.RETRY
        if error is not None and item.slot is not None:
            slots.append({f"b_{name}": value for name, value in item.slot.key().items()})
        attempts.append(
            {
                "id": uuid.uuid4(),
                "email_id": item.email_id,
                "attempt": item.attempt,
                "outcome": kind,
                "error": None if error is None else str(error)[:_ERROR_LIMIT],
                "backend": backend,
                "at": now,
            }
        )
    await sql.MARK_SENT.execute_many(session, sent)
    await sql.MARK_RETRY.execute_many(session, retried)
    await sql.MARK_FAILED.execute_many(session, failed)
    await sql.ATTEMPT.execute_many(session, attempts)
    await sql.GIVE_SLOT.execute_many(session, slots)
