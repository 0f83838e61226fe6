"""A limit's frame: the calendar day, week (from Monday) or month in the owner's timezone (pure).

A frame runs from local midnight of its first day to local midnight of the next frame's first
day, as UTC instants, so a day across a DST change lasts 23 or 25 hours and a frame always
ends where the next begins. A midnight that doesn't exist (zones that spring forward at
00:00) starts the frame at the first instant after the gap (`app.services.local_time`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.models.family import LimitFrame
from app.services.local_time import local_instant

MIDNIGHT = time(0, 0)


@dataclass(frozen=True, slots=True)
class Frame:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive: the next reset


def first_day(frame: LimitFrame, day: date) -> date:
    """The local first day of the frame that holds `day`."""
    if frame == LimitFrame.DAY:
        return day
    if frame == LimitFrame.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_first_day(frame: LimitFrame, first: date) -> date:
    """The local first day of the frame after the one starting on `first`."""
    if frame == LimitFrame.DAY:
        return first + timedelta(days=1)
    if frame == LimitFrame.WEEK:
        return first + timedelta(days=7)
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def frame_at(frame: LimitFrame, tz: ZoneInfo, now: datetime) -> Frame:
    """The frame of kind `frame` in zone `tz` that holds the instant `now` (aware)."""
    first = first_day(frame, now.astimezone(tz).date())
    start = local_instant(first, MIDNIGHT, tz)
    return Frame(start, local_instant(next_first_day(frame, first), MIDNIGHT, tz))
