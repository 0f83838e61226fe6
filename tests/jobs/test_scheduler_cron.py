"""Cron expressions are parsed by APScheduler; schedules must name declared actors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobs.registry import load_actor_modules
from jobs.scheduler import cron_trigger, parse_schedules

START = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def test_cron_expressions_are_parsed_by_the_library() -> None:
    five = cron_trigger("*/15 * * * *")
    assert five.get_next_fire_time(None, START) == START
    six = cron_trigger("*/10 * * * * *")
    after = six.get_next_fire_time(None, START + timedelta(seconds=1))
    assert after == START + timedelta(seconds=10)
    for bad in ("* * *", "61 * * * *", "* * * * * * *"):
        with pytest.raises(ValueError):  # noqa: PT011 - APScheduler words each case differently
            cron_trigger(bad)
    load_actor_modules()
    assert [s.actor for s in parse_schedules({"outbox.sweep": "* * * * *"})] == ["outbox.sweep"]
    with pytest.raises(ValueError, match="unknown actor"):
        parse_schedules({"nobody.home": "* * * * *"})
