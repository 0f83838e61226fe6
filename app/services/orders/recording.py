"""Order registration (`orderRecord`, `orderRecordBatch`): store each order once, queue it.

The orders and their scheduling are written in one transaction, so an order that was
accepted is processed even if the broker is down at that moment (the sweeper relays the
job later). Orders are facts: they are stored as reported and marked pending
(`pending_at`); the rows themselves are the consumer's queue, and one outbox job per request
(per `queue.JOB_USERS` users) processes the pending orders of the users that had no job
scheduled (`app/services/orders/queue.py` has the protocol).

An order id seen before is compared with what was stored:
- same content and status: DUPLICATE, nothing changes;
- same content, a status that moves forward (IN_PROGRESS → anything, COMPLETE → CANCELLED or
  REFUNDED, CANCELLED ↔ REFUNDED): STATUS_CHANGED, pending again (a cancelled order gives
  its count back while the goal is ACTIVE);
- anything else: ORDER_CONFLICT, the first report is kept and the conflict logged and counted.

The lean path (docs/architecture.md): every statement is a `HotStatement`. A new order costs
one statement on PostgreSQL (a CTE: insert the order unless its user is unknown or deleted,
`ON CONFLICT DO NOTHING`, and upsert the user's queue row) plus, when the user had no job
scheduled, the outbox row (`outbox.enqueue_unique`): two. A batch costs three whatever its
size: the inserts (one round trip: asyncpg's pipelined `fetchmany`, sorted by user and
order id), then the queue upserts (one round trip, sorted by user), then the outbox rows.
Every request takes its order rows before its queue rows, in that order, so concurrent
requests can't deadlock (a per-order CTE in a batch could: it would hold a user's queue row
while waiting for another of the user's orders). Orders not inserted (a
repeat, a conflict, an unknown user) cost two more reads (the stored rows `FOR UPDATE`, the
users' status), and status changes one UPDATE and one queue upsert, each for the whole batch.
On SQLite (not a volume target) the CTE is two statements per order.

A batch is validated whole first: bad input refuses the batch, naming the field
(`orders.3.price.currency`), and writes nothing. Then each order gets its own outcome: NEW,
DUPLICATE, STATUS_CHANGED, or an error (ORDER_CONFLICT, UNKNOWN_USER) that leaves the
others recorded. The same order id twice in one batch is handled in input order (the
second is a DUPLICATE, a status change or a conflict of the first).
"""

from __future__ import annotations

import enum
import hashlib
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy import bindparam, case, exists, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.lean import HotStatement
from app.models.base import utcnow
from app.models.identity import User, UserStatus
from app.models.orders import Order, OrderQueue
from app.services.errors import DomainError
from app.services.orders import queue
from app.services.orders.codes import OrderErrorCode
from app.services.orders.facts import OrderFacts, OrderKind, OrderStatus
from app.services.orders.metrics import ORDERS_RECORDED
from app.services.validation import check_json

log = structlog.get_logger("engage.goals")

# The actors recorded orders are queued for (with user_ids=[...]); see `queue`.
CONSUMERS: tuple[str, ...] = (queue.CONSUMER,)
MAX_BATCH = 500

MAX_DATA_BYTES = 4096
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Matched with `fullmatch`: `$` would also accept a trailing newline.
_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_LABEL = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # ride class, payment method

_FORWARD: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.IN_PROGRESS: frozenset(OrderStatus),
    OrderStatus.COMPLETE: frozenset({OrderStatus.CANCELLED, OrderStatus.REFUNDED}),
    OrderStatus.CANCELLED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.REFUNDED: frozenset({OrderStatus.CANCELLED}),
}


class RecordOutcome(enum.StrEnum):
    NEW = "NEW"
    DUPLICATE = "DUPLICATE"
    STATUS_CHANGED = "STATUS_CHANGED"


@dataclass(frozen=True)
class OrderInput:
    order_id: str
    user_id: uuid.UUID
    kind: OrderKind
    status: OrderStatus
    ride_class: str | None
    payment_method: str | None
    price_minor: int
    currency: str
    ordered_at: datetime
    completed_at: datetime | None
    city_timezone: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedOrder:
    order_id: str
    status: OrderStatus
    recorded_at: datetime


