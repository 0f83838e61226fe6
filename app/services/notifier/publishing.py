"""`corpEventPublish`: store a corporate event, bring the client up to date, and schedule the
event's handling through the outbox (a volume path: prebuilt statements, no ORM).

Statements: the insert, which also finds the client (`INSERT … SELECT … FROM corp_clients
… ON CONFLICT (idempotency_key) DO NOTHING RETURNING`); the client's update, for the types
that carry state; the outbox row. A repeat of a key reads the stored event instead: the same
content is the same event (nothing else happens), other content is refused.

The client's state moves at publish time, in the caller's transaction, so the dispatcher's
send-time checks see a top-up or a first ride as soon as it is published, before its
handling job runs. Each state write is monotonic (the balance only from a newer event, the
first ride the earliest, activation the first), so an event applied late changes nothing
it shouldn't.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.lean import HotStatement
from app.models.base import utcnow
from app.models.notifier import CorpClient, CorpEvent, CorpEventType
from app.services.errors import DomainError
from app.services.idempotency import MAX_KEY_LENGTH, fingerprint
from app.services.notifier import events as event_types
from app.services.notifier import metrics
from app.services.notifier.clients import check_client_id
from app.services.notifier.codes import NotifierErrorCode as Code

HANDLE_ACTOR = "notifier.handle_event"
MAX_FUTURE = timedelta(minutes=5)
_EVENT_COLUMNS = (
    "id", "type", "payload", "idempotency_key", "fingerprint", "occurred_at", "published_by",
    "created_at",
)  # fmt: skip


def _param(name: str) -> Any:
    return bindparam(name, type_=CorpEvent.__table__.c[name].type)


def _insert(insert: Callable[[Any], Any]) -> Any:
    found = select(CorpClient.id, *(_param(name) for name in _EVENT_COLUMNS)).where(
        CorpClient.external_id == bindparam("external_id")
    )
    return (
        insert(CorpEvent)
        .from_select(["client_id", *_EVENT_COLUMNS], found)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(CorpEvent.id)
    )


_INSERT = {
    "postgresql": HotStatement(_insert(postgresql.insert)),
    "sqlite": HotStatement(_insert(sqlite.insert)),
}
_FIND = HotStatement(
    select(CorpEvent.id, CorpEvent.fingerprint).where(CorpEvent.idempotency_key == bindparam("key"))
)
_CLIENT_KNOWN = HotStatement(
    select(CorpClient.id).where(CorpClient.external_id == bindparam("external_id"))
)


def _client_update(**values: Any) -> HotStatement:
    return HotStatement(
        update(CorpClient)
        .where(CorpClient.external_id == bindparam("b_external_id"))
        .values(**values, updated_at=bindparam("b_now", type_=CorpClient.updated_at.type))
    )


def _at() -> Any:
    return bindparam("b_at", type_=CorpClient.updated_at.type)


def _first(column: Any) -> Any:
    """The earliest of the stored time and this event's."""
    return case((or_(column.is_(None), column > _at()), _at()), else_=column)


def _latest(column: Any) -> Any:
    """The latest of the stored time and this event's."""
    return case((column > _at(), column), else_=_at())


def _balance(*, paid: bool = False) -> HotStatement:
    newer = or_(CorpClient.balance_as_of.is_(None), CorpClient.balance_as_of <= _at())
    values: dict[str, Any] = {
        "balance_minor": case(
            (newer, bindparam("b_balance", type_=CorpClient.balance_minor.type)),
            else_=CorpClient.balance_minor,
        ),
        "balance_as_of": case((newer, _at()), else_=CorpClient.balance_as_of),
    }
    if paid:
        values["last_payment_at"] = _latest(CorpClient.last_payment_at)
    return _client_update(**values)


_SET_BALANCE = _balance()
_SET_PAYMENT = _balance(paid=True)
_SET_PAYMENT_ONLY = _client_update(last_payment_at=_latest(CorpClient.last_payment_at))
_SET_ACTIVATED = _client_update(activated_at=_first(CorpClient.activated_at))
_SET_FIRST_RIDE = _client_update(first_ride_at=_first(CorpClient.first_ride_at))
_SET_LIMIT = _client_update(limit_reached_at=_latest(CorpClient.limit_reached_at))


