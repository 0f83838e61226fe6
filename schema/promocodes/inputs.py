"""Promocodes, client and service surface: mutation inputs and payloads."""

from __future__ import annotations

import strawberry

from schema.base import IDEMPOTENCY_KEY_DESCRIPTION
from schema.promocodes.errors import PurchaseError
from schema.promocodes.types import PromocodeQuote, PurchaseNode


@strawberry.input(description="A promocode to try on a plan.")
class PromocodeQuoteInput:
    code: str = strawberry.field(description="The code as the user typed it (case-insensitive).")
    plan_id: strawberry.ID = strawberry.field(description="The Plan's global id.")


@strawberry.type(description="The result of `promocodeQuote`.")
class PromocodeQuotePayload:
    quote: PromocodeQuote | None = strawberry.field(
        default=None, description="The price under the code; null when refused."
    )
    errors: list[PurchaseError] = strawberry.field(
        description="Why the code was refused; empty if not."
    )


@strawberry.input(description="A plan to buy, optionally with a promocode.")
class PurchaseCreateInput:
    plan_id: strawberry.ID = strawberry.field(description="The Plan's global id.")
    code: str | None = strawberry.field(
        default=None, description="A promocode (case-insensitive); null to pay the list price."
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY_DESCRIPTION)


@strawberry.type(description="The result of `purchaseCreate`.")
class PurchaseCreatePayload:
    purchase: PurchaseNode | None = strawberry.field(
        default=None,
        description="The PENDING purchase (the promocode use is reserved); null when refused.",
    )
    errors: list[PurchaseError] = strawberry.field(
        description="Why the purchase was refused; empty if not."
    )


@strawberry.input(description="A purchase whose payment succeeded.")
class PurchaseConfirmInput:
    purchase_id: strawberry.ID = strawberry.field(description="The Purchase's global id.")


@strawberry.type(description="The result of `purchaseConfirm`.")
class PurchaseConfirmPayload:
    purchase: PurchaseNode | None = strawberry.field(
        default=None, description="The purchase, now CONFIRMED; null when refused."
    )
    errors: list[PurchaseError] = strawberry.field(
        description="Why the confirmation was refused; empty if not."
    )


@strawberry.input(description="A purchase whose payment failed.")
class PurchaseFailInput:
    purchase_id: strawberry.ID = strawberry.field(description="The Purchase's global id.")
    reason: str = strawberry.field(
        default="", description="Why the payment failed: at most 200 printable characters."
    )


@strawberry.type(description="The result of `purchaseFail`.")
class PurchaseFailPayload:
    purchase: PurchaseNode | None = strawberry.field(
        default=None,
        description="The purchase, now FAILED (its promocode use released); null when refused.",
    )
    errors: list[PurchaseError] = strawberry.field(
        description="Why the failure was refused; empty if not."
    )
