"""Quotes, purchases and the promocode usage ledger.

A purchase with a code reserves one use atomically: the code's row is locked
(`SELECT … FOR UPDATE`), the per-user limit is checked under that lock, and `uses` grows
only through `UPDATE … SET uses = uses + 1 WHERE max_uses IS NULL OR uses < max_uses`. So
under any concurrency a code with N uses is used at most N times, and at most
`max_uses_per_user` times per user. The use is RESERVED until the payment result arrives:
CONFIRMED, or RELEASED (payment failed, reservation timed out, admin) with `uses - 1`.

Locking decisions, per site:
- `uses < max_uses`: correct by construction on both backends (the conditional UPDATE).
- The per-user limit (count the user's holding uses, then insert one): a check-then-act.
  PostgreSQL: under the code's row lock (`FOR NO KEY UPDATE`, `_take_use` / `_retake`).
  SQLite: that clause is a no-op; the unit of work holds the write lock from its first
  statement (`BEGIN IMMEDIATE`, `app.db`), so reservations take turns and each counts what
  the previous one committed. No index could express "at most N per user".
- Confirm / fail: the purchase's and its use's rows are locked (`_locked_purchase`,
  `_use_of`) on PostgreSQL, the write lock serialises them on SQLite; both make the state
  checks (PENDING → CONFIRMED / FAILED, idempotent) see the latest state.
- The stale-reservation sweep skips locked rows on PostgreSQL (`SKIP LOCKED`); on SQLite it
  waits for the write lock, then sees which uses are still RESERVED.
- Concurrent first calls with one `idempotencyKey` replay the winner's purchase
  (`app.services.idempotency.run_once`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ScalarSelect, Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import utcnow
from app.models.identity import AuditLog, GroupMember, User
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
    ReleaseReason,
    UseStatus,
)
from app.services.errors import DomainError
from app.services.idempotency import run_once
from app.services.promocodes.attempts import (
    Caller,
    PromocodeRejected,
    RejectionLimits,
    record_attempt,
)
from app.services.promocodes.eligibility import Verdict, evaluate, holding_uses
from app.services.promocodes.errors import PurchaseErrorCode, purchase_code
from app.services.promocodes.pricing import final_price
from app.settings import Settings


@dataclass(frozen=True)
class Quote:
    plan: Plan
    promocode: Promocode | None
    list_price_minor: int
    final_price_minor: int
    currency: str
    trial_days: int
    discounted_cycles: int


async def plan_on_sale(session: AsyncSession, plan_id: uuid.UUID) -> Plan | None:
    """The plan, if it exists and is still sold."""
    plan = await session.get(Plan, plan_id)
    return plan if plan is not None and plan.active else None


async def get_plan(session: AsyncSession, plan_id: uuid.UUID) -> Plan:
    plan = await plan_on_sale(session, plan_id)
    if plan is None:
        raise DomainError(PurchaseErrorCode.UNKNOWN_PLAN, "No such plan.", "planId")
    return plan


def price(plan: Plan, promocode: Promocode | None) -> Quote:
    if promocode is None:
        return Quote(plan, None, plan.price_minor, plan.price_minor, plan.currency, 0, 0)
    return Quote(
        plan,
        promocode,
        plan.price_minor,
        final_price(plan.price_minor, promocode.kind, promocode.value),
        plan.currency,
        promocode.trial_days,
        promocode.discounted_cycles,
    )


async def _checked(
    session: AsyncSession,
    caller: Caller,
    code: str,
    plan: Plan,
    limits: RejectionLimits | None,
    *,
    check_limits: bool = True,
) -> Verdict:
    if limits is not None and (retry_after := await limits.blocked(caller)):
        return Verdict(None, Rejection.RATE_LIMITED, retry_after)
    return await evaluate(session, caller.user, code, plan, utcnow(), check_limits=check_limits)


def _rejection(verdict: Verdict) -> PromocodeRejected:
    assert verdict.rejection is not None
    return PromocodeRejected(
        verdict.rejection,
        verdict.promocode.id if verdict.promocode else None,
        retry_after=verdict.retry_after,
    )


async def quote(
    session: AsyncSession,
    caller: Caller,
    *,
    plan_id: uuid.UUID,
    code: str,
    limits: RejectionLimits | None = None,
) -> Quote:
    """A dry run: the price under `code`, or PromocodeRejected (the attempt is logged)."""
    plan = await get_plan(session, plan_id)
    verdict = await _checked(session, caller, code, plan, limits)
    if verdict.rejection is not None:
        await _reject(session, caller, code, plan, AttemptOperation.QUOTE, verdict, limits)
    return price(plan, verdict.promocode)


async def _reject(
    session: AsyncSession,
    caller: Caller,
    code: str,
    plan: Plan,
    operation: AttemptOperation,
    verdict: Verdict,
    limits: RejectionLimits | None,
) -> None:
    rejection = _rejection(verdict)
    await record_attempt(
        session, caller=caller, code=code, plan_id=plan.id, operation=operation, rejection=rejection
    )
    if limits is not None and verdict.rejection is not Rejection.RATE_LIMITED:
        await limits.count_rejection(caller)
    raise rejection


async def _take_use(session: AsyncSession, promocode: Promocode, user: User) -> None:
    """Take one use under the code's row lock; raise PromocodeRejected when none is left.

    The lock comes first, before this transaction inserts anything that references the code:
    a foreign-key check takes a KEY SHARE lock on the code's row, and two transactions
    holding that and both asking for an update lock would deadlock. FOR NO KEY UPDATE
    doesn't conflict with those KEY SHARE locks.
    """
    locked = await session.scalar(
        select(Promocode).where(Promocode.id == promocode.id).with_for_update(key_share=True)
    )
    assert locked is not None
    if await holding_uses(session, promocode.id, user.id) >= locked.max_uses_per_user:
        raise PromocodeRejected(Rejection.ALREADY_USED_BY_USER, promocode.id)
    taken = await session.scalar(
        update(Promocode)
        .where(
            Promocode.id == promocode.id,
            or_(Promocode.max_uses.is_(None), Promocode.uses < Promocode.max_uses),
        )
        .values(uses=Promocode.uses + 1)
        .returning(Promocode.uses)
    )
    if taken is None:
        raise PromocodeRejected(Rejection.EXHAUSTED, promocode.id)


async def _create(
    session: AsyncSession,
    caller: Caller,
    plan: Plan,
    code: str | None,
    *,
    created_by: str,
    ttl: timedelta,
    limits: RejectionLimits | None,
) -> Purchase:
    promocode = None
    if code is not None:
        verdict = await _checked(session, caller, code, plan, limits, check_limits=False)
        if verdict.rejection is not None:
            raise _rejection(verdict)
        promocode = verdict.promocode
        assert promocode is not None
        await _take_use(session, promocode, caller.user)
    priced = price(plan, promocode)
    purchase = Purchase(
        id=uuid.uuid4(),
        user_id=caller.user.id,
        plan_id=plan.id,
        promocode_id=promocode.id if promocode else None,
        list_price_minor=priced.list_price_minor,
        final_price_minor=priced.final_price_minor,
        currency=priced.currency,
        trial_days=priced.trial_days,
        discounted_cycles=priced.discounted_cycles,
        created_by=created_by,
    )
    session.add(purchase)
    await session.flush()  # the ledger row references it (no ORM relationship orders them)
    if promocode is not None:
        session.add(
            PromocodeUse(
                promocode_id=promocode.id,
                user_id=caller.user.id,
                purchase_id=purchase.id,
                status=UseStatus.RESERVED,
                reserved_until=utcnow() + ttl,
            )
        )
    await session.flush()
    return purchase


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
) -> tuple[Purchase, bool]:
    """Create a PENDING purchase, reserving a use of `code`; a retry with the same
    `idempotency_key` returns the first purchase. Returns (purchase, replayed)."""
    ttl = timedelta(seconds=settings.promocode_reservation_ttl_seconds)

    created: list[Purchase] = []  # a strong reference: the identity map's is weak

    async def create() -> str:
        # The plan is looked up here, so a retry after the plan was retired still replays.
        plan = await get_plan(session, plan_id)
        purchase = await _create(
            session,
            caller,
            plan,
            code,
            created_by=created_by or f"user:{caller.user.id}",
            ttl=ttl,
            limits=limits,
        )
        created.append(purchase)
        return str(purchase.id)

    async def create_in_savepoint() -> str:
        # A rejection after the use was taken must leave nothing behind. With a key, run_once
        # already runs `create` in a savepoint; without one, this does.
        async with session.begin_nested():
            return await create()

    try:
        reference, replayed = await run_once(
            session,
            principal=f"user:{caller.user.id}",
            operation="purchaseCreate",
            key=idempotency_key,
            request={"planId": str(plan_id), "code": code},
            create=create if idempotency_key is not None else create_in_savepoint,
            error_code=purchase_code,
        )
    except PromocodeRejected as rejection:
        # Recorded outside the savepoint the attempt ran in, so the log survives it.
        assert code is not None
        await record_attempt(
            session,
            caller=caller,
            code=code,
            plan_id=plan_id,
            operation=operation,
            rejection=rejection,
        )
        if limits is not None and rejection.reason is not Rejection.RATE_LIMITED:
            await limits.count_rejection(caller)
        raise
    purchase = created[0] if created else await session.get(Purchase, uuid.UUID(reference))
    assert purchase is not None
    return purchase, replayed


async def _locked_purchase(session: AsyncSession, purchase_id: uuid.UUID) -> Purchase:
    purchase = await session.scalar(
        select(Purchase).where(Purchase.id == purchase_id).with_for_update()
    )
    if purchase is None:
        raise DomainError(PurchaseErrorCode.NOT_FOUND, "No such purchase.", "purchaseId")
    return purchase


async def _use_of(session: AsyncSession, purchase_id: uuid.UUID) -> PromocodeUse | None:
    return await session.scalar(
        select(PromocodeUse).where(PromocodeUse.purchase_id == purchase_id).with_for_update()
    )


async def confirm_purchase(
    session: AsyncSession, purchase_id: uuid.UUID, *, actor: str
) -> Purchase:
    """The payment succeeded. Idempotent; a FAILED purchase can't be confirmed.

    If the reservation timed out meanwhile, the use is taken again when the code still has
    one; otherwise RESERVATION_EXPIRED tells the payment system to refund.
    """
    purchase = await _locked_purchase(session, purchase_id)
    if purchase.status is PurchaseStatus.CONFIRMED:
        return purchase
    if purchase.status is PurchaseStatus.FAILED:
        raise DomainError(
            PurchaseErrorCode.INVALID_STATE, "A failed purchase can't be confirmed.", "purchaseId"
        )
    use = await _use_of(session, purchase.id)
    if use is not None and use.status is UseStatus.RELEASED:
        await _retake(session, use)
    now = utcnow()
    if use is not None:
        use.status = UseStatus.CONFIRMED
        use.confirmed_at = now
    purchase.status = PurchaseStatus.CONFIRMED
    purchase.confirmed_at = now
    session.add(AuditLog(actor=actor, action="purchase.confirm", target=f"purchase:{purchase.id}"))
    return purchase


async def _retake(session: AsyncSession, use: PromocodeUse) -> None:
    """Take a timed-out use back for a late payment, within both limits, or refuse."""
    locked = await session.scalar(
        select(Promocode).where(Promocode.id == use.promocode_id).with_for_update(key_share=True)
    )
    assert locked is not None
    if await holding_uses(session, use.promocode_id, use.user_id) >= locked.max_uses_per_user:
        raise _expired()
    taken = await session.scalar(
        update(Promocode)
        .where(
            Promocode.id == use.promocode_id,
            or_(Promocode.max_uses.is_(None), Promocode.uses < Promocode.max_uses),
        )
        .values(uses=Promocode.uses + 1)
        .returning(Promocode.uses)
    )
    if taken is None:
        raise _expired()
    use.released_at = None
    use.release_reason = None


def _expired() -> DomainError:
    return DomainError(
        PurchaseErrorCode.RESERVATION_EXPIRED,
        "The promocode reservation expired and can't be taken again: refund the payment.",
        "purchaseId",
    )


async def fail_purchase(
    session: AsyncSession, purchase_id: uuid.UUID, *, actor: str, reason: str = ""
) -> Purchase:
    """The payment failed: release the reserved use. Idempotent; a CONFIRMED purchase can't
    fail (a refund is a different flow)."""
    if len(reason) > 200 or not reason.isprintable():
        raise DomainError(
            PurchaseErrorCode.INVALID_REASON, "reason: at most 200 printable characters.", "reason"
        )
    purchase = await _locked_purchase(session, purchase_id)
    if purchase.status is PurchaseStatus.FAILED:
        return purchase
    if purchase.status is PurchaseStatus.CONFIRMED:
        raise DomainError(
            PurchaseErrorCode.INVALID_STATE, "A confirmed purchase can't fail.", "purchaseId"
        )
    use = await _use_of(session, purchase.id)
    if use is not None and use.status is UseStatus.RESERVED:
        await _release(session, use, ReleaseReason.PAYMENT_FAILED)
    purchase.status = PurchaseStatus.FAILED
    purchase.failed_at = utcnow()
    purchase.failure_reason = reason or None
    session.add(
        AuditLog(
            actor=actor, action="purchase.fail", target=f"purchase:{purchase.id}", reason=reason
        )
    )
    return purchase


async def _release(session: AsyncSession, use: PromocodeUse, reason: ReleaseReason) -> None:
    use.status = UseStatus.RELEASED
    use.released_at = utcnow()
    use.release_reason = reason
    await session.execute(
        update(Promocode).where(Promocode.id == use.promocode_id).values(uses=Promocode.uses - 1)
    )


async def release_stale_reservations(session: AsyncSession, *, batch_size: int = 500) -> int:
    """Release RESERVED uses past their TTL (abandoned purchases); returns how many."""
    stale = (
        await session.scalars(
            select(PromocodeUse)
            .where(
                PromocodeUse.status == UseStatus.RESERVED, PromocodeUse.reserved_until < utcnow()
            )
            .order_by(PromocodeUse.reserved_until)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for use in stale:
        await _release(session, use, ReleaseReason.TIMEOUT)
    return len(stale)


def _holding(user_id: uuid.UUID) -> ScalarSelect[int]:
    return (
        select(func.count())
        .where(
            PromocodeUse.promocode_id == Promocode.id,
            PromocodeUse.user_id == user_id,
            PromocodeUse.status != UseStatus.RELEASED,
        )
        .correlate(Promocode)
        .scalar_subquery()
    )


def purchases_of_user(user_id: uuid.UUID) -> Select[Purchase]:
    return (
        select(Purchase)
        .where(Purchase.user_id == user_id)
        .order_by(Purchase.created_at.desc(), Purchase.id)
    )


async def available_promocodes(
    session: AsyncSession, user: User, now: datetime | None = None
) -> Sequence[Promocode]:
    """Active, currently valid codes the user may use: those granted to them (personally or
    through a group) and public campaign codes. Generated codes (a batch) are bearer secrets
    and are never listed, nor are codes the user already holds all their uses of."""
    now = now or utcnow()
    groups = select(GroupMember.group_id).where(GroupMember.user_id == user.id)
    granted = select(PromocodeGrant.promocode_id).where(
        or_(PromocodeGrant.user_id == user.id, PromocodeGrant.group_id.in_(groups))
    )
    query = (
        select(Promocode)
        .where(
            Promocode.active.is_(True),
            or_(Promocode.valid_from.is_(None), Promocode.valid_from <= now),
            or_(Promocode.valid_until.is_(None), Promocode.valid_until > now),
            or_(
                and_(Promocode.audience == Audience.PUBLIC, Promocode.batch_id.is_(None)),
                Promocode.id.in_(granted),
            ),
            Promocode.max_uses_per_user > _holding(user.id),
            or_(Promocode.max_uses.is_(None), Promocode.uses < Promocode.max_uses),
        )
        .order_by(Promocode.valid_until.is_(None), Promocode.valid_until, Promocode.code)
        .limit(100)
    )
    return (await session.scalars(query)).all()
