"""Cards: a user's own (as the card store pushes them) and the family's shared ones.

The card store owns card data; engage keeps each card's id, brand, last four digits and
expiry, never a number. The owner shares some of their own cards with the family and picks
the main one (`familyPaymentMethodSet` replaces the whole list, so a retry changes nothing).
A removed card leaves every family it was shared with (the foreign keys cascade; a main card
becomes none).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.models.family import FamilyAccount, FamilyPaymentMethod, PaymentCard
from app.models.identity import User
from app.services.errors import DomainError
from app.services.family.accounts import locked_family
from app.services.family.codes import CardErrorCode, FamilyErrorCode

MAX_SHARED = 5
_CARD_ID = re.compile(r"^card-[0-9A-Za-z]{1,59}$")
_BRAND = re.compile(r"^[A-Z][A-Z0-9_]{1,15}$")
_LAST4 = re.compile(r"^[0-9]{4}$")


def check_card_id(card_id: str, field: str = "cardId") -> str:
    if not _CARD_ID.match(card_id):
        raise DomainError(
            CardErrorCode.INVALID_CARD_ID, "A card id is card-<letters and digits>.", field
        )
    return card_id


async def upsert_card(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    card_id: str,
    brand: str,
    last4: str,
    expires_month: int,
    expires_year: int,
    now: datetime,
) -> bool:
    """Store the card store's view of a user's card; True if it was new."""
    check_card_id(card_id)
    if not _BRAND.match(brand):
        raise DomainError(CardErrorCode.INVALID_BRAND, "A brand is VISA, MASTERCARD, …", "brand")
    if not _LAST4.match(last4):
        raise DomainError(CardErrorCode.INVALID_LAST4, "last4 is four digits.", "last4")
    if not 1 <= expires_month <= 12 or not 2000 <= expires_year <= 2100:
        raise DomainError(
            CardErrorCode.INVALID_EXPIRY, "An expiry is a month and a year.", "expires"
        )
    owner = await session.scalar(select(PaymentCard.user_id).where(PaymentCard.id == card_id))
    if owner is not None and owner != user_id:
        raise DomainError(
            CardErrorCode.CARD_OF_ANOTHER_USER, "The id names another user's card.", "cardId"
        )
    values = {
        "brand": brand,
        "last4": last4,
        "expires_month": expires_month,
        "expires_year": expires_year,
        "updated_at": now,
    }
    if owner is not None:
        await session.execute(update(PaymentCard).where(PaymentCard.id == card_id).values(values))
        return False
    inserted = await session.execute(
        upsert_insert(session, PaymentCard)
        .values(id=card_id, user_id=user_id, created_at=now, **values)
        .on_conflict_do_nothing()
        .returning(PaymentCard.id)
    )
    if inserted.first() is None:  # a concurrent upsert won; it names the same card
        return await upsert_card(
            session,
            user_id,
            card_id=card_id,
            brand=brand,
            last4=last4,
            expires_month=expires_month,
            expires_year=expires_year,
            now=now,
        )
    return True


async def remove_card(session: AsyncSession, user_id: uuid.UUID, card_id: str) -> None:
    check_card_id(card_id)
    removed = await session.execute(
        delete(PaymentCard)
        .where(PaymentCard.id == card_id, PaymentCard.user_id == user_id)
        .returning(PaymentCard.id)
    )
    if removed.first() is None:
        raise DomainError(CardErrorCode.NOT_FOUND, "The user has no such card.", "cardId")


async def set_family_cards(
    session: AsyncSession,
    account_id: uuid.UUID,
    owner_id: uuid.UUID,
    card_ids: Sequence[str],
    main_card_id: str | None,
    *,
    now: datetime,
) -> None:
    """Share exactly these of the owner's cards with the family, `main_card_id` first choice."""
    await locked_family(session, account_id, owner_id)
    ordered = _distinct(card_ids)
    if len(ordered) > MAX_SHARED:
        raise DomainError(FamilyErrorCode.TOO_MANY_CARDS, f"At most {MAX_SHARED} cards.", "cardIds")
    owned = set(
        (
            await session.scalars(
                select(PaymentCard.id).where(
                    PaymentCard.user_id == owner_id, PaymentCard.id.in_(ordered)
                )
            )
        ).all()
    )
    for index, card_id in enumerate(ordered):
        if card_id not in owned:
            raise DomainError(
                FamilyErrorCode.CARD_NOT_FOUND, "Not a card of yours.", f"cardIds.{index}"
            )
    if main_card_id is not None and main_card_id not in ordered:
        raise DomainError(
            FamilyErrorCode.MAIN_CARD_NOT_SHARED,
            "The main card must be one of the shared cards.",
            "mainCardId",
        )
    await session.execute(
        delete(FamilyPaymentMethod).where(FamilyPaymentMethod.account_id == account_id)
    )
    if ordered:
        await session.execute(
            upsert_insert(session, FamilyPaymentMethod).values(
                [
                    {
                        "account_id": account_id,
                        "card_id": card_id,
                        "position": position,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for position, card_id in enumerate(ordered)
                ]
            )
        )
    main = main_card_id if main_card_id is not None else (ordered[0] if ordered else None)
    await session.execute(
        update(FamilyAccount)
        .where(FamilyAccount.id == account_id)
        .values(main_card_id=main, updated_at=now)
    )


def _distinct(card_ids: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for index, card_id in enumerate(card_ids):
        if not _CARD_ID.match(card_id):
            raise DomainError(FamilyErrorCode.CARD_NOT_FOUND, "Not a card id.", f"cardIds.{index}")
        seen.setdefault(card_id, None)
    return list(seen)


async def user_exists(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return await session.scalar(select(User.id).where(User.id == user_id)) is not None
