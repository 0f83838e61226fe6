"""The reward of a completed challenge: its terms (`promotionReward`) and accepting it
(`promotionRewardAccept`), the six steps of SPEC §2 in the caller's one transaction.

Accepting, in order, under the user's row lock (the lock `start` and the ride job take):
0. the guard: `UPDATE promotion_users SET status = REWARDED … WHERE status = COMPLETED AND
   claim_ends_at > now RETURNING …` — of concurrent accepts exactly one passes (PostgreSQL
   re-checks the WHERE after waiting on the row; SQLite serialises the transactions); the
   others find the run REWARDED and return the application it made (idempotent: the same
   application, never two, and the unique indexes on the run id would refuse a second);
1. the split: created if missing (decision, the seed's option a: a user who finished the
   challenge always gets the reward), and 5. marked used — one upsert does both;
2. the active pre-offer: the promotion's product joined with the pre-offer's terms;
3. the loan application;
4. the origination session, `sequence_id` 8 (the standard origination flow);
6. the run REWARDED (the guard of step 0).
The steps run in one transaction that the request owns: a failure at any step rolls all of
them back (tests inject one between every two steps).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.lean import HotStatement
from app.models.promotions import (
    ActivePreOffer,
    LoanApplication,
    OriginationSession,
    PromotionSplit,
    PromotionUser,
    PromotionUserStatus,
)
from app.services.errors import DomainError
from app.services.goals.locking import lock_user
from app.services.promotions import metrics
from app.services.promotions.codes import PromotionErrorCode
from app.services.promotions.rules import status_at

Status = PromotionUserStatus
Code = PromotionErrorCode
ORIGINATION_SEQUENCE_ID = 8

_NOW = bindparam("now", type_=PromotionUser.__table__.c.updated_at.type)
_CLAIM = HotStatement(
    update(PromotionUser)
    .where(
        PromotionUser.user_id == bindparam("b_user_id"),
        PromotionUser.promotion_id == bindparam("b_promotion_id"),
        PromotionUser.status == Status.COMPLETED,
        PromotionUser.claim_ends_at > _NOW,
    )
    .values(status=Status.REWARDED.value, rewarded_at=_NOW, updated_at=_NOW)
    .returning(
        PromotionUser.id,
        PromotionUser.pre_offer_id,
        PromotionUser.region,
        PromotionUser.reward,
        PromotionUser.completed_at,
    )
)
_RUN_STATE = HotStatement(
    select(
        PromotionUser.id,
        PromotionUser.status,
        PromotionUser.challenge_ends_at,
        PromotionUser.claim_ends_at,
        PromotionUser.reward,
    ).where(
        PromotionUser.user_id == bindparam("user_id"),
        PromotionUser.promotion_id == bindparam("promotion_id"),
    )
)


@dataclass(frozen=True)
class Reward:
    product_id: int
    amount_minor: int
    currency: str
    repayment_rate: str
    claim_ends_at: datetime | None


@dataclass(frozen=True)
class Accepted:
    application_id: uuid.UUID
    promotion_user_id: uuid.UUID
    product_id: int
    amount_minor: int
    currency: str
    repayment_rate: str
    created_at: datetime


def _reward(reward: dict[str, Any], claim_ends_at: datetime | None) -> Reward:
    return Reward(
        product_id=int(reward["product_id"]),
        amount_minor=int(reward["amount_minor"]),
        currency=str(reward["currency"]),
        repayment_rate=str(reward["repayment_rate"]),
        claim_ends_at=claim_ends_at,
    )


def _refusal(status: Status) -> DomainError:
    refusals = {
        Status.STARTED: (Code.NOT_COMPLETED, "Finish the challenge to get the reward."),
        Status.EXPIRED: (Code.CHALLENGE_OVER, "The challenge is over."),
        Status.REWARD_EXPIRED: (Code.REWARD_EXPIRED, "The reward has expired."),
        Status.REWARDED: (Code.ALREADY_REWARDED, "You have accepted this reward."),
    }
    code, message = refusals[status]
    return DomainError(code, message, "promotion")


async def _state(session: AsyncSession, user_id: uuid.UUID, promotion_id: uuid.UUID) -> Any:
    run = await _RUN_STATE.one_or_none(session, user_id=user_id, promotion_id=promotion_id)
    if run is None:
        raise DomainError(Code.NOT_STARTED, "You have not started this promotion.", "promotion")
    return run


async def reward_terms(
    session: AsyncSession, user_id: uuid.UUID, promotion_id: uuid.UUID, *, now: datetime
) -> Reward:
    """`promotionReward`: the offer a COMPLETED run earned; why not, as a typed error."""
    run = await _state(session, user_id, promotion_id)
    status = status_at(Status(run.status), run.challenge_ends_at, run.claim_ends_at, now)
    if status is not Status.COMPLETED:
        raise _refusal(status)
    return _reward(run.reward, run.claim_ends_at)


async def accept(
    session: AsyncSession, user_id: uuid.UUID, promotion_id: uuid.UUID, *, now: datetime
) -> Accepted:
    """`promotionRewardAccept`: the six steps, or the application an earlier call made."""
    await lock_user(session, user_id)
    claimed = await _CLAIM.one_or_none(
        session, b_user_id=user_id, b_promotion_id=promotion_id, now=now
    )
    if claimed is None:
        return await _accepted_before(session, user_id, promotion_id, now)
    reward = _reward(claimed.reward, None)
    split_id = await _use_split(session, user_id, promotion_id, claimed, now)
    active_id = await _active_pre_offer(session, user_id, claimed, reward)
    application = await _application(session, user_id, claimed.id, active_id, reward, now)
    await _origination_session(session, user_id, application.application_id, split_id)
    metrics.rewarded(session, claimed.completed_at, now)
    return application


async def _accepted_before(
    session: AsyncSession, user_id: uuid.UUID, promotion_id: uuid.UUID, now: datetime
) -> Accepted:
    run = await _state(session, user_id, promotion_id)
    if run.status == Status.REWARDED:
        application = await session.scalar(
            select(LoanApplication).where(LoanApplication.promotion_user_id == run.id)
        )
        if application is not None:
            return _accepted(application)
    status = status_at(Status(run.status), run.challenge_ends_at, run.claim_ends_at, now)
    raise _refusal(status)


def _accepted(application: LoanApplication) -> Accepted:
    return Accepted(
        application_id=application.id,
        promotion_user_id=application.promotion_user_id,
        product_id=application.product_id,
        amount_minor=application.amount_minor,
        currency=application.currency,
        repayment_rate=application.repayment_rate,
        created_at=application.created_at,
    )


async def _use_split(
    session: AsyncSession, user_id: uuid.UUID, promotion_id: uuid.UUID, claimed: Any, now: datetime
) -> uuid.UUID:
    """Steps 1 and 5: the user's split, created if missing, marked used."""
    statement = upsert_insert(session, PromotionSplit).values(
        id=uuid.uuid4(),
        user_id=user_id,
        promotion_id=promotion_id,
        pre_offer_id=claimed.pre_offer_id,
        region=claimed.region,
        created_on_accept=True,
        used_at=now,
        created_at=now,
        updated_at=now,
    )
    split_id = await session.scalar(
        statement.on_conflict_do_update(
            index_elements=["user_id", "promotion_id"],
            set_={"used_at": now, "updated_at": now},
        ).returning(PromotionSplit.id)
    )
    assert split_id is not None
    return split_id


