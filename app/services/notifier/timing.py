"""When a rule's step is sent (pure): now, after a delay, at a local time, or day N of a sequence.

A step has up to three fields, applied in this order to the moment the event occurred:
- `days`: that many calendar days later **in the client's timezone** (a day across a DST
  change is 23 or 25 hours; the local clock time is kept);
- `at` ("HH:MM"): at that local time of day — the same day if it is still ahead, else the
  next day (with `days`, on day N itself, even if that time has passed);
- `delay_minutes`: then that many minutes later.
No field: now. DST: a local time in the spring-forward gap is sent at the first instant after
the gap, an ambiguous one at its first occurrence (`app.services.local_time`).

A time in the past (an event published late) is sent at once, never skipped: the expiry
(`expires_after_hours`) is what withholds stale mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.services.local_time import local_instant

_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_DAYS = 366
MAX_DELAY_MINUTES = 60 * 24 * 366


class TimingError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Timing:
    days: int | None = None
    at: time | None = None
    delay_minutes: int = 0

    @property
    def immediate(self) -> bool:
        return self.days is None and self.at is None and self.delay_minutes == 0


def parse_at(value: str) -> time:
    match = _AT.match(value)
    if match is None:
        raise TimingError(f"'at' is a local time HH:MM (00:00-23:59), not {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def timing(days: int | None, at: str | None, delay_minutes: int | None) -> Timing:
    if days is not None and not 0 <= days <= MAX_DAYS:
        raise TimingError(f"'days' is 0-{MAX_DAYS}")
    if delay_minutes is not None and not 0 <= delay_minutes <= MAX_DELAY_MINUTES:
        raise TimingError(f"'delay_minutes' is 0-{MAX_DELAY_MINUTES}")
    return Timing(days, parse_at(at) if at is not None else None, delay_minutes or 0)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimingError(f"unknown timezone {name!r}") from exc


def send_at(step: Timing, occurred_at: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant a step is due, for an event at `occurred_at` (aware) in zone `tz`."""
    moment = occurred_at.astimezone(UTC)
    if step.days is not None or step.at is not None:
        local = moment.astimezone(tz)
        day = local.date() + timedelta(days=step.days or 0)
        clock = step.at if step.at is not None else local.time().replace(tzinfo=None)
        moment = local_instant(day, clock, tz)
        if step.days is None and moment < occurred_at:
            moment = local_instant(day + timedelta(days=1), clock, tz)
    return moment + timedelta(minutes=step.delay_minutes)