@dataclass(frozen=True, slots=True)
class Published:
    event_id: uuid.UUID
    duplicate: bool  # the key was published before with the same content


def _check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise DomainError(
            Code.INVALID_IDEMPOTENCY_KEY,
            f"idempotencyKey is 1-{MAX_KEY_LENGTH} printable characters.",
            "idempotencyKey",
        )
    return key


def _occurred(value: datetime | None, now: datetime) -> datetime:
    if value is None:
        return now
    if value.tzinfo is None or value > now + MAX_FUTURE:
        raise DomainError(
            Code.INVALID_FIELD, "occurredAt is a past time with an offset.", "occurredAt"
        )
    return value


async def publish(
    session: AsyncSession,
    *,
    type_name: str,
    client_id: str,
    payload: Any,
    idempotency_key: str,
    occurred_at: datetime | None = None,
    publisher: str,
) -> Published:
    """Store the event and enqueue its handling; a repeat of the key changes nothing."""
    kind = event_types.event_type(type_name)
    check_client_id(client_id)
    checked = event_types.check_payload(kind, payload)
    key = _check_key(idempotency_key)
    now = utcnow()
    at = _occurred(occurred_at, now)
    stored = event_types.stored(checked)
    print_ = fingerprint({"type": kind.value, "client": client_id, "payload": stored})
    dialect = session.get_bind().dialect.name
    event_id = await _INSERT[dialect].scalar(
        session,
        id=uuid.uuid4(),
        type=kind,
        payload=stored,
        idempotency_key=key,
        fingerprint=print_,
        occurred_at=at,
        published_by=publisher,
        created_at=now,
        external_id=client_id,
    )
    if event_id is None:
        return await _repeat(session, key, print_, client_id)
    await _apply(session, kind, checked, client_id, at)
    outbox.enqueue(session, HANDLE_ACTOR, event_id=str(event_id))
    metrics.published(session, kind.value)
    return Published(event_id, duplicate=False)


async def _repeat(session: AsyncSession, key: str, print_: str, client_id: str) -> Published:
    found = await _FIND.one_or_none(session, key=key)
    if found is None:
        if await _CLIENT_KNOWN.scalar(session, external_id=client_id) is None:
            raise DomainError(Code.UNKNOWN_CLIENT, "No client has this id.", "clientId")
        raise DomainError(  # pragma: no cover - the key's row vanished between statements
            Code.IDEMPOTENCY_KEY_REUSED, "Publish again.", "idempotencyKey"
        )
    if found.fingerprint != print_:
        raise DomainError(
            Code.IDEMPOTENCY_KEY_REUSED,
            "This idempotencyKey was used for an event with other content.",
            "idempotencyKey",
        )
    return Published(found.id, duplicate=True)


async def _apply(
    session: AsyncSession,
    kind: CorpEventType,
    payload: Mapping[str, Any],
    client_id: str,
    at: datetime,
) -> None:
    params: dict[str, Any] = {"b_external_id": client_id, "b_at": at, "b_now": utcnow()}
    if kind in (CorpEventType.BALANCE_CHANGED, CorpEventType.FINANCIAL_UNBLOCK):
        await _SET_BALANCE.execute(session, **params, b_balance=payload["balanceMinor"])
    elif kind is CorpEventType.PAYMENT_RECEIVED and "balanceMinor" in payload:
        await _SET_PAYMENT.execute(session, **params, b_balance=payload["balanceMinor"])
    elif kind is CorpEventType.PAYMENT_RECEIVED:
        await _SET_PAYMENT_ONLY.execute(session, **params)
    elif kind is CorpEventType.CONTRACT_ACTIVATED:
        await _SET_ACTIVATED.execute(session, **params)
    elif kind is CorpEventType.RIDE_TAKEN:
        await _SET_FIRST_RIDE.execute(session, **{**params, "b_at": payload["takenAt"]})
    elif kind is CorpEventType.LIMIT_REACHED:
        await _SET_LIMIT.execute(session, **params)
