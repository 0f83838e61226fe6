"""The promotion rules, pure: the status machine, its deadlines, and whether a ride counts.

```
STARTED --(target rides inside the challenge window)--> COMPLETED --(accept)--> REWARDED
STARTED --(challenge window over)--> EXPIRED
COMPLETED --(claim window over, unclaimed)--> REWARD_EXPIRED
```

Windows are half-open: a ride at `started_at` counts, one at `challenge_ends_at` does not;
a claim at `claim_ends_at` is too late. The stored status lags the clock until the expiry
job or a read catches up, so every decision goes through `status_at`, which applies the
deadlines lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from app.models.promotions import PromotionUserStatus, RideReason
from app.services.validation import InvalidValue

Status = PromotionUserStatus

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.STARTED: frozenset({Status.COMPLETED, Status.EXPIRED}),
    Status.COMPLETED: frozenset({Status.REWARDED, Status.REWARD_EXPIRED}),
    Status.REWARDED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.REWARD_EXPIRED: frozenset(),
}


class InvalidTransition(ValueError):
    def __init__(self, current: Status, wanted: Status) -> None:
        super().__init__(f"a promotion user can't go from {current} to {wanted}")
        self.current, self.wanted = current, wanted


def transition(current: Status, wanted: Status) -> Status:
    """`wanted`, if the machine allows it from `current`; InvalidTransition otherwise."""
    if wanted not in TRANSITIONS[current]:
        raise InvalidTransition(current, wanted)
    return wanted


def challenge_deadline(started_at: datetime, challenge_days: int) -> datetime:
    return started_at + timedelta(days=challenge_days)


def claim_deadline(completed_at: datetime, claim_days: int) -> datetime:
    return completed_at + timedelta(days=claim_days)


def status_at(
    status: Status, challenge_ends_at: datetime, claim_ends_at: datetime | None, now: datetime
) -> Status:
    """The status as of `now`: a passed deadline expires the run even before it is stored."""
    if status is Status.STARTED and now >= challenge_ends_at:
        return Status.EXPIRED
    if status is Status.COMPLETED and claim_ends_at is not None and now >= claim_ends_at:
        return Status.REWARD_EXPIRED
    return status


@dataclass(frozen=True, slots=True)
class Ride:
    """What a promotion needs to know about an order."""

    is_ride: bool
    complete: bool
    amount_minor: int
    currency: str
    at: datetime | None  # when the ride was completed


@dataclass(frozen=True, slots=True)
class Terms:
    """A promotion user's conditions, as snapshotted at the start."""

    min_ride_amount_minor: int
    currency: str
    started_at: datetime
    challenge_ends_at: datetime


def ride_reason(ride: Ride, terms: Terms) -> RideReason:
    """Why `ride` counts (COUNTED) or not; the first failing condition is the reason."""
    if not ride.is_ride:
        return RideReason.NOT_A_RIDE
    if not ride.complete or ride.at is None:
        return RideReason.NOT_COMPLETE
    if ride.currency != terms.currency:
        return RideReason.CURRENCY_MISMATCH
    if ride.amount_minor < terms.min_ride_amount_minor:
        return RideReason.BELOW_MINIMUM
    if not terms.started_at <= ride.at < terms.challenge_ends_at:
        return RideReason.OUTSIDE_WINDOW
    return RideReason.COUNTED


_RATE = "INVALID_RATE"


def check_repayment_rate(value: str) -> str:
    """A decimal percent in (0, 100] with at most two decimals, normalised ("15.0" → "15")."""
    try:
        rate = Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        raise InvalidValue(
            _RATE, "Give the repayment rate as a decimal percent, e.g. 15."
        ) from None
    if not rate.is_finite() or rate <= 0 or rate > 100:
        raise InvalidValue(_RATE, "The repayment rate must be more than 0 and at most 100.")
    if rate != rate.quantize(Decimal("0.01")):
        raise InvalidValue(_RATE, "The repayment rate may have at most two decimals.")
    return format(rate.normalize(), "f")
