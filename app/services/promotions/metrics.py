"""The promotions domain's Prometheus metrics (SPEC §2): the funnel and the claim lag.

Counted after commit (`app.uow.on_commit`), so a rolled-back transaction counts nothing.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.promotions import RideReason
from app.uow import on_commit

PROMOTIONS_STARTED = Counter("engage_promotions_started_total", "Promotion runs started.")
PROMOTIONS_COMPLETED = Counter(
    "engage_promotions_completed_total", "Promotion runs that reached their target."
)
PROMOTIONS_REWARDED = Counter(
    "engage_promotions_rewarded_total", "Promotion rewards accepted (loan applications)."
)
PROMOTIONS_EXPIRED = Counter(
    "engage_promotions_expired_total", "Promotion runs whose challenge window closed short."
)
PROMOTIONS_REWARD_EXPIRED = Counter(
    "engage_promotions_reward_expired_total", "Completed runs whose reward went unclaimed."
)
PROMOTION_RIDES = Counter(
    "engage_promotion_rides_total", "Rides offered to STARTED promotions, by reason.", ["reason"]
)
PROMOTION_CLAIM_LAG = Histogram(
    "engage_promotion_claim_lag_seconds",
    "Seconds from completing a promotion to accepting its reward.",
    buckets=(60, 600, 3600, 6 * 3600, 86400, 2 * 86400, 4 * 86400, 7 * 86400, 14 * 86400),
)


def started(session: AsyncSession) -> None:
    on_commit(session, PROMOTIONS_STARTED.inc)


def completed(session: AsyncSession) -> None:
    on_commit(session, PROMOTIONS_COMPLETED.inc)


def rewarded(session: AsyncSession, completed_at: datetime | None, now: datetime) -> None:
    on_commit(session, PROMOTIONS_REWARDED.inc)
    if completed_at is not None:
        lag = max(0.0, (now - completed_at).total_seconds())
        on_commit(session, lambda: PROMOTION_CLAIM_LAG.observe(lag))


def expired(session: AsyncSession, count: int) -> None:
    if count:
        on_commit(session, lambda: PROMOTIONS_EXPIRED.inc(count))


def reward_expired(session: AsyncSession, count: int) -> None:
    if count:
        on_commit(session, lambda: PROMOTIONS_REWARD_EXPIRED.inc(count))


def rides_seen(session: AsyncSession, reasons: list[RideReason]) -> None:
    if reasons:
        on_commit(session, lambda: _count_rides(reasons))


def _count_rides(reasons: list[RideReason]) -> None:
    for reason in reasons:
        PROMOTION_RIDES.labels(reason.value).inc()
