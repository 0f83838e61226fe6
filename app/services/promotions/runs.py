"""A user's promotion: which one is theirs, whether they may take part, the split, the start.

The user's promotion (`current`) is read in one prebuilt statement (it backs the app-start
`launch` badge as well as `viewer.promotion`): every pre-offer of the user with its
promotion, its run if any and the geo flags of its region and country. The one shown is the
run still in play (STARTED or COMPLETED as of now), else the newest pre-offer's.

Eligibility (SPEC §2, the seed's split check): a newcomer pre-offer mapped to a promotion,
the promotion active, the geo flag on for the pre-offer's region (its own row, else its
country's; no row: off), and no run of the user ever REWARDED (nobody is a newcomer twice).
Reading an eligible promotion without a split creates the split (INSERT … ON CONFLICT DO
NOTHING: concurrent reads create one).

Starting locks the user's row (the same lock the ride job and `accept` take, so the
newcomer check can't race a reward being accepted), checks eligibility again and inserts the
run; the unique (user, promotion) index makes a second start ALREADY_STARTED, also when two
race. Lazy expiry: a read that finds a deadline passed writes the new status (a conditional
UPDATE, so the expiry job and a read can't both count it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db import upsert_insert
from app.lean import HotStatement
from app.models.promotions import (
    PreOffer,
    Promotion,
    PromotionRegion,
    PromotionSplit,
    PromotionUser,
    PromotionUserStatus,
)
from app.services.errors import DomainError
from app.services.goals.locking import lock_user
from app.services.promotions import metrics
from app.services.promotions.codes import IneligibleReason, PromotionErrorCode
from app.services.promotions.rules import challenge_deadline, status_at

Status = PromotionUserStatus
Code = PromotionErrorCode
IN_PLAY = frozenset({Status.STARTED, Status.COMPLETED})

_REGION = aliased(PromotionRegion)
_COUNTRY = aliased(PromotionRegion)
_REWARDED_BEFORE = (
    select(PromotionUser.id)
    .where(
        PromotionUser.user_id == bindparam("user_id"),
        PromotionUser.status == Status.REWARDED,
    )
    .exists()
)
_CURRENT = HotStatement(
    select(
        PreOffer.id.label("pre_offer_id"),
        PreOffer.region,
        PreOffer.created_at.label("offered_at"),
        Promotion.id.label("promotion_id"),
        Promotion.active,
        _REGION.promotions_enabled.label("region_enabled"),
        _COUNTRY.promotions_enabled.label("country_enabled"),
        _REWARDED_BEFORE.label("rewarded_before"),
        PromotionUser.id.label("run_id"),
        PromotionUser.status,
        PromotionUser.challenge_ends_at,
        PromotionUser.claim_ends_at,
        PromotionUser.progress,
        PromotionUser.target_rides,
        PromotionSplit.id.label("split_id"),
    )
    .join(Promotion, Promotion.id == PreOffer.promotion_id)
    .outerjoin(_REGION, _REGION.region == PreOffer.region)
    .outerjoin(_COUNTRY, _COUNTRY.region == func.substr(PreOffer.region, 1, 2))
    .outerjoin(
        PromotionUser,
        and_(
            PromotionUser.user_id == PreOffer.user_id,
            PromotionUser.promotion_id == PreOffer.promotion_id,
        ),
    )
    .outerjoin(
        PromotionSplit,
        and_(
            PromotionSplit.user_id == PreOffer.user_id,
            PromotionSplit.promotion_id == PreOffer.promotion_id,
        ),
    )
    .where(PreOffer.user_id == bindparam("user_id"))
)


@dataclass(frozen=True)
class Current:
    """The user's promotion as of `now` (statuses with the deadlines applied)."""

    promotion_id: uuid.UUID
    pre_offer_id: uuid.UUID
    region: str
    run_id: uuid.UUID | None
    status: Status | None
    progress: int
    target_rides: int | None
    challenge_ends_at: datetime | None
    claim_ends_at: datetime | None
    split_id: uuid.UUID | None
    ineligible: IneligibleReason | None
    stored_status: Status | None  # as stored, before the deadlines were applied

    @property
    def eligible(self) -> bool:
        return self.ineligible is None


def _ineligible(row: Any) -> IneligibleReason | None:
    if row.rewarded_before and row.status != Status.REWARDED:
        return IneligibleReason.NOT_A_NEWCOMER
    if not row.active:
        return IneligibleReason.PROMOTION_INACTIVE
    enabled = row.region_enabled if row.region_enabled is not None else row.country_enabled
    if not enabled:
        return IneligibleReason.PROMOTIONS_DISABLED
    return None


def _current(row: Any, now: datetime) -> Current:
    stored = Status(row.status) if row.status is not None else None
    status = (
        status_at(stored, row.challenge_ends_at, row.claim_ends_at, now)
        if stored is not None
        else None
    )
    return Current(
        promotion_id=row.promotion_id,
        pre_offer_id=row.pre_offer_id,
        region=row.region,
        run_id=row.run_id,
        status=status,
        progress=row.progress or 0,
        target_rides=row.target_rides,
        challenge_ends_at=row.challenge_ends_at,
        claim_ends_at=row.claim_ends_at,
        split_id=row.split_id,
        ineligible=_ineligible(row),
        stored_status=stored,
    )


def pick(candidates: Sequence[Current]) -> Current | None:
    """The run still in play, else the newest pre-offer's promotion (candidates: newest first)."""
    for candidate in candidates:
        if candidate.status in IN_PLAY:
            return candidate
    return candidates[0] if candidates else None