@dataclass(frozen=True)
class RecordResult:
    outcome: RecordOutcome
    order: RecordedOrder


async def record_order(session: AsyncSession, order: OrderInput) -> RecordResult:
    """Store `order` once and queue its processing; raises DomainError naming the field."""
    validate(order)
    [outcome] = await _record(session, [order])
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


async def record_orders(
    session: AsyncSession, orders: Sequence[OrderInput]
) -> list[RecordResult | DomainError]:
    """Store a batch (at most MAX_BATCH): one outcome per order, in order.

    Raises DomainError, writing nothing, for a batch too large or any order's bad input
    (the field is `orders.<index>.<field>`).
    """
    check_batch_size(len(orders))
    for index, order in enumerate(orders):
        try:
            validate(order)
        except DomainError as exc:
            raise within_batch(exc, index) from None
    return await _record(session, orders)


def check_batch_size(count: int) -> None:
    if count > MAX_BATCH:
        raise DomainError(
            OrderErrorCode.TOO_MANY_ORDERS, f"Send at most {MAX_BATCH} orders at once.", "orders"
        )


def within_batch(exc: DomainError, index: int) -> DomainError:
    """The error of the batch's order `index`, its field prefixed with `orders.<index>`."""
    where = f"orders.{index}" + (f".{exc.field}" if exc.field else "")
    return DomainError(exc.code, exc.message, where)


