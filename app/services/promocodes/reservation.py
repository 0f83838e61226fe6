"""`purchaseCreate`: a PENDING purchase, with one use of a code reserved, in as few statements
as correctness allows (the lean data path, docs/architecture.md; `app.lean.HotStatement`s,
no ORM objects, no savepoint).

A use is RESERVED until the payment result arrives (`confirmation.py`) or its TTL passes
(`sweeping.py`). `Promocode.uses` grows only through `UPDATE … SET uses = uses + 1 WHERE
max_uses IS NULL OR uses < max_uses`, so under any concurrency a code with N uses is used at
most N times, and at most `max_uses_per_user` times per user.

The statements of a purchase with a code, after the principal's (PostgreSQL):

1. `_READ_CODE`: the code's row, locked `FOR NO KEY UPDATE OF promocodes`, joined with the
   plan and outer-joined with the caller's idempotency record for the key; the grant and the
   code's plan list as EXISTS subqueries. Everything the rules need but the use limits. When
   it finds nothing (an unknown plan or code), the refusal is worked out with small reads in
   SPEC order (`_unread`).
2. `_RESERVE_KEYED` (`_RESERVE` without a key): one statement of data-modifying CTEs. It
   counts the user's holding uses; inserts the idempotency record (`ON CONFLICT DO
   NOTHING`) only below the per-user limit and while the code has a use left; takes the use
   (the conditional UPDATE) only once the record was written; inserts the purchase only if
   the use was taken, and the ledger row only if the purchase was. It returns the count,
   what was written, and the record an earlier call committed. A refusal writes nothing.

The payload needs no statement more: the plan and the code's text came with (1). Without a
code: `_READ_PLAN` (the plan and the record) and one INSERT (`_BUY_KEYED`: the record and
the purchase, the purchase gated on the record).

Locking decisions:
- `uses < max_uses`: correct by construction on both backends (the conditional UPDATE).
- The per-user limit (count the user's holding uses, then insert one) is a check-then-act no
  index can express. PostgreSQL (READ COMMITTED): every reservation of a code takes the
  code's row lock in (1), before it counts, and holds it to its commit; (2) is a new
  statement, so its snapshot is taken after the lock was granted and shows every use the
  lock's previous holders committed. Counting in (1) would be wrong: a statement's snapshot
  predates the lock it waits for (only the locked row itself is read again), so the count
  would miss the use committed by the transaction it waited for. (1) also reads the locked
  row's latest `uses`, which (2) rechecks in SQL. Confirming a timed-out use
  (`confirmation._retake`) takes the same lock before it counts; releases only lower the
  count.
- FOR NO KEY UPDATE, before this transaction references the code: the purchase's and the
  use's foreign keys take KEY SHARE locks on the code's row, which don't conflict with it;
  an update lock asked for after a KEY SHARE deadlocks two reservations (the concurrency
  test found that, issue 5).
- The idempotency record: its unique index (principal, operation, key) decides. A concurrent
  first call with the same key and code waits for the lock in (1); its (2) then sees the
  winner's record and replays the winner's purchase. With another code (so another request:
  IDEMPOTENCY_KEY_REUSED) it waits in (2)'s ON CONFLICT for the winner's commit, writes
  nothing, and reads the winner's record (`find_record`).
- Considered and not done: serialising the per-user count on a transaction advisory lock of
  (code, user) instead, so the code's row lock would be held from (2) only, not from (1).
  An admin applying a code to many users in one transaction (`issuing.apply_code`) holds
  the row lock while it asks for each user's advisory lock, so a buyer holding one of those
  and waiting for the row would deadlock with it.
- SQLite: the unit of work holds the database's write lock from its first statement
  (`BEGIN IMMEDIATE`, `app.db`), so reservations run one after another and the CTEs'
  twins are plain statements in the same order (`_HOLDING`, `_TAKE`, `_INSERT_PURCHASE`,
  `_INSERT_USE`, `_INSERT_RECORD`), each deciding what the CTE's gate decides.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app.lean import HotStatement
from app.models.base import utcnow
from app.models.identity import GroupMember, IdempotencyRecord, UserStatus
from app.models.promocodes import (
    AttemptOperation,
    Audience,
    Plan,
    Promocode,
    PromocodeGrant,
    PromocodeUse,
    Purchase,
    PurchaseStatus,
    Rejection,
    SubscriberEligibility,
    UseStatus,
    promocode_plans,
)
from app.services.errors import DomainError
from app.services.idempotency import check_key, find_record, fingerprint, replay
from app.services.promocodes.attempts import (
    Caller,
    PromocodeRejected,
    RejectionLimits,
    record_attempt,
)
from app.services.promocodes.eligibility import (
    currency_fits,
    is_well_formed,
    limit_rejection,
    period_rejection,
    subscriber_status,
)
from app.services.promocodes.errors import PurchaseErrorCode, purchase_code
from app.services.promocodes.generator import normalize_code
from app.services.promocodes.pricing import final_price
from app.settings import Settings

OPERATION = "purchaseCreate"


@dataclass(frozen=True, slots=True)
class PlanView:
    """A plan as a reservation read it (what `schema` shows of a plan)."""

    id: uuid.UUID
    slug: str
    name: str
    price_minor: int
    currency: str
    duration_days: int
    active: bool


@dataclass(frozen=True, slots=True)
class PurchaseView:
    """A purchase as written or read by `create_purchase`; `plan` and `code` (the code's
    stored text) are set when this call read them, so the API needs no query for them."""

    id: uuid.UUID
    user_id: uuid.UUID
    plan_id: uuid.UUID
    promocode_id: uuid.UUID | None
    status: PurchaseStatus
    list_price_minor: int
    final_price_minor: int
    currency: str
    trial_days: int
    discounted_cycles: int
    created_by: str
    created_at: datetime
    confirmed_at: datetime | None = None
    failed_at: datetime | None = None
    failure_reason: str | None = None
    plan: PlanView | None = None
    code: str | None = None


# ---- statements (built once; see the module docstring) --------------------------------------

_PLAN_COLUMNS = (
    Plan.id.label("plan_id"),
    Plan.slug,
    Plan.name,
    Plan.price_minor,
    Plan.currency.label("plan_currency"),
    Plan.duration_days,
    Plan.active.label("plan_active"),
)
_CODE_COLUMNS = (
    Promocode.id.label("code_id"),
    Promocode.code,
    Promocode.kind,
    Promocode.value,
    Promocode.currency,
    Promocode.valid_from,
    Promocode.valid_until,
    Promocode.max_uses,
    Promocode.max_uses_per_user,
    Promocode.uses,
    Promocode.audience,
    Promocode.eligibility,
    Promocode.trial_days,
    Promocode.discounted_cycles,
    Promocode.active,
)
_RECORD_COLUMNS = (IdempotencyRecord.request_hash, IdempotencyRecord.result_ref)
_THEIR_RECORD = and_(
    IdempotencyRecord.principal == bindparam("principal"),
    IdempotencyRecord.operation == OPERATION,
    IdempotencyRecord.key == bindparam("key"),
)
_GRANTED = exists().where(
    PromocodeGrant.promocode_id == Promocode.id,
    or_(
        PromocodeGrant.user_id == bindparam("user_id"),
        PromocodeGrant.group_id.in_(
            select(GroupMember.group_id).where(GroupMember.user_id == bindparam("user_id"))
        ),
    ),
)
_RESTRICTED = exists().where(promocode_plans.c.promocode_id == Promocode.id)
_LISTED = exists().where(
    promocode_plans.c.promocode_id == Promocode.id, promocode_plans.c.plan_id == Plan.id
)

_READ_CODE = HotStatement(
    select(
        *_CODE_COLUMNS,
        *_PLAN_COLUMNS,
        _GRANTED.label("granted"),
        _RESTRICTED.label("restricted"),
        _LISTED.label("listed"),
        *_RECORD_COLUMNS,
    )
    .select_from(Promocode)
    .join(Plan, Plan.id == bindparam("plan_id"))
    .outerjoin(IdempotencyRecord, _THEIR_RECORD)
    .where(Promocode.code == bindparam("code"))
    .with_for_update(of=Promocode, key_share=True)
)
_READ_PLAN = HotStatement(
    select(*_PLAN_COLUMNS, *_RECORD_COLUMNS)
    .select_from(Plan)
    .outerjoin(IdempotencyRecord, _THEIR_RECORD)
    .where(Plan.id == bindparam("plan_id"))
)
_PURCHASE_BY_ID = HotStatement(
    select(
        Purchase.id,
        Purchase.user_id,
        Purchase.plan_id,
        Purchase.promocode_id,
        Purchase.status,
        Purchase.list_price_minor,
        Purchase.final_price_minor,
        Purchase.currency,
        Purchase.trial_days,
        Purchase.discounted_cycles,
        Purchase.created_by,
        Purchase.created_at,
        Purchase.confirmed_at,
        Purchase.failed_at,
        Purchase.failure_reason,
    ).where(Purchase.id == bindparam("purchase_id"))
)


def _purchase_values(promocode_id: Any) -> dict[str, Any]:
    return {
        "id": bindparam("purchase_id"),
        "user_id": bindparam("user_id"),
        "plan_id": bindparam("plan_id"),
        "promocode_id": promocode_id,
        "status": PurchaseStatus.PENDING,
        "list_price_minor": bindparam("list_price"),
        "final_price_minor": bindparam("final_price"),
        "currency": bindparam("currency"),
        "trial_days": bindparam("trial_days"),
        "discounted_cycles": bindparam("cycles"),
        "created_by": bindparam("created_by"),
        "created_at": bindparam("now"),
        "updated_at": bindparam("now"),
    }


def _use_values(purchase_id: Any, promocode_id: Any) -> dict[str, Any]:
    return {
        "id": bindparam("use_id"),
        "promocode_id": promocode_id,
        "user_id": bindparam("user_id"),
        "purchase_id": purchase_id,
        "status": UseStatus.RESERVED,
        "reserved_until": bindparam("until"),
        "created_at": bindparam("now"),
        "updated_at": bindparam("now"),
    }


_RECORD_VALUES: dict[str, Any] = {
    "id": bindparam("record_id"),
    "principal": bindparam("principal"),
    "operation": OPERATION,
    "key": bindparam("key"),
    "request_hash": bindparam("request_hash"),
    "result_ref": bindparam("purchase_ref"),
    "created_at": bindparam("now"),
    "updated_at": bindparam("now"),
}


def _row_of(table: Table, values: dict[str, Any]) -> tuple[list[str], Select[Any]]:
    """`values` as the column names and the one-row SELECT of an INSERT … SELECT, each
    parameter or constant typed by its column (a VALUES list would type them itself)."""
    expressions: list[ColumnElement[Any]] = []
    for name, value in values.items():
        column = table.c[name]
        if isinstance(value, BindParameter):
            expressions.append(bindparam(value.key, type_=column.type))
        elif isinstance(value, ColumnElement):
            expressions.append(value)
        else:
            expressions.append(literal(value, column.type))
    return list(values), select(*expressions)


_PURCHASES: Table = Purchase.__table__  # type: ignore[assignment]
_USES: Table = PromocodeUse.__table__  # type: ignore[assignment]
_RECORDS: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
_CODE_ID = bindparam("code_id", type_=Promocode.id.type)
_USE_LEFT = or_(Promocode.max_uses.is_(None), Promocode.uses < Promocode.max_uses)


def _stored(column: Any) -> Any:
    """One column of the record an earlier call committed (the statement's snapshot)."""
    return select(column).where(_THEIR_RECORD).scalar_subquery()


def _reserve(keyed: bool) -> HotStatement:
    """PostgreSQL: statement (2) of the module docstring."""
    holding = (
        select(func.count().label("n"))
        .where(
            PromocodeUse.promocode_id == _CODE_ID,
            PromocodeUse.user_id == bindparam("user_id"),
            PromocodeUse.status != UseStatus.RELEASED,
        )
        .cte("holding")
    )
    below_limit = select(holding.c.n).scalar_subquery() < bindparam("per_user")
    gate: ColumnElement[bool] = below_limit
    recorded = None
    if keyed:
        names, row = _row_of(_RECORDS, _RECORD_VALUES)
        use_left = exists().where(Promocode.id == _CODE_ID, _USE_LEFT)
        recorded = (
            postgresql.insert(IdempotencyRecord)
            .from_select(names, row.where(below_limit, use_left))
            .on_conflict_do_nothing(index_elements=["principal", "operation", "key"])
            .returning(IdempotencyRecord.id)
            .cte("recorded")
        )
        gate = exists(select(recorded.c.id))
    taken = (
        update(Promocode)
        .where(Promocode.id == _CODE_ID, _USE_LEFT, gate)
        .values(uses=Promocode.uses + 1, updated_at=bindparam("now"))
        .returning(Promocode.id)
        .cte("taken")
    )
    names, row = _row_of(_PURCHASES, _purchase_values(taken.c.id))
    purchase = (
        insert(Purchase)
        .from_select(names, row.select_from(taken))
        .returning(Purchase.id, Purchase.promocode_id)
        .cte("purchase")
    )
    names, row = _row_of(_USES, _use_values(purchase.c.id, purchase.c.promocode_id))
    reserved = (
        insert(PromocodeUse)
        .from_select(names, row.select_from(purchase))
        .returning(PromocodeUse.id)
        .cte("reserved")
    )
    columns: list[Any] = [
        select(holding.c.n).scalar_subquery().label("holding"),
        select(func.count()).select_from(reserved).scalar_subquery().label("reserved"),
    ]
    if recorded is not None:
        columns += [
            select(func.count()).select_from(recorded).scalar_subquery().label("recorded"),
            _stored(IdempotencyRecord.request_hash).label("request_hash"),
            _stored(IdempotencyRecord.result_ref).label("result_ref"),
        ]
    return HotStatement(select(*columns))


def _buy_keyed() -> HotStatement:
    """PostgreSQL, without a code: the record, and the purchase only if the record was
    written; what an earlier call committed."""
    names, row = _row_of(_RECORDS, _RECORD_VALUES)
    recorded = (
        postgresql.insert(IdempotencyRecord)
        .from_select(names, row)
        .on_conflict_do_nothing(index_elements=["principal", "operation", "key"])
        .returning(IdempotencyRecord.id)
        .cte("recorded")
    )
    names, row = _row_of(_PURCHASES, _purchase_values(None))
    purchase = (
        insert(Purchase)
        .from_select(names, row.select_from(recorded))
        .returning(Purchase.id)
        .cte("purchase")
    )
    return HotStatement(
        select(
            select(func.count()).select_from(purchase).scalar_subquery().label("recorded"),
            _stored(IdempotencyRecord.request_hash).label("request_hash"),
            _stored(IdempotencyRecord.result_ref).label("result_ref"),
        )
    )


_RESERVE = _reserve(keyed=False)
_RESERVE_KEYED = _reserve(keyed=True)
_BUY_KEYED = _buy_keyed()

# The same decisions as plain statements, for SQLite under its write lock (and the keyless
# purchase without a code on both backends).
_HOLDING = HotStatement(
    select(func.count()).where(
        PromocodeUse.promocode_id == bindparam("code_id"),
        PromocodeUse.user_id == bindparam("user_id"),
        PromocodeUse.status != UseStatus.RELEASED,
    )
)
_TAKE = HotStatement(
    update(Promocode)
    .where(Promocode.id == bindparam("code_id"), _USE_LEFT)
    .values(uses=Promocode.uses + 1, updated_at=bindparam("now"))
    .returning(Promocode.id)
)
_INSERT_PURCHASE = HotStatement(insert(Purchase).values(_purchase_values(bindparam("code_id"))))
_INSERT_USE = HotStatement(
    insert(PromocodeUse).values(_use_values(bindparam("purchase_id"), bindparam("code_id")))
)
_INSERT_RECORD = HotStatement(insert(IdempotencyRecord).values(_RECORD_VALUES))
_OWN_PARAMETERS = {
    statement: frozenset(statement.statement.compile().params)  # type: ignore[attr-defined]
    for statement in (_HOLDING, _TAKE, _INSERT_PURCHASE, _INSERT_USE, _INSERT_RECORD)
}


def _own(statement: HotStatement, params: dict[str, Any]) -> dict[str, Any]:
    """Only the statement's own parameters: Core (SQLite) would read one named like a column
    of an INSERT or UPDATE as a value for that column."""
    names = _OWN_PARAMETERS[statement]
    return {name: value for name, value in params.items() if name in names}


# ---- the service --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the write did: the user's holding uses it counted, whether it wrote the record
    and the purchase, and the record an earlier call committed (its statement's snapshot)."""

    holding: int
    recorded: bool
    reserved: bool
    stored: tuple[str, str] | None = None


@dataclass
class _Order:
    """One call of `create_purchase`: what it was asked, and the parameters its statements
    share."""

    session: AsyncSession
    caller: Caller
    plan_id: uuid.UUID
    code: str | None
    key: str | None
    request_hash: str | None
    principal: str
    operation: AttemptOperation
    limits: RejectionLimits | None
    params: dict[str, Any]

    @property
    def postgresql(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def replayed(self, stored: tuple[str, str]) -> PurchaseView:
        """The purchase an earlier call with this key made, or IDEMPOTENCY_KEY_REUSED."""
        assert self.request_hash is not None
        reference = replay(*stored, self.request_hash, purchase_code)
        row = await _PURCHASE_BY_ID.one_or_none(self.session, purchase_id=uuid.UUID(reference))
        assert row is not None, "an idempotency record names the purchase it made"
        return PurchaseView(**row._asdict())

    async def stored_record(self) -> tuple[str, str] | None:
        assert self.key is not None
        return await find_record(
            self.session, principal=self.principal, operation=OPERATION, key=self.key
        )

    async def refuse(
        self, reason: Rejection, promocode_id: uuid.UUID | None, retry_after: int | None = None
    ) -> PromocodeRejected:
        """Log the refusal with its true reason and count it; the error to raise."""
        assert self.code is not None
        rejection = PromocodeRejected(reason, promocode_id, retry_after=retry_after)
        await record_attempt(
            self.session,
            caller=self.caller,
            code=self.code,
            plan_id=self.plan_id,
            operation=self.operation,
            rejection=rejection,
        )
        if self.limits is not None and reason is not Rejection.RATE_LIMITED:
            await self.limits.count_rejection(self.caller)
        return rejection


def _unknown_plan() -> DomainError:
    return DomainError(PurchaseErrorCode.UNKNOWN_PLAN, "No such plan.", "planId")


def _plan_of(row: Any) -> PlanView:
    return PlanView(
        id=row.plan_id,
        slug=row.slug,
        name=row.name,
        price_minor=row.price_minor,
        currency=row.plan_currency,
        duration_days=row.duration_days,
        active=row.plan_active,
    )


async def create_purchase(
    session: AsyncSession,
    caller: Caller,
    *,
    plan_id: uuid.UUID,
    code: str | None,
    idempotency_key: str | None,
    settings: Settings,
    limits: RejectionLimits | None = None,
    operation: AttemptOperation = AttemptOperation.PURCHASE,
    created_by: str | None = None,
) -> tuple[PurchaseView, bool]:
    """Create a PENDING purchase, reserving a use of `code`; a retry with the same
    `idempotency_key` returns the first purchase. Returns (purchase, replayed).

    Refusals, in this order: INVALID_IDEMPOTENCY_KEY; IDEMPOTENCY_KEY_REUSED (or the replay);
    UNKNOWN_PLAN (a plan not on sale); then, with a code, a PromocodeRejected (logged, and
    counted towards the rate limit): RATE_LIMITED, then the SPEC's checks
    (`eligibility.py`), the use limits last. A refusal leaves no purchase and no use.
    """
    principal = f"user:{caller.user.id}"
    request_hash = None
    if idempotency_key is not None:
        check_key(idempotency_key, purchase_code)
        request_hash = fingerprint({"planId": str(plan_id), "code": code})
    now = utcnow()
    purchase_id = uuid.uuid4()
    order = _Order(
        session=session,
        caller=caller,
        plan_id=plan_id,
        code=code,
        key=idempotency_key,
        request_hash=request_hash,
        principal=principal,
        operation=operation,
        limits=limits,
        params={
            "plan_id": plan_id,
            "user_id": caller.user.id,
            "principal": principal,
            "key": idempotency_key,
            "request_hash": request_hash,
            "record_id": uuid.uuid4(),
            "purchase_id": purchase_id,
            "purchase_ref": str(purchase_id),
            "use_id": uuid.uuid4(),
            "created_by": created_by or principal,
            "now": now,
            "until": now + timedelta(seconds=settings.promocode_reservation_ttl_seconds),
        },
    )
    if code is None:
        return await _without_code(order)
    return await _with_code(order, code, now)


async def _without_code(order: _Order) -> tuple[PurchaseView, bool]:
    row = await _READ_PLAN.one_or_none(order.session, **order.params)
    stored = _record_of(row) if row is not None else None
    if stored is None and row is None and order.key is not None:
        stored = await order.stored_record()  # the key's first call was for another plan?
    if stored is not None:
        return await order.replayed(stored), True
    if row is None or not row.plan_active:
        raise _unknown_plan()
    plan = _plan_of(row)
    params = order.params | {
        "code_id": None,
        "list_price": plan.price_minor,
        "final_price": plan.price_minor,
        "currency": plan.currency,
        "trial_days": 0,
        "cycles": 0,
    }
    if order.key is None:
        await _INSERT_PURCHASE.execute(order.session, **_own(_INSERT_PURCHASE, params))
    elif order.postgresql:
        written = await _BUY_KEYED.one_or_none(order.session, **params)
        if not written.recorded:  # a first call with this key committed
            stored = _record_of(written) or await order.stored_record()
            assert stored is not None, "ON CONFLICT found a record"
            return await order.replayed(stored), True
    else:
        await _INSERT_PURCHASE.execute(order.session, **_own(_INSERT_PURCHASE, params))
        await _INSERT_RECORD.execute(order.session, **_own(_INSERT_RECORD, params))
    return _view(order, params, plan, None), False


async def _with_code(order: _Order, code: str, now: datetime) -> tuple[PurchaseView, bool]:
    caller, session = order.caller, order.session
    # Redis first: the lock (1) takes is not held through it.
    retry_after = await order.limits.blocked(caller) if order.limits is not None else 0
    row = None
    if is_well_formed(code):
        row = await _READ_CODE.one_or_none(session, **order.params, code=normalize_code(code))
    if row is None:
        return await _unread(order, retry_after), True
    if order.key is not None and (stored := _record_of(row)) is not None:
        return await order.replayed(stored), True
    if not row.plan_active:
        raise _unknown_plan()
    if retry_after:
        raise await order.refuse(Rejection.RATE_LIMITED, None, retry_after)
    if caller.user.status is not UserStatus.ACTIVE:
        raise await order.refuse(Rejection.USER_NOT_ACTIVE, None)
    if reason := await _rule_rejection(session, row, caller.user.id, now):
        raise await order.refuse(reason, row.code_id)
    params = order.params | {
        "code_id": row.code_id,
        "per_user": row.max_uses_per_user,
        "list_price": row.price_minor,
        "final_price": final_price(row.price_minor, row.kind, row.value),
        "currency": row.plan_currency,
        "trial_days": row.trial_days,
        "cycles": row.discounted_cycles,
    }
    reserve = _reserve_postgresql if order.postgresql else _reserve_sqlite
    written = await reserve(order, row, params)
    limited = limit_rejection(row, written.holding)
    if order.key is not None and not written.recorded:
        stored = written.stored
        if stored is None and limited is None:
            stored = await order.stored_record()  # ON CONFLICT: a concurrent first call's
        if stored is not None:
            return await order.replayed(stored), True
    if limited is not None:
        raise await order.refuse(limited, row.code_id)
    if not written.reserved:
        # Can't happen: under the code's lock (or SQLite's) (1) and (2) agree on the limits.
        raise RuntimeError(f"the reservation of {row.code_id} wrote nothing")
    return _view(order, params, _plan_of(row), row.code), False


async def _unread(order: _Order, retry_after: int) -> PurchaseView:
    """`_READ_CODE` found nothing: the replay, UNKNOWN_PLAN or the code's refusal (raised),
    in the order a found code's would come."""
    row = await _READ_PLAN.one_or_none(order.session, **order.params)
    stored = _record_of(row) if row is not None else None
    if stored is None and row is None and order.key is not None:
        stored = await order.stored_record()  # the key's first call was for another plan?
    if stored is not None:
        return await order.replayed(stored)
    if row is None or not row.plan_active:
        raise _unknown_plan()
    if retry_after:
        raise await order.refuse(Rejection.RATE_LIMITED, None, retry_after)
    if order.caller.user.status is not UserStatus.ACTIVE:
        raise await order.refuse(Rejection.USER_NOT_ACTIVE, None)
    raise await order.refuse(Rejection.NOT_FOUND, None)


async def _rule_rejection(
    session: AsyncSession, row: Any, user_id: uuid.UUID, now: datetime
) -> Rejection | None:
    """The SPEC's checks before the use limits (`eligibility.py`'s rules), on what (1) read."""
    if row.audience is Audience.GRANTED and not row.granted:
        return Rejection.NOT_ASSIGNED_TO_USER
    if reason := period_rejection(row, now):
        return reason
    if not currency_fits(row, row.plan_currency) or (row.restricted and not row.listed):
        return Rejection.PLAN_NOT_ELIGIBLE
    if row.eligibility is not SubscriberEligibility.ANY and (
        await subscriber_status(session, user_id, now) is not row.eligibility
    ):
        return Rejection.SUBSCRIBER_NOT_ELIGIBLE
    return None


async def _reserve_postgresql(order: _Order, row: Any, params: dict[str, Any]) -> _Outcome:
    if order.key is None:
        written = await _RESERVE.one_or_none(order.session, **params)
        return _Outcome(written.holding, recorded=False, reserved=bool(written.reserved))
    written = await _RESERVE_KEYED.one_or_none(order.session, **params)
    return _Outcome(
        written.holding,
        recorded=bool(written.recorded),
        reserved=bool(written.reserved),
        stored=_record_of(written),
    )


async def _reserve_sqlite(order: _Order, row: Any, params: dict[str, Any]) -> _Outcome:
    """The twin of `_RESERVE(_KEYED)` under SQLite's write lock: (1) saw the latest record,
    so there is none; each step runs only where the CTE's gate would let it."""
    session = order.session
    holding = int(await _HOLDING.scalar(session, **_own(_HOLDING, params)))
    if holding >= row.max_uses_per_user or (row.max_uses is not None and row.uses >= row.max_uses):
        return _Outcome(holding, recorded=False, reserved=False)
    if await _TAKE.scalar(session, **_own(_TAKE, params)) is None:
        return _Outcome(holding, recorded=False, reserved=False)
    await _INSERT_PURCHASE.execute(session, **_own(_INSERT_PURCHASE, params))
    await _INSERT_USE.execute(session, **_own(_INSERT_USE, params))
    if order.key is not None:
        await _INSERT_RECORD.execute(session, **_own(_INSERT_RECORD, params))
    return _Outcome(holding, recorded=order.key is not None, reserved=True)


def _record_of(row: Any) -> tuple[str, str] | None:
    return None if row.result_ref is None else (row.request_hash, row.result_ref)


def _view(order: _Order, params: dict[str, Any], plan: PlanView, code: str | None) -> PurchaseView:
    return PurchaseView(
        id=params["purchase_id"],
        user_id=params["user_id"],
        plan_id=order.plan_id,
        promocode_id=params["code_id"],
        status=PurchaseStatus.PENDING,
        list_price_minor=params["list_price"],
        final_price_minor=params["final_price"],
        currency=params["currency"],
        trial_days=params["trial_days"],
        discounted_cycles=params["cycles"],
        created_by=params["created_by"],
        created_at=params["now"],
        plan=plan,
        code=code,
    )
