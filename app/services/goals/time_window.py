"""A time-of-day window such as 22:00-06:00, half-open: [start, end).

A window with `start < end` is one stretch of the day; one with `start > end` crosses midnight
(22:00-06:00 holds 23:59 and 00:00 and 05:59, not 06:00). `start == end` is refused: it would
be ambiguous between "never" and "all day", and "all day" is written by giving no window at
all. Windows are minute-precise ("HH:MM", 00:00-23:59; "24:00" is refused, write 00:00).

A window says nothing about timezones: the caller passes the local wall-clock time of the
order in its city (see `matching`). On a DST change day a wall-clock time is used as is, so
an order at 23:30 local counts for a 22:00-06:00 window whatever the UTC offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import Any

from app.services.errors import DomainError
from app.services.goals.codes import GoalErrorCode
from app.services.goals.fields import check_keys, read_mapping, read_str

_CODE = GoalErrorCode.INVALID_TIME_WINDOW
_HH_MM = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    start: time
    end: time

    def __post_init__(self) -> None:
        for moment in (self.start, self.end):
            if moment.tzinfo is not None or moment.second or moment.microsecond:
                raise ValueError(f"a window bound is a naive whole minute, got {moment!r}")
        if self.start == self.end:
            raise ValueError("a window's start and end must differ")

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def contains(self, local_time: time) -> bool:
        """Whether a naive local wall-clock time falls in [start, end)."""
        if self.crosses_midnight:
            return local_time >= self.start or local_time < self.end
        return self.start <= local_time < self.end

    def to_json(self) -> dict[str, str]:
        return {"start": format_hh_mm(self.start), "end": format_hh_mm(self.end)}


def format_hh_mm(moment: time) -> str:
    return f"{moment.hour:02d}:{moment.minute:02d}"


def parse_hh_mm(value: object, field: str) -> time:
    text = read_str(value, field, _CODE)
    match = _HH_MM.fullmatch(text)
    if match is None:
        raise DomainError(_CODE, f"Give the time as HH:MM, got {text!r}.", field)
    hour, minute = int(match[1]), int(match[2])
    if hour > 23:
        raise DomainError(
            _CODE, f"The hour is 00-23, got {hour} (write 00:00 for midnight).", field
        )
    if minute > 59:
        raise DomainError(_CODE, f"The minute is 00-59, got {minute}.", field)
    return time(hour, minute)


def parse_time_window(value: object, field: str) -> TimeWindow:
    """A window from `{"start": "HH:MM", "end": "HH:MM"}`; errors name `field.start`/`field.end`."""
    data: dict[str, Any] = dict(read_mapping(value, field, _CODE))
    check_keys(data, ("start", "end"), field, _CODE)
    start = parse_hh_mm(data.get("start"), f"{field}.start")
    end = parse_hh_mm(data.get("end"), f"{field}.end")
    if start == end:
        raise DomainError(
            _CODE, "The start and end must differ; omit the window to allow the whole day.", field
        )
    return TimeWindow(start, end)
