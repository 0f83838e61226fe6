"""Importing scoring's newcomer pre-offers (admin or service, in bulk, an outcome per row).

Each row names a user, a promotion key, the user's region and, optionally, the offer's terms
(amount, currency, repayment rate; each missing one is the promotion's reward template's).
The key is mapped to the promotion's id; an unknown key, an unknown user or a bad value
rejects that row with its reason and field, and the other rows still go in.

Re-importing changes nothing: one pre-offer per (user, key), written with INSERT … ON
CONFLICT DO NOTHING, so a row already in comes back UNCHANGED (or CONFLICT when its terms
differ: a re-import never rewrites an offer a user may have started on), and two imports
racing on one row write it once. The same (user, key) twice in one import: the second is
DUPLICATE_USER. At most `MAX_ROWS` rows per call; a bigger import is refused as a whole.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.models.identity import AuditLog, User
from app.models.promotions import PreOffer, Promotion
from app.services.errors import DomainError
from app.services.promotions.catalog import check_region
from app.services.promotions.codes import (
    PreOfferOutcome,
    PreOfferRejection,
    PromotionAdminErrorCode,
)
from app.services.promotions.rules import check_repayment_rate
from app.services.validation import MAX_MINOR, InvalidValue, check_currency

MAX_ROWS = 1000
Rejection = PreOfferRejection


@dataclass(frozen=True)
class PreOfferRow:
    user_id: str
    promotion_key: str
    region: str
    amount_minor: int | None = None
    currency: str | None = None
    repayment_rate: str | None = None


@dataclass(frozen=True)
class RowOutcome:
    index: int
    outcome: PreOfferOutcome
    pre_offer_id: uuid.UUID | None = None
    reason: PreOfferRejection | None = None
    field: str | None = None
    message: str | None = None


class _Rejected(Exception):
    def __init__(self, reason: Rejection, field: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.field, self.message = reason, field, message


@dataclass(frozen=True)
class _Valid:
    index: int
    user_id: uuid.UUID
    key: str
    region: str
    amount_minor: int | None
    currency: str | None
    repayment_rate: str | None
    promotion_id: uuid.UUID | None = None  # once the key is known

    def terms(self) -> tuple[Any, ...]:
        return (self.region, self.amount_minor, self.currency, self.repayment_rate)


def _validated(index: int, row: PreOfferRow) -> _Valid:
    try:
        user_id = uuid.UUID(row.user_id.strip())
    except (ValueError, AttributeError):
        raise _Rejected(Rejection.UNKNOWN_USER, "userId", "Give the user's id.") from None
    try:
        region = check_region(row.region)
    except DomainError as exc:
        raise _Rejected(Rejection.INVALID_REGION, "region", exc.message) from None
    amount = row.amount_minor
    if amount is not None and (isinstance(amount, bool) or not 1 <= amount <= MAX_MINOR):
        raise _Rejected(Rejection.INVALID_AMOUNT, "amount", f"Give 1 to {MAX_MINOR} minor units.")
    currency = row.currency
    if currency is not None:
        try:
            check_currency(currency)
        except InvalidValue as exc:
            raise _Rejected(Rejection.INVALID_CURRENCY, "currency", str(exc)) from None
    rate = row.repayment_rate
    if rate is not None:
        try:
            rate = check_repayment_rate(rate)
        except InvalidValue as exc:
            raise _Rejected(Rejection.INVALID_RATE, "repaymentRate", str(exc)) from None
    return _Valid(index, user_id, row.promotion_key.strip(), region, amount, currency, rate)


async def import_pre_offers(
    session: AsyncSession, rows: Sequence[PreOfferRow], *, actor: str
) -> list[RowOutcome]:
    """Write the valid new rows; an outcome per row, in the order given."""
    if len(rows) > MAX_ROWS:
        raise DomainError(
            PromotionAdminErrorCode.TOO_MANY_ROWS, f"Send at most {MAX_ROWS} rows.", "rows"
        )
    outcomes: dict[int, RowOutcome] = {}
    valid: list[_Valid] = []
    seen: set[tuple[uuid.UUID, str]] = set()
    for index, row in enumerate(rows):
        try:
            item = _validated(index, row)
        except _Rejected as exc:
            outcomes[index] = _rejected(index, exc)
            continue
        if (item.user_id, item.key) in seen:
            outcomes[index] = _rejected(
                index,
                _Rejected(Rejection.DUPLICATE_USER, "userId", "This user and key came earlier."),
            )
            continue
        seen.add((item.user_id, item.key))
        valid.append(item)
    valid = await _known(session, valid, outcomes)
    await _write(session, valid, outcomes, actor)
    if valid:
        session.add(
            AuditLog(
                actor=actor,
                action="promotion_pre_offer.import",
                target=f"pre_offers:{len(valid)}",
                reason=f"{len(rows)} rows",
            )
        )
    return [outcomes[index] for index in range(len(rows))]


def _rejected(index: int, exc: _Rejected) -> RowOutcome:
    return RowOutcome(
        index, PreOfferOutcome.REJECTED, reason=exc.reason, field=exc.field, message=exc.message
    )


async def _known(
    session: AsyncSession, valid: list[_Valid], outcomes: dict[int, RowOutcome]
) -> list[_Valid]:
    """The rows whose promotion and user exist; the others rejected."""
    keys = {item.key for item in valid}
    users = {item.user_id for item in valid}
    promotions: dict[str, uuid.UUID] = {}
    found_users: set[uuid.UUID] = set()
    if valid:
        promotions = {
            row.key: row.id
            for row in await session.execute(
                select(Promotion.key, Promotion.id).where(Promotion.key.in_(keys))
            )
        }
        found_users = set(await session.scalars(select(User.id).where(User.id.in_(users))))
    known = []
    for item in valid:
        if item.key not in promotions:
            outcomes[item.index] = _rejected(
                item.index,
                _Rejected(
                    Rejection.UNKNOWN_PROMOTION, "promotionKey", "No promotion has this key."
                ),
            )
        elif item.user_id not in found_users:
            outcomes[item.index] = _rejected(
                item.index, _Rejected(Rejection.UNKNOWN_USER, "userId", "No such user.")
            )
        else:
            known.append(replace(item, promotion_id=promotions[item.key]))
    return known


async def _write(
    session: AsyncSession, valid: list[_Valid], outcomes: dict[int, RowOutcome], actor: str
) -> None:
    if not valid:
        return
    ids = {item.index: uuid.uuid4() for item in valid}
    values = [
        {
            "id": ids[item.index],
            "user_id": item.user_id,
            "promotion_key": item.key,
            "promotion_id": item.promotion_id,
            "region": item.region,
            "amount_minor": item.amount_minor,
            "currency": item.currency,
            "repayment_rate": item.repayment_rate,
            "imported_by": actor,
        }
        for item in valid
    ]
    statement = upsert_insert(session, PreOffer).on_conflict_do_nothing(
        index_elements=["user_id", "promotion_key"]
    )
    await session.execute(statement, values)
    stored = {
        (row.user_id, row.promotion_key): row
        for row in await session.execute(
            select(
                PreOffer.id,
                PreOffer.user_id,
                PreOffer.promotion_key,
                PreOffer.region,
                PreOffer.amount_minor,
                PreOffer.currency,
                PreOffer.repayment_rate,
            ).where(
                PreOffer.user_id.in_({item.user_id for item in valid}),
                PreOffer.promotion_key.in_({item.key for item in valid}),
            )
        )
    }
    for item in valid:
        row = stored[(item.user_id, item.key)]
        if row.id == ids[item.index]:
            outcomes[item.index] = RowOutcome(item.index, PreOfferOutcome.CREATED, row.id)
        elif (row.region, row.amount_minor, row.currency, row.repayment_rate) == item.terms():
            outcomes[item.index] = RowOutcome(item.index, PreOfferOutcome.UNCHANGED, row.id)
        else:
            outcomes[item.index] = RowOutcome(
                item.index,
                PreOfferOutcome.REJECTED,
                row.id,
                reason=Rejection.CONFLICT,
                field="promotionKey",
                message="This user's pre-offer for this key is in already, with other terms.",
            )