def order_data(value: object) -> dict[str, Any]:
    """The order's free-form `data`: a JSON object, {} when absent."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DomainError(OrderErrorCode.INVALID_DATA, "Give a JSON object.", "data")
    return value


def validate(order: OrderInput) -> None:
    if not _ORDER_ID.fullmatch(order.order_id):
        raise DomainError(
            OrderErrorCode.INVALID_ORDER_ID,
            "Give 1-64 characters: letters, digits and . _ : -",
            "orderId",
        )
    for value, name in ((order.ride_class, "rideClass"), (order.payment_method, "paymentMethod")):
        if value is not None and not _LABEL.fullmatch(value):
            raise DomainError(
                OrderErrorCode.INVALID_ORDER, "Give a lowercase name of 1-32 characters.", name
            )
    # The DateTime scalar accepts times without an offset: refuse them before comparing.
    for moment, name in ((order.ordered_at, "createdAt"), (order.completed_at, "completedAt")):
        if moment is not None and moment.tzinfo is None:
            raise DomainError(
                OrderErrorCode.INVALID_ORDER, "Give the time with a timezone offset.", name
            )
    if order.completed_at is not None and order.completed_at < order.ordered_at:
        raise DomainError(
            OrderErrorCode.INVALID_ORDER, "An order completes after it is created.", "completedAt"
        )
    _check_not_future(order)
    _facts(order)  # price, currency, timezone, completion time
    check_json(order.data, "data", OrderErrorCode.INVALID_DATA, max_bytes=MAX_DATA_BYTES)


def _check_not_future(order: OrderInput) -> None:
    """Times from the future beyond a clock skew would count towards goals not yet running."""
    latest = utcnow() + MAX_CLOCK_SKEW
    for moment, name in ((order.ordered_at, "createdAt"), (order.completed_at, "completedAt")):
        if moment is not None and moment > latest:
            raise DomainError(
                OrderErrorCode.INVALID_ORDER,
                f"The time is more than {MAX_CLOCK_SKEW.seconds // 60} minutes in the future.",
                name,
            )


def _facts(order: OrderInput) -> OrderFacts:
    return OrderFacts(
        order_id=order.order_id,
        kind=order.kind,
        status=order.status,
        ride_class=order.ride_class,
        payment_method=order.payment_method,
        price_minor=order.price_minor,
        currency=order.currency,
        completed_at=order.completed_at,
        city_timezone=order.city_timezone,
    )


def content_hash(order: OrderInput) -> str:
    """Everything but the status and completion time, which may legitimately change."""
    canonical = {
        "userId": str(order.user_id),
        "kind": order.kind.value,
        "rideClass": order.ride_class,
        "paymentMethod": order.payment_method,
        "priceMinor": order.price_minor,
        "currency": order.currency,
        "orderedAt": order.ordered_at.timestamp(),
        "cityTimezone": order.city_timezone,
        "data": order.data,
    }
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _row_values(order: OrderInput) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "kind": order.kind.value,
        "status": order.status.value,
        "ride_class": order.ride_class,
        "payment_method": order.payment_method,
        "price_minor": order.price_minor,
        "currency": order.currency,
        "ordered_at": order.ordered_at,
        "completed_at": order.completed_at,
        "city_timezone": order.city_timezone,
        "data": order.data,
        "content_hash": content_hash(order),
    }


# ---- the statements (built once) ---------------------------------------------------------

_COLUMNS = (
    "order_id",
    "user_id",
    "kind",
    "status",
    "ride_class",
    "payment_method",
    "price_minor",
    "currency",
    "ordered_at",
    "completed_at",
    "city_timezone",
    "data",
    "content_hash",
)
_ORDERS = Order.__table__.c
_QUEUES = OrderQueue.__table__.c


def _param(name: str, column: str | None = None) -> Any:
    return bindparam(name, type_=_ORDERS[column or name].type)


def _order_select() -> Any:
    """The row to insert (`pending_at`, `created_at`, `updated_at` = now), only for a user
    that exists and is not DELETED: the user check folded into the insert."""
    known = exists().where(User.id == _param("user_id"), User.status != UserStatus.DELETED)
    return select(
        *(_param(name) for name in _COLUMNS),
        _param("now", "pending_at"),
        _param("now", "created_at"),
        _param("now", "updated_at"),
    ).where(known)


def _insert_order(insert: Callable[[Any], Any]) -> Any:
    return (
        insert(Order)
        .from_select([*_COLUMNS, "pending_at", "created_at", "updated_at"], _order_select())
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(Order.order_id, Order.user_id, Order.created_at)
    )


def _queue_upsert(insert: Callable[[Any], Any], rows: Any) -> Any:
    """Upsert the queue rows of `rows.c.user_id`; `queued_at` comes back as `now` when this
    request created the row (or found it stale), i.e. when it must schedule a job."""
    now = bindparam("now", type_=_QUEUES["queued_at"].type)
    statement = insert(OrderQueue).from_select(
        ["user_id", "queued_at", "created_at", "updated_at"],
        select(rows.c.user_id, now, now, now).where(true()),  # SQLite: INSERT … SELECT … WHERE
    )
    return statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={
            "updated_at": now,
            "queued_at": case(
                (
                    OrderQueue.queued_at < bindparam("stale", type_=_QUEUES["queued_at"].type),
                    now,
                ),
                else_=OrderQueue.queued_at,
            ),
        },
    ).returning(OrderQueue.user_id, OrderQueue.queued_at)


def _record_cte() -> Any:
    inserted = _insert_order(postgresql.insert).cte("inserted")
    queued = _queue_upsert(postgresql.insert, inserted).cte("queued")
    return select(
        inserted.c.order_id, inserted.c.user_id, inserted.c.created_at, queued.c.queued_at
    ).select_from(inserted.outerjoin(queued, true()))


def _queue_one(insert: Callable[[Any], Any]) -> Any:
    one = select(bindparam("user_id", type_=_QUEUES["user_id"].type).label("user_id"))
    return _queue_upsert(insert, one.subquery("one"))


# PostgreSQL, one order: one statement (the CTE). A batch on PostgreSQL: the inserts, then
# the queue upserts, each pipelined. SQLite: the insert, then the queue upsert, per order.
_RECORD = HotStatement(_record_cte())
_INSERT = {
    "postgresql": HotStatement(_insert_order(postgresql.insert)),
    "sqlite": HotStatement(_insert_order(sqlite.insert)),
}
_QUEUE = {
    "postgresql": HotStatement(_queue_one(postgresql.insert)),
    "sqlite": HotStatement(_queue_one(sqlite.insert)),
}
_STORED = HotStatement(
    select(
        Order.order_id,
        Order.user_id,
        Order.status,
        Order.completed_at,
        Order.content_hash,
        Order.created_at,
    )
    .where(Order.order_id == bindparam("order_id"))
    .with_for_update(key_share=True)  # NO KEY UPDATE: the ledger's foreign keys don't wait
)
_USER = HotStatement(select(User.id, User.status).where(User.id == bindparam("user_id")))
_CHANGE = HotStatement(
    update(Order)
    .where(Order.order_id == bindparam("b_order_id"))
    .values(
        status=bindparam("b_status", type_=_ORDERS["status"].type),
        completed_at=bindparam("b_completed_at", type_=_ORDERS["completed_at"].type),
        pending_at=bindparam("now", type_=_ORDERS["pending_at"].type),
        updated_at=bindparam("now", type_=_ORDERS["updated_at"].type),
    )
)


# ---- recording -----------------------------------------------------------------------------


@dataclass
class _Stored:
    """An order as stored, updated in memory by the batch's own status changes."""

    order_id: str
    user_id: uuid.UUID
    status: OrderStatus
    completed_at: datetime | None
    content_hash: str
    created_at: datetime
    changed: bool = False