async def offers(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> list[Current]:
    """Every promotion offered to the user (one per pre-offer), newest offer first."""
    rows = await _CURRENT.rows(session, user_id=user_id)
    rows.sort(key=lambda row: (row.offered_at, str(row.pre_offer_id)), reverse=True)
    return [_current(row, now) for row in rows]


async def current(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> Current | None:
    """The user's promotion, read only (the app-start badge)."""
    return pick(await offers(session, user_id, now=now))


async def open_landing(
    session: AsyncSession, user_id: uuid.UUID, *, now: datetime, grace: timedelta
) -> Current | None:
    """`viewer.promotion`: the user's promotion; stores a deadline's status once `grace` has
    passed after it (see expiry), and creates the split when the user is eligible and has
    none."""
    found = await current(session, user_id, now=now)
    if found is None:
        return None
    await store_expiry(session, found, now - grace, now)
    if found.eligible and found.split_id is None and found.status in (None, *IN_PLAY):
        split_id = await ensure_split(session, user_id, found)
        found = replace(found, split_id=split_id)
    return found


async def ensure_split(session: AsyncSession, user_id: uuid.UUID, found: Current) -> uuid.UUID:
    """The user's split for the promotion, created if missing (concurrent callers: one)."""
    await session.execute(
        upsert_insert(session, PromotionSplit)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            promotion_id=found.promotion_id,
            pre_offer_id=found.pre_offer_id,
            region=found.region,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "promotion_id"])
    )
    split_id = await session.scalar(
        select(PromotionSplit.id).where(
            PromotionSplit.user_id == user_id, PromotionSplit.promotion_id == found.promotion_id
        )
    )
    assert split_id is not None
    return split_id


async def store_expiry(
    session: AsyncSession, found: Current, cutoff: datetime, now: datetime
) -> None:
    """Write the status a deadline before `cutoff` gave the run (lazy expiry), once."""
    if found.run_id is None or found.status == found.stored_status:
        return
    assert found.stored_status is not None and found.status is not None
    deadline = (
        PromotionUser.challenge_ends_at
        if found.status is Status.EXPIRED
        else PromotionUser.claim_ends_at
    )
    result = await session.execute(
        update(PromotionUser)
        .where(
            PromotionUser.id == found.run_id,
            PromotionUser.status == found.stored_status,
            deadline <= cutoff,
        )
        .values(status=found.status, expired_at=now, updated_at=now)
    )
    if getattr(result, "rowcount", 0):
        if found.status is Status.EXPIRED:
            metrics.expired(session, 1)
        else:
            metrics.reward_expired(session, 1)


async def start(
    session: AsyncSession, user_id: uuid.UUID, promotion_id: uuid.UUID, *, now: datetime
) -> PromotionUser:
    """`promotionStart`: begin the challenge of the user's pre-offer for this promotion."""
    await lock_user(session, user_id)
    candidates = await offers(session, user_id, now=now)
    found = next((c for c in candidates if c.promotion_id == promotion_id), None)
    if found is None:
        raise DomainError(Code.NO_PRE_OFFER, "You have no offer for this promotion.", "promotion")
    if found.run_id is not None:
        raise DomainError(Code.ALREADY_STARTED, "You started this promotion already.", "promotion")
    _refuse_ineligible(found)
    promotion = await session.get(Promotion, promotion_id)
    pre_offer = await session.get(PreOffer, found.pre_offer_id)
    assert promotion is not None and pre_offer is not None
    run = PromotionUser(
        user_id=user_id,
        promotion_id=promotion_id,
        pre_offer_id=pre_offer.id,
        status=Status.STARTED,
        region=pre_offer.region,
        target_rides=promotion.target_rides,
        min_ride_amount_minor=promotion.min_ride_amount_minor,
        currency=promotion.currency,
        claim_days=promotion.claim_days,
        progress=0,
        reward=reward_of(promotion, pre_offer),
        started_at=now,
        challenge_ends_at=challenge_deadline(now, promotion.challenge_days),
    )
    session.add(run)
    await session.flush()
    if found.split_id is None:
        await ensure_split(session, user_id, found)
    metrics.started(session)
    return run


def _refuse_ineligible(found: Current) -> None:
    messages = {
        IneligibleReason.NOT_A_NEWCOMER: (Code.NOT_A_NEWCOMER, "You took part in a promotion."),
        IneligibleReason.PROMOTION_INACTIVE: (
            Code.PROMOTION_INACTIVE,
            "This promotion is not running.",
        ),
        IneligibleReason.PROMOTIONS_DISABLED: (
            Code.PROMOTIONS_DISABLED,
            "Promotions are not available in your region.",
        ),
    }
    if found.ineligible is not None:
        code, message = messages[found.ineligible]
        raise DomainError(code, message, "promotion")


def reward_of(promotion: Promotion, pre_offer: PreOffer) -> dict[str, Any]:
    """The offer a run earns: the promotion's product with the pre-offer's terms, each term
    the promotion's reward template where scoring gave none."""
    return {
        "product_id": promotion.reward_product_id,
        "amount_minor": pre_offer.amount_minor or promotion.reward_amount_minor,
        "currency": pre_offer.currency or promotion.currency,
        "repayment_rate": pre_offer.repayment_rate or promotion.reward_repayment_rate,
    }


__all__ = ["Current", "current", "ensure_split", "offers", "open_landing", "reward_of", "start"]
