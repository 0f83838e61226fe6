"""The payment result: `purchaseConfirm` and `purchaseFail` (the SERVICE caller), and the
release of a reserved use that both the failure and the sweep (`sweeping.py`) make.

Both are idempotent state changes: PENDING → CONFIRMED or PENDING → FAILED; confirming a
FAILED purchase or failing a CONFIRMED one is INVALID_STATE (a refund is another flow).

Locking decisions, per site (a low-volume path: the ORM, row locks):
- The purchase's and its use's rows are locked (`_locked_purchase`, `_use_of`,
  `SELECT … FOR UPDATE`) on PostgreSQL; on SQLite the unit of work's write lock
  (`BEGIN IMMEDIATE`, `app.db`) serialises them. Either way the state checks see the latest
  state, so a concurrent confirm and fail of one purchase end in exactly one of them.
- A confirmation that arrives after the reservation timed out takes the use again
  (`_retake`) under the code's row lock (`FOR NO KEY UPDATE`, as a reservation does, see
  `reservation.py`): the per-user count is a new statement after the lock, and `uses` grows
  only through the conditional UPDATE. Otherwise RESERVATION_EXPIRED tells the payment
  system to refund.
- A release is `uses - 1` in one UPDATE (its row lock queues behind a reservation of the
  same code).
"""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import utcnow
from app.models.identity import AuditLog
from app.models.promocodes import (
    Promocode,
    PromocodeUse,
    Purchase,
    PurchaseStatus,
    ReleaseReason,
    UseStatus,
)
from app.services.errors import DomainError
from app.services.promocodes.eligibility import holding_uses
from app.services.promocodes.errors import PurchaseErrorCode


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
        await release_use(session, use, ReleaseReason.PAYMENT_FAILED)
    purchase.status = PurchaseStatus.FAILED
    purchase.failed_at = utcnow()
    purchase.failure_reason = reason or None
    session.add(
        AuditLog(
            actor=actor, action="purchase.fail", target=f"purchase:{purchase.id}", reason=reason
        )
    )
    return purchase


async def release_use(session: AsyncSession, use: PromocodeUse, reason: ReleaseReason) -> None:
    """RELEASED with `reason`, and the code's `uses - 1`."""
    use.status = UseStatus.RELEASED
    use.released_at = utcnow()
    use.release_reason = reason
    await session.execute(
        update(Promocode).where(Promocode.id == use.promocode_id).values(uses=Promocode.uses - 1)
    )