async def _active_pre_offer(
    session: AsyncSession, user_id: uuid.UUID, claimed: Any, reward: Reward
) -> uuid.UUID:
    """Step 2: the product joined with the pre-offer's terms."""
    active_id = uuid.uuid4()
    await session.execute(
        insert(ActivePreOffer).values(
            id=active_id,
            promotion_user_id=claimed.id,
            user_id=user_id,
            pre_offer_id=claimed.pre_offer_id,
            product_id=reward.product_id,
            amount_minor=reward.amount_minor,
            currency=reward.currency,
            repayment_rate=reward.repayment_rate,
        )
    )
    return active_id


async def _application(
    session: AsyncSession,
    user_id: uuid.UUID,
    run_id: uuid.UUID,
    active_id: uuid.UUID,
    reward: Reward,
    now: datetime,
) -> Accepted:
    """Step 3: the loan application."""
    application_id = uuid.uuid4()
    await session.execute(
        insert(LoanApplication).values(
            id=application_id,
            promotion_user_id=run_id,
            user_id=user_id,
            active_pre_offer_id=active_id,
            product_id=reward.product_id,
            amount_minor=reward.amount_minor,
            currency=reward.currency,
            repayment_rate=reward.repayment_rate,
            status="CREATED",
            created_at=now,
            updated_at=now,
        )
    )
    return Accepted(
        application_id=application_id,
        promotion_user_id=run_id,
        product_id=reward.product_id,
        amount_minor=reward.amount_minor,
        currency=reward.currency,
        repayment_rate=reward.repayment_rate,
        created_at=now,
    )


async def _origination_session(
    session: AsyncSession, user_id: uuid.UUID, application_id: uuid.UUID, split_id: uuid.UUID
) -> None:
    """Step 4: the origination session of the standard flow."""
    await session.execute(
        insert(OriginationSession).values(
            id=uuid.uuid4(),
            application_id=application_id,
            user_id=user_id,
            split_id=split_id,
            sequence_id=ORIGINATION_SEQUENCE_ID,
        )
    )
