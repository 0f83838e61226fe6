"""A member's limit in a frame (pure): what remains, whether a fare fits, which alerts it crosses.

Usage is what the member was charged in the frame plus the holds still alive. The owner is
told when usage reaches 80 % and 100 % of the limit; each alert is crossed once per frame
(the notifications' dedupe keys hold the frame's start).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.models.family import FamilyNotificationKind

ALERT_SHARES: tuple[tuple[FamilyNotificationKind, int], ...] = (
    (FamilyNotificationKind.LIMIT_80, 80),
    (FamilyNotificationKind.LIMIT_100, 100),
)


@dataclass(frozen=True, slots=True)
class Usage:
    limit: int
    charged: int
    held: int

    @property
    def used(self) -> int:
        return self.charged + self.held

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def fits(self, amount: int) -> bool:
        return self.used + amount <= self.limit


def reached(limit: int, used: int, share: int) -> bool:
    """Whether `used` is at least `share` percent of `limit` (in integers: no rounding)."""
    return used * 100 >= limit * share


def alerts_crossed(limit: int, before: int, after: int) -> tuple[FamilyNotificationKind, ...]:
    """The alerts usage crosses going from `before` to `after` (none for a zero limit)."""
    if limit <= 0:
        return ()
    return tuple(
        kind
        for kind, share in ALERT_SHARES
        if reached(limit, after, share) and not reached(limit, before, share)
    )
