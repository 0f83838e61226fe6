"""Local calendar times as UTC instants, across DST (pure), shared by the domains' rules.

Decisions on DST: a local time that doesn't exist (the spring-forward gap) is the first
instant after the gap (02:30 → 03:00 where clocks jump 02:00 → 03:00); an ambiguous one (the
autumn repeat) is its first occurrence. An unknown zone name reads as UTC where a user's
stored timezone is concerned (`zone_or_utc`): the user's timezone is validated when set.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def local_instant(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """`day` at `clock` in `tz`, as UTC; a time in a DST gap moves past the gap."""
    naive = datetime.combine(day, clock)
    instant = naive.replace(tzinfo=tz).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != naive:
        return _gap_end(naive, tz)
    return instant


def _gap_end(naive: datetime, tz: ZoneInfo) -> datetime:
    """The first existing local instant after `naive`, which lies in a gap (as UTC)."""
    probe = naive
    for _ in range(24 * 60):
        probe += timedelta(minutes=1)
        candidate = probe.replace(tzinfo=tz).astimezone(UTC)
        if candidate.astimezone(tz).replace(tzinfo=None) == probe:
            return candidate
    raise ValueError(f"no local time after {naive} in {tz}")  # pragma: no cover


@lru_cache(maxsize=512)
def zone_or_utc(name: str | None) -> ZoneInfo:
    """The zone of a stored timezone name; UTC for none or an unknown one."""
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
