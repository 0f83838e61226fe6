"""Promotions and the geo config, admin side: create, edit, find, list; the regions' flags.

Every check runs before anything is written, so a refused request changes nothing, and each
change writes an `AuditLog` row. Editing a promotion never changes a run already started
(promotion users snapshot the conditions and reward at the start). Low volume: the ORM.

Decisions:
- A promotion's key is a slug (`newcomer-mx-5`), unique and never changed: pre-offers name
  it. A duplicate key is KEY_TAKEN, also when two creations race (the unique index decides).
- A region is an ISO 3166-1 alpha-2 country (`MX`) or an ISO 3166-2 subdivision (`MX-CMX`).
  A region with no row has promotions off: scoring may send pre-offers for a country before
  it launches there, and nothing starts until an admin turns the flag on.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.identity import AuditLog
from app.models.promotions import Promotion, PromotionRegion
from app.services.errors import DomainError
from app.services.promotions.codes import PromotionAdminErrorCode
from app.services.promotions.rules import check_repayment_rate
from app.services.validation import MAX_MINOR, InvalidValue, check_currency, check_json

Code = PromotionAdminErrorCode

KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
REGION_PATTERN = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")
MAX_TITLE_LENGTH = 200
MAX_CONDITIONS_BYTES = 4096
MAX_TARGET_RIDES = 1000
MAX_DAYS = 365
MAX_PRODUCT_ID = 2**31 - 1


@dataclass(frozen=True)
class PromotionInput:
    key: str
    title: str
    target_rides: int
    min_ride_amount_minor: int
    currency: str
    reward_product_id: int
    reward_amount_minor: int
    reward_repayment_rate: str
    challenge_days: int = 14
    claim_days: int = 7
    conditions: Mapping[str, Any] | None = None
    active: bool = True


@dataclass(frozen=True)
class PromotionChanges:
    """Fields to change; None leaves a field as it is (the key never changes)."""

    title: str | None = None
    target_rides: int | None = None
    min_ride_amount_minor: int | None = None
    currency: str | None = None
    reward_product_id: int | None = None
    reward_amount_minor: int | None = None
    reward_repayment_rate: str | None = None
    challenge_days: int | None = None
    claim_days: int | None = None
    conditions: Mapping[str, Any] | None = None
    active: bool | None = None


def _check_int(value: int, field: str, code: Code, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DomainError(code, f"Give a whole number from {low} to {high}.", field)
    return value


def check_key(key: str, field: str = "key") -> str:
    if not KEY_PATTERN.fullmatch(key):
        raise DomainError(
            Code.INVALID_KEY, "Use 1-64 lower-case letters, digits, '-' or '_'.", field
        )
    return key


def check_region(region: str, field: str = "region") -> str:
    normalized = region.strip().upper()
    if not REGION_PATTERN.fullmatch(normalized):
        raise DomainError(
            Code.INVALID_REGION, "Use a country (MX) or a country subdivision (MX-CMX).", field
        )
    return normalized


def _validated(data: PromotionInput) -> PromotionInput:
    title = data.title.strip()
    if not title or len(title) > MAX_TITLE_LENGTH or not title.isprintable():
        raise DomainError(
            Code.INVALID_TITLE, f"Give a title of 1 to {MAX_TITLE_LENGTH} characters.", "title"
        )
    _check_int(data.target_rides, "targetRides", Code.INVALID_TARGET, 1, MAX_TARGET_RIDES)
    _check_int(data.min_ride_amount_minor, "minRideAmount", Code.INVALID_AMOUNT, 0, MAX_MINOR)
    try:
        check_currency(data.currency)
    except InvalidValue as exc:
        raise DomainError(Code.INVALID_CURRENCY, str(exc), "currency") from exc
    _check_int(data.challenge_days, "challengeDays", Code.INVALID_DAYS, 1, MAX_DAYS)
    _check_int(data.claim_days, "claimDays", Code.INVALID_DAYS, 1, MAX_DAYS)
    _check_int(data.reward_product_id, "reward.productId", Code.INVALID_PRODUCT, 1, MAX_PRODUCT_ID)
    _check_int(data.reward_amount_minor, "reward.amount", Code.INVALID_AMOUNT, 1, MAX_MINOR)
    try:
        rate = check_repayment_rate(data.reward_repayment_rate)
    except InvalidValue as exc:
        raise DomainError(Code.INVALID_RATE, str(exc), "reward.repaymentRate") from exc
    conditions = dict(data.conditions or {})
    check_json(conditions, "conditions", Code.INVALID_CONDITIONS, max_bytes=MAX_CONDITIONS_BYTES)
    return replace(data, title=title, reward_repayment_rate=rate, conditions=conditions)


def _audit(session: AsyncSession, actor: str, action: str, target: str, reason: str = "") -> None:
    session.add(AuditLog(actor=actor, action=action, target=target, reason=reason))


async def create_promotion(session: AsyncSession, data: PromotionInput, *, actor: str) -> Promotion:
    check_key(data.key)
    valid = _validated(data)
    promotion = Promotion(
        key=valid.key,
        title=valid.title,
        target_rides=valid.target_rides,
        min_ride_amount_minor=valid.min_ride_amount_minor,
        currency=valid.currency,
        challenge_days=valid.challenge_days,
        claim_days=valid.claim_days,
        conditions=dict(valid.conditions or {}),
        reward_product_id=valid.reward_product_id,
        reward_amount_minor=valid.reward_amount_minor,
        reward_repayment_rate=valid.reward_repayment_rate,
        active=valid.active,
        updated_by=actor,
    )
    try:
        async with session.begin_nested():
            session.add(promotion)
            await session.flush()
    except IntegrityError:
        raise DomainError(Code.KEY_TAKEN, "A promotion with this key exists.", "key") from None
    _audit(session, actor, "promotion.create", f"promotion:{promotion.key}")
    return promotion


async def update_promotion(
    session: AsyncSession, promotion_id: uuid.UUID, changes: PromotionChanges, *, actor: str
) -> Promotion:
    promotion = await session.get(Promotion, promotion_id, with_for_update=True)
    if promotion is None:
        raise DomainError(Code.NOT_FOUND, "No such promotion.", "id")
    current = _as_input(promotion)
    given = {f.name: getattr(changes, f.name) for f in fields(changes)}
    merged = _validated(replace(current, **{k: v for k, v in given.items() if v is not None}))
    for name in given:
        setattr(promotion, name, getattr(merged, name))  # `_validated` made conditions a dict
    promotion.updated_by = actor
    _audit(session, actor, "promotion.update", f"promotion:{promotion.key}")
    await session.flush()
    return promotion


def _as_input(promotion: Promotion) -> PromotionInput:
    return PromotionInput(
        key=promotion.key,
        title=promotion.title,
        target_rides=promotion.target_rides,
        min_ride_amount_minor=promotion.min_ride_amount_minor,
        currency=promotion.currency,
        reward_product_id=promotion.reward_product_id,
        reward_amount_minor=promotion.reward_amount_minor,
        reward_repayment_rate=promotion.reward_repayment_rate,
        challenge_days=promotion.challenge_days,
        claim_days=promotion.claim_days,
        conditions=promotion.conditions,
        active=promotion.active,
    )


async def promotions_by_keys(session: AsyncSession, keys: Sequence[str]) -> dict[str, Promotion]:
    if not keys:
        return {}
    found = await session.scalars(select(Promotion).where(Promotion.key.in_(set(keys))))
    return {promotion.key: promotion for promotion in found}


async def promotions_by_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Promotion]:
    if not ids:
        return {}
    found = await session.scalars(select(Promotion).where(Promotion.id.in_(set(ids))))
    return {promotion.id: promotion for promotion in found}


async def list_promotions(session: AsyncSession) -> list[Promotion]:
    return list(await session.scalars(select(Promotion).order_by(Promotion.created_at)))


async def set_region(
    session: AsyncSession, region: str, enabled: bool, *, actor: str
) -> PromotionRegion:
    """Turn promotions on or off in a region (idempotent; the last write wins)."""
    code = check_region(region)
    row = await session.get(PromotionRegion, code, with_for_update=True)
    if row is None:
        row = PromotionRegion(region=code, promotions_enabled=enabled, updated_by=actor)
        try:
            async with session.begin_nested():
                session.add(row)
                await session.flush()
        except IntegrityError:  # created meanwhile: update that one
            row = await session.get(PromotionRegion, code, with_for_update=True)
            assert row is not None
    row.promotions_enabled, row.updated_by = enabled, actor
    _audit(session, actor, "promotion_region.set", f"region:{code}", "on" if enabled else "off")
    await session.flush()
    return row


async def list_regions(session: AsyncSession) -> list[PromotionRegion]:
    return list(await session.scalars(select(PromotionRegion).order_by(PromotionRegion.region)))


async def region_enabled(session: AsyncSession, region: str) -> bool:
    """Whether promotions run in `region`: its own flag, else its country's, else off."""
    country = region.split("-", 1)[0]
    rows = await session.execute(
        select(PromotionRegion.region, PromotionRegion.promotions_enabled).where(
            PromotionRegion.region.in_({region, country})
        )
    )
    flags = {row.region: row.promotions_enabled for row in rows}
    if region in flags:
        return flags[region]
    return flags.get(country, False)
