"""An event's handling (the `notifier.handle_event` job): withdraw what it cancels, schedule
what it triggers.

Statements, prebuilt: the claim of the event (`UPDATE … SET handled_at … WHERE handled_at IS
NULL RETURNING`: a second delivery, or two at once, finds nothing to do), the client, the
rules the event triggers, the client's pending emails, the versions they came from (only
those not cached), the cancellation, the new rows, and an on-demand dispatch when one is due
now. Rules and their versions are read on every job (admins edit them); a version's parsed
rule is cached, since a version never changes.

Cancelling uses the rules **of the versions that scheduled the emails**: an onboarding
scheduled by version 1 is withdrawn by version 1's cancel events, whatever later versions
say. New emails are inserted with `ON CONFLICT DO NOTHING` on (event, client, notice,
send_at), so one event never queues a notice twice. Steps due now (or in the past) make the
job enqueue a dispatch at once instead of waiting for the minute. Not deduplicated: a
dispatch that started before this transaction committed would not see its emails, and a
dispatch that finds nothing due costs one statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.lean import DIALECTS, HotStatement, one_of
from app.models.base import utcnow
from app.models.notifier import (
    CancelReason,
    CorpClient,
    CorpEvent,
    CorpEventType,
    EmailOrigin,
    EmailStatus,
    NotifierRule,
    NotifierRuleVersion,
    QueuedEmail,
)
from app.services.notifier import conditions, events, metrics, timing
from app.services.notifier.clients import client_view
from app.services.notifier.rules import Rule, cancelling, parse_rule

DISPATCH_ACTOR = "notifier.dispatch_due"
_CACHE_LIMIT = 4096
_rule_cache: dict[uuid.UUID, Rule] = {}

_CLAIM_EVENT = HotStatement(
    update(CorpEvent)
    .where(CorpEvent.id == bindparam("event_id"), CorpEvent.handled_at.is_(None))
    .values(handled_at=bindparam("b_now", type_=CorpEvent.handled_at.type))
    .returning(CorpEvent.type, CorpEvent.client_id, CorpEvent.payload, CorpEvent.occurred_at)
)
CLIENT_COLUMNS = (
    CorpClient.id,
    CorpClient.external_id,
    CorpClient.name,
    CorpClient.emails,
    CorpClient.contract_type,
    CorpClient.balance_minor,
    CorpClient.currency,
    CorpClient.low_balance_threshold_minor,
    CorpClient.locale,
    CorpClient.timezone,
    CorpClient.activated_at,
    CorpClient.first_ride_at,
    CorpClient.last_payment_at,
    CorpClient.limit_reached_at,
)
_CLIENT = HotStatement(select(*CLIENT_COLUMNS).where(CorpClient.id == bindparam("client_id")))
_TRIGGERS = HotStatement(
    select(NotifierRule.key, NotifierRuleVersion.id, NotifierRuleVersion.definition)
    .join(
        NotifierRuleVersion,
        and_(
            NotifierRuleVersion.rule_id == NotifierRule.id,
            NotifierRuleVersion.version == NotifierRule.current_version,
        ),
    )
    .where(NotifierRule.event_type == bindparam("event_type"), NotifierRule.active.is_(True))
    .order_by(NotifierRule.key)
)
_PENDING = HotStatement(
    select(QueuedEmail.id, QueuedEmail.rule_version_id).where(
        QueuedEmail.client_id == bindparam("client_id"),
        QueuedEmail.status == EmailStatus.SCHEDULED,
        QueuedEmail.rule_version_id.is_not(None),
    )
)
_VERSIONS = {
    d: HotStatement(
        select(NotifierRuleVersion.id, NotifierRuleVersion.definition).where(
            one_of(NotifierRuleVersion.id, "ids", d)
        )
    )
    for d in DIALECTS
}
_CANCEL = {
    d: HotStatement(
        update(QueuedEmail)
        .where(one_of(QueuedEmail.id, "ids", d), QueuedEmail.status == EmailStatus.SCHEDULED)
        .values(
            status=EmailStatus.CANCELLED,
            cancel_reason=bindparam("b_reason", type_=QueuedEmail.cancel_reason.type),
            updated_at=bindparam("b_now", type_=QueuedEmail.updated_at.type),
        )
        .returning(QueuedEmail.notice)
    )
    for d in DIALECTS
}
_NEW_COLUMNS = (
    "id", "event_id", "client_id", "notice", "rule_version_id", "rule_key", "origin",
    "recipients", "locale", "send_at", "due_at", "expires_at", "status", "attempts", "reason",
    "created_at", "updated_at",
)  # fmt: skip


def _schedule(insert: Callable[[Any], Any]) -> HotStatement:
    table = QueuedEmail.__table__
    return HotStatement(
        insert(QueuedEmail)
        .values({name: bindparam(name, type_=table.c[name].type) for name in _NEW_COLUMNS})
        .on_conflict_do_nothing(index_elements=["event_id", "client_id", "notice", "send_at"])
        .returning(QueuedEmail.notice, QueuedEmail.send_at)
    )


_SCHEDULE = {"postgresql": _schedule(postgresql.insert), "sqlite": _schedule(sqlite.insert)}


@dataclass(frozen=True, slots=True)
class Handled:
    scheduled: int
    cancelled: int


async def rules_by_version(
    session: AsyncSession, version_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Rule]:
    """The parsed rules of these versions, from the cache or one statement."""
    missing = [v for v in set(version_ids) if v not in _rule_cache]
    if missing:
        dialect = session.get_bind().dialect.name
        for row in await _VERSIONS[dialect].rows(session, ids=missing):
            _remember(row.id, parse_rule(row.definition))
    return {v: _rule_cache[v] for v in version_ids if v in _rule_cache}


def _remember(version_id: uuid.UUID, rule: Rule) -> Rule:
    if len(_rule_cache) >= _CACHE_LIMIT:
        _rule_cache.clear()
    _rule_cache[version_id] = rule
    return rule


def _cached(version_id: uuid.UUID, definition: Mapping[str, Any]) -> Rule:
    found = _rule_cache.get(version_id)
    return found if found is not None else _remember(version_id, parse_rule(definition))


async def handle_event(session: AsyncSession, event_id: uuid.UUID) -> Handled | None:
    """Handle the event once; None if it was handled already (or doesn't exist)."""
    now = utcnow()
    event = await _CLAIM_EVENT.one_or_none(session, event_id=event_id, b_now=now)
    if event is None:
        return None
    client = await _CLIENT.one_or_none(session, client_id=event.client_id)
    if client is None:  # pragma: no cover - the event's foreign key cascades
        return None
    kind = CorpEventType(event.type)
    payload = events.loaded(kind, event.payload)
    view = client_view(client)
    cancelled = await _cancel(session, client.id, kind, view, payload, now)
    rows = _new_rows(
        await _TRIGGERS.rows(session, event_type=kind), event_id, event, client, view, payload, now
    )
    dialect = session.get_bind().dialect.name
    inserted = await _SCHEDULE[dialect].rows_many(session, rows) if rows else []
    for row in inserted:
        metrics.scheduled(session, row.notice)
    if any(row.send_at <= now for row in inserted):
        outbox.enqueue(session, DISPATCH_ACTOR)
    return Handled(scheduled=len(inserted), cancelled=cancelled)


async def _cancel(
    session: AsyncSession,
    client_id: uuid.UUID,
    kind: CorpEventType,
    view: Mapping[str, Any],
    payload: Mapping[str, Any],
    now: datetime,
) -> int:
    pending = await _PENDING.rows(session, client_id=client_id)
    if not pending:
        return 0
    rules = await rules_by_version(session, [row.rule_version_id for row in pending])
    withdrawn = [
        row.id
        for row in pending
        if (rule := rules.get(row.rule_version_id)) is not None
        and any(conditions.all_hold(entry.when, view, payload) for entry in cancelling(rule, kind))
    ]
    if not withdrawn:
        return 0
    dialect = session.get_bind().dialect.name
    notices = await _CANCEL[dialect].rows(
        session, ids=withdrawn, b_reason=CancelReason.EVENT, b_now=now
    )
    for row in notices:
        metrics.cancelled(session, row.notice, CancelReason.EVENT)
    return len(notices)


def _new_rows(
    triggers: Sequence[Any],
    event_id: uuid.UUID,
    event: Any,
    client: Any,
    view: Mapping[str, Any],
    payload: Mapping[str, Any],
    now: datetime,
) -> list[dict[str, Any]]:
    tz = timing.zone(client.timezone)
    rows = []
    for trigger in triggers:
        rule = _cached(trigger.id, trigger.definition)
        if not conditions.all_hold(rule.when, view, payload):
            continue
        for step in rule.steps:
            due = timing.send_at(step.timing, event.occurred_at, tz)
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "event_id": event_id,
                    "client_id": client.id,
                    "notice": step.notice,
                    "rule_version_id": trigger.id,
                    "rule_key": trigger.key,
                    "origin": EmailOrigin.EVENT,
                    "recipients": list(client.emails),
                    "locale": client.locale,
                    "send_at": due,
                    "due_at": due,
                    "expires_at": due + rule.expires_after if rule.expires_after else None,
                    "status": EmailStatus.SCHEDULED,
                    "attempts": 0,
                    "reason": "",
                    "created_at": now,
                    "updated_at": now,
                }
            )
    return rows
