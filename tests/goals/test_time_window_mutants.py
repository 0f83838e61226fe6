"""What an empty time window is told (docs/testing.md, `make mutate`): the messages are API."""

from __future__ import annotations

from datetime import time

import pytest

from app.services.errors import DomainError
from app.services.goals.codes import GoalErrorCode
from app.services.goals.time_window import TimeWindow, parse_time_window


def test_an_empty_window_in_code_says_why() -> None:
    with pytest.raises(ValueError, match=r"^a window's start and end must differ$"):
        TimeWindow(time(22), time(22))


def test_an_empty_window_in_json_says_how_to_allow_the_whole_day() -> None:
    with pytest.raises(DomainError) as raised:
        parse_time_window({"start": "06:00", "end": "06:00"}, "conditions.timeWindow")
    error = raised.value
    assert (error.code, error.field) == (GoalErrorCode.INVALID_TIME_WINDOW, "conditions.timeWindow")
    assert error.message == (
        "The start and end must differ; omit the window to allow the whole day."
    )