async def _record(
    session: AsyncSession, orders: Sequence[OrderInput]
) -> list[RecordResult | DomainError]:
    """Validated orders: insert the new ones, compare the rest, queue what changed."""
    now = utcnow()
    stale = now - queue.STALE_AFTER
    rows = [_row_values(order) for order in orders]
    # Row locks in one order (user, then order id) for every request: no deadlocks.
    ordering = sorted(range(len(rows)), key=lambda i: (rows[i]["user_id"], rows[i]["order_id"]))
    dialect = queue.dialect(session)
    inserted: dict[str, datetime] = {}
    fresh: set[uuid.UUID] = set()
    if dialect == "postgresql" and len(rows) == 1:
        for row in await _RECORD.rows(session, **rows[0], now=now, stale=stale):
            inserted[row.order_id] = row.created_at
            if row.queued_at == now:
                fresh.add(row.user_id)
    elif dialect == "postgresql":
        # Every order first, then the queue rows: a batch that took a user's queue row
        # never waits for one of that user's orders (which another batch may hold waiting
        # for that queue row), so concurrent batches can't deadlock.
        params = [{**rows[i], "now": now} for i in ordering]
        added = await _INSERT["postgresql"].rows_many(session, params)
        inserted = {row.order_id: row.created_at for row in added}
        fresh = await _queue_users(session, dialect, {row.user_id for row in added}, now, stale)
    else:
        for i in ordering:
            row = await _INSERT["sqlite"].one_or_none(session, **rows[i], now=now)
            if row is not None:
                inserted[row.order_id] = row.created_at
                fresh |= await _queue_users(session, dialect, {row.user_id}, now, stale)
    outcomes: list[RecordResult | DomainError | None] = [None] * len(orders)
    repeats: list[int] = []
    first_seen: set[str] = set()
    for index, order in enumerate(orders):
        if order.order_id in inserted and order.order_id not in first_seen:
            first_seen.add(order.order_id)
            outcomes[index] = _result(RecordOutcome.NEW, order, inserted[order.order_id])
            ORDERS_RECORDED.labels(RecordOutcome.NEW.value).inc()
        else:
            repeats.append(index)
    if repeats:
        changed_users = await _compare_repeats(session, orders, rows, repeats, outcomes, now)
        fresh |= await _queue_users(session, dialect, changed_users, now, stale)
    await _schedule(session, fresh, now)
    return [outcome for outcome in outcomes if outcome is not None]


