"""Family accounts, service side: the ride calls of the order system, the card store's cards,
the subscription system's Plus Multi flag. SERVICE callers only (ADMIN too for the flag)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import strawberry
from strawberry.types import Info

from app.models.base import utcnow
from app.models.identity import Role
from app.services.errors import DomainError
from app.services.family import accounts, cards, rides
from app.services.family.codes import CardErrorCode, FamilyErrorCode, FamilyRideErrorCode
from schema.base import decode_global_id
from schema.context import Context
from schema.errors import payload_errors
from schema.family.errors import FamilyError, FamilyRideError, PaymentCardError
from schema.family.inputs import (
    FamilyPlusMultiSetInput,
    FamilyPlusMultiSetPayload,
    FamilyRideChargeInput,
    FamilyRideChargePayload,
    FamilyRideCheckInput,
    FamilyRideCheckPayload,
    FamilyRideHold,
    FamilyRideReleaseInput,
    FamilyRideReleasePayload,
    PaymentCardRemoveInput,
    PaymentCardRemovePayload,
    PaymentCardUpsertInput,
    PaymentCardUpsertPayload,
)
from schema.family.types import FamilyLimit, PaymentCard, account_uuid
from schema.permissions import require

InfoT = Info[Context, Any]


def _raw_or_global(value: str, type_name: str, field: str, code: Any) -> uuid.UUID:
    """A raw UUID or a global id of `type_name`, as service callers send them."""
    try:
        return uuid.UUID(value)
    except ValueError:
        pass
    try:
        return decode_global_id(value, type_name)
    except ValueError as exc:
        raise DomainError(code, f"Not a {type_name} id.", field) from exc


def _ride_account(value: str) -> uuid.UUID:
    try:
        return account_uuid(value)
    except ValueError as exc:
        raise DomainError(
            FamilyRideErrorCode.NOT_FOUND, "Not a FamilyAccount id.", "accountId"
        ) from exc


def _ride_user(value: str) -> uuid.UUID:
    return _raw_or_global(value, "User", "userId", FamilyRideErrorCode.NOT_A_MEMBER)


async def _check(info: InfoT, data: FamilyRideCheckInput) -> FamilyRideCheckPayload:
    await require(info, Role.SERVICE)
    try:
        account_id, user_id = _ride_account(str(data.account_id)), _ride_user(str(data.user_id))
        fare = rides.check_fare(data.amount.amount_minor, data.amount.currency)
        hold = None
        if data.hold is not None:
            default = timedelta(seconds=info.context.settings.family_hold_ttl_seconds)
            hold = rides.HoldRequest(
                rides.check_order_id(data.hold.order_id, "hold.orderId"),
                rides.check_ttl(data.hold.ttl_seconds, default),
            )
        found = await rides.check(
            info.context.session, account_id, user_id, fare, hold=hold, now=utcnow()
        )
    except DomainError as exc:
        return FamilyRideCheckPayload(errors=payload_errors(FamilyRideError, exc))
    return FamilyRideCheckPayload(
        available=found.available,
        reason=found.refusal,
        limit=FamilyLimit.from_state(found.limit) if found.limit else None,
        hold=None
        if found.hold is None
        else FamilyRideHold(
            id=strawberry.ID(str(found.hold.id)),
            order_id=found.hold.order_id,
            expires_at=found.hold.expires_at,
        ),
        errors=[],
    )


async def _charge(info: InfoT, data: FamilyRideChargeInput) -> FamilyRideChargePayload:
    await require(info, Role.SERVICE)
    try:
        account_id, user_id = _ride_account(str(data.account_id)), _ride_user(str(data.user_id))
        order_id = rides.check_order_id(data.order_id, "orderId")
        fare = rides.check_fare(data.amount.amount_minor, data.amount.currency, positive=False)
        charged = await rides.charge(
            info.context.session, account_id, user_id, order_id, fare, now=utcnow()
        )
    except DomainError as exc:
        return FamilyRideChargePayload(errors=payload_errors(FamilyRideError, exc))
    return FamilyRideChargePayload(
        duplicate=charged.duplicate,
        limit=FamilyLimit.from_state(charged.limit) if charged.limit else None,
        errors=[],
    )


async def _release(info: InfoT, data: FamilyRideReleaseInput) -> FamilyRideReleasePayload:
    await require(info, Role.SERVICE)
    try:
        account_id = _ride_account(str(data.account_id))
        order_id = rides.check_order_id(data.order_id, "orderId")
        outcome = await rides.release(info.context.session, account_id, order_id, now=utcnow())
    except DomainError as exc:
        return FamilyRideReleasePayload(errors=payload_errors(FamilyRideError, exc))
    return FamilyRideReleasePayload(outcome=outcome, errors=[])


def _card_user(value: str) -> uuid.UUID:
    return _raw_or_global(value, "User", "userId", CardErrorCode.INVALID_USER)


async def _card_upsert(info: InfoT, data: PaymentCardUpsertInput) -> PaymentCardUpsertPayload:
    await require(info, Role.SERVICE)
    session = info.context.session
    try:
        user_id = _card_user(str(data.user_id))
        if not await cards.user_exists(session, user_id):
            raise DomainError(CardErrorCode.INVALID_USER, "No such user.", "userId")
        created = await cards.upsert_card(
            session,
            user_id,
            card_id=data.card_id,
            brand=data.brand,
            last4=data.last4,
            expires_month=data.expires_month,
            expires_year=data.expires_year,
            now=utcnow(),
        )
    except DomainError as exc:
        return PaymentCardUpsertPayload(errors=payload_errors(PaymentCardError, exc))
    card = PaymentCard(
        id=data.card_id,
        brand=data.brand,
        last4=data.last4,
        expires_month=data.expires_month,
        expires_year=data.expires_year,
    )
    return PaymentCardUpsertPayload(card=card, created=created, errors=[])


async def _card_remove(info: InfoT, data: PaymentCardRemoveInput) -> PaymentCardRemovePayload:
    await require(info, Role.SERVICE)
    try:
        await cards.remove_card(info.context.session, _card_user(str(data.user_id)), data.card_id)
    except DomainError as exc:
        return PaymentCardRemovePayload(errors=payload_errors(PaymentCardError, exc))
    return PaymentCardRemovePayload(removed_card_id=data.card_id, errors=[])


async def _plus_multi(info: InfoT, data: FamilyPlusMultiSetInput) -> FamilyPlusMultiSetPayload:
    await require(info, Role.SERVICE, Role.ADMIN)
    try:
        account_id = account_uuid(str(data.account_id))
    except ValueError:
        account_id = None
    if account_id is None or not await accounts.set_plus_multi(
        info.context.session, account_id, data.enabled, now=utcnow()
    ):
        error = DomainError(FamilyErrorCode.NOT_FOUND, "No such family.", "accountId")
        return FamilyPlusMultiSetPayload(errors=payload_errors(FamilyError, error))
    return FamilyPlusMultiSetPayload(errors=[])


@strawberry.type
class FamilyServiceMutation:
    @strawberry.mutation(
        description=(
            "May the member ride on the family for this fare? `available: false` when the "
            "fare is more than what remains of their limit in the current frame. With `hold`, "
            "a fare that fits is held against the limit until charged or released (or its TTL "
            "passes): two rides started at once can't both take a limit only one fits. "
            "Idempotent per order id. SERVICE only."
        )
    )
    async def family_ride_check(
        self, info: InfoT, input: FamilyRideCheckInput
    ) -> FamilyRideCheckPayload:
        return await _check(info, input)

    @strawberry.mutation(
        description=(
            "Record a family-paid ride's final fare as the member's usage (once per order id; "
            "the order's hold ends). SERVICE only."
        )
    )
    async def family_ride_charge(
        self, info: InfoT, input: FamilyRideChargeInput
    ) -> FamilyRideChargePayload:
        return await _charge(info, input)

    @strawberry.mutation(description="End a cancelled ride's hold (idempotent). SERVICE only.")
    async def family_ride_release(
        self, info: InfoT, input: FamilyRideReleaseInput
    ) -> FamilyRideReleasePayload:
        return await _release(info, input)

    @strawberry.mutation(description="The card store registers or updates a user's card.")
    async def payment_card_upsert(
        self, info: InfoT, input: PaymentCardUpsertInput
    ) -> PaymentCardUpsertPayload:
        return await _card_upsert(info, input)

    @strawberry.mutation(
        description="The card store removed a user's card (it leaves every family it was in)."
    )
    async def payment_card_remove(
        self, info: InfoT, input: PaymentCardRemoveInput
    ) -> PaymentCardRemovePayload:
        return await _card_remove(info, input)

    @strawberry.mutation(description="Set whether a family's owner has Plus Multi.")
    async def family_plus_multi_set(
        self, info: InfoT, input: FamilyPlusMultiSetInput
    ) -> FamilyPlusMultiSetPayload:
        return await _plus_multi(info, input)