async def _compare_repeats(
    session: AsyncSession,
    orders: Sequence[OrderInput],
    rows: Sequence[dict[str, Any]],
    repeats: Sequence[int],
    outcomes: list[RecordResult | DomainError | None],
    now: datetime,
) -> set[uuid.UUID]:
    """The orders that were not inserted, in input order; the users with a status change."""
    ids = sorted({orders[i].order_id for i in repeats})
    stored = {
        row.order_id: _Stored(
            row.order_id,
            row.user_id,
            OrderStatus(row.status),
            row.completed_at,
            row.content_hash,
            row.created_at,
        )
        for row in await _STORED.rows_many(session, [{"order_id": i} for i in ids])
    }
    users = sorted({orders[i].user_id for i in repeats})
    can_order = {
        row.id
        for row in await _USER.rows_many(session, [{"user_id": u} for u in users])
        if row.status is not UserStatus.DELETED
    }
    for index in repeats:
        order = orders[index]
        found = stored.get(order.order_id)
        if order.user_id not in can_order or found is None:
            # Not inserted and not stored: the user is unknown or deleted (a known user's
            # order that lost an insert race is stored: the read above waited for it).
            outcomes[index] = DomainError(OrderErrorCode.UNKNOWN_USER, "No such user.", "userId")
            continue
        try:
            outcome = _compare(found, order, rows[index]["content_hash"])
        except DomainError as exc:
            outcomes[index] = exc
            continue
        ORDERS_RECORDED.labels(outcome.value).inc()
        outcomes[index] = RecordResult(
            outcome, RecordedOrder(found.order_id, found.status, found.created_at)
        )
    changes = [found for found in stored.values() if found.changed]
    await _CHANGE.execute_many(
        session,
        [
            {
                "b_order_id": found.order_id,
                "b_status": found.status.value,
                "b_completed_at": found.completed_at,
                "now": now,
            }
            for found in changes
        ],
    )
    return {found.user_id for found in changes}


async def _queue_users(
    session: AsyncSession,
    dialect: str,
    user_ids: set[uuid.UUID],
    now: datetime,
    stale: datetime,
) -> set[uuid.UUID]:
    """Upsert the users' queue rows; the users this request must schedule a job for."""
    rows = await _QUEUE[dialect].rows_many(
        session, [{"user_id": u, "now": now, "stale": stale} for u in sorted(user_ids)]
    )
    return {row.user_id for row in rows if row.queued_at == now}


def _result(outcome: RecordOutcome, order: OrderInput, recorded_at: datetime) -> RecordResult:
    return RecordResult(outcome, RecordedOrder(order.order_id, order.status, recorded_at))


def _compare(stored: _Stored, order: OrderInput, new_hash: str) -> RecordOutcome:
    if stored.content_hash != new_hash:
        _conflict(stored, "the order's content differs from its first report")
    if order.status is stored.status:
        if order.completed_at is not None and order.completed_at != stored.completed_at:
            _conflict(stored, "the completion time differs from the first report")
        return RecordOutcome.DUPLICATE
    if order.status not in _FORWARD[stored.status]:
        _conflict(stored, f"the status can't go from {stored.status} to {order.status}")
    if stored.completed_at is None:
        stored.completed_at = order.completed_at
    elif order.completed_at is not None and order.completed_at != stored.completed_at:
        _conflict(stored, "the completion time differs from the first report")
    stored.status = order.status
    stored.changed = True
    return RecordOutcome.STATUS_CHANGED


def _conflict(stored: _Stored, why: str) -> None:
    log.warning("goals.order_conflict", order_id=stored.order_id, reason=why)
    ORDERS_RECORDED.labels("CONFLICT").inc()
    raise DomainError(
        OrderErrorCode.ORDER_CONFLICT,
        f"Order {stored.order_id} was already recorded and {why}; the first report is kept.",
        "orderId",
    )


async def _schedule(session: AsyncSession, fresh: set[uuid.UUID], now: datetime) -> None:
    """One job per `queue.JOB_USERS` users that had none scheduled.

    `enqueue_unique` writes the outbox row with one Core INSERT (no ORM object); its key
    names the queue generation, so it is unique by construction.
    """
    for user_ids in queue.job_batches(list(fresh)):
        for consumer in CONSUMERS:
            await outbox.enqueue_unique(
                session, consumer, dedupe_key=queue.dedupe_key(user_ids, now), user_ids=user_ids
            )
