"""The notifier's pure rules: the condition language, send times (zones, DST, days, local
times of day) and rule definitions (every mistake named by its path)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from app.models.notifier import CorpEventType
from app.services.notifier import conditions, timing
from app.services.notifier.conditions import ConditionError
from app.services.notifier.rules import RuleError, cancelling, parse_rule

BALANCE = frozenset({"balanceMinor", "currency"})
CLIENT = {"contractType": "PREPAID", "balanceMinor": 100, "lowBalanceThresholdMinor": 500,
          "firstRideAt": None, "name": "Acme"}  # fmt: skip


def holds(
    source: str, client: dict[str, Any] = CLIENT, event: dict[str, Any] | None = None
) -> bool:
    return conditions.parse(source, event_fields=BALANCE).holds(client, event or {})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("client.balanceMinor < client.lowBalanceThresholdMinor", True),
        ("client.balanceMinor >= client.lowBalanceThresholdMinor", False),
        ("client.balanceMinor <= 100", True),
        ("client.balanceMinor > 99", True),
        ("client.balanceMinor != 100", False),
        ("client.contractType == 'PREPAID'", True),
        ("client.contractType == 'POSTPAID'", False),
        ("client.firstRideAt is null", True),
        ("client.firstRideAt is not null", False),
        ("client.activatedAt is null", True),  # absent counts as null
        ("event.balanceMinor < 50", True),
        ("event.balanceMinor > -1", True),
        ("event.currency == 'RUB'", False),  # absent: == is False
        ("client.name > 5", False),  # mismatched types never order
        ("client.activatedAt < 5", False),  # a missing value never orders
        ("1 < client.balanceMinor", True),
    ],
)
def test_conditions_evaluate(source: str, expected: bool) -> None:
    assert holds(source, event={"balanceMinor": 10}) is expected


@pytest.mark.parametrize(
    "source",
    [
        "client.balance < 1",  # unknown client field
        "event.limitMinor > 0",  # not a field of this event type
        "client.balanceMinor",  # no operator
        "client.balanceMinor = 1",
        "client.balanceMinor < 1 and 2",
        "1 < 2",  # two constants
        "client.name is nul",
        "client.name is maybe null",
        "client.__class__ == 1",
        "__import__('os') == 1",
        'client.balanceMinor < "1"',
        "x" * 301,
        "",
    ],
)
def test_a_bad_condition_is_refused(source: str) -> None:
    with pytest.raises(ConditionError):
        conditions.parse(source, event_fields=BALANCE)


def test_send_time_checks_read_only_the_client() -> None:
    with pytest.raises(ConditionError, match="only client"):
        conditions.parse_all(["event.balanceMinor < 1"], event_fields=BALANCE, client_only=True)


def u(day: int, hour: int, minute: int = 0) -> datetime:
    """A December 2026 instant in UTC."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


MOSCOW = timing.zone("Europe/Moscow")  # UTC+3, no DST
BERLIN = timing.zone("Europe/Berlin")


@pytest.mark.parametrize(
    ("days", "at", "delay", "occurred", "expected"),
    [
        (None, None, None, u(1, 9, 0), u(1, 9, 0)),
        (None, None, 30, u(1, 9, 0), u(1, 9, 30)),
        # 12:00 Moscow: 10:00 has passed today, so tomorrow's; 14:00 is still ahead today.
        (None, "10:00", None, u(1, 9, 0), u(2, 7, 0)),
        (None, "14:00", None, u(1, 9, 0), u(1, 11, 0)),
        # Day 1 at 10:00 is the next local day, even just before midnight UTC (03:00 local).
        (1, "10:00", None, u(1, 23, 59), u(3, 7, 0)),
        (0, "10:00", None, u(1, 9, 0), u(1, 7, 0)),
        (7, None, 15, u(1, 9, 0), u(8, 9, 15)),
    ],
)  # fmt: skip
def test_send_times_in_a_zone(
    days: int | None, at: str | None, delay: int | None, occurred: datetime, expected: datetime
) -> None:
    assert timing.send_at(timing.timing(days, at, delay), occurred, MOSCOW) == expected


def test_a_day_across_dst_keeps_the_local_clock() -> None:
    occurred = datetime(2026, 3, 28, 11, 0, tzinfo=UTC)  # 12:00 CET, the day before the change
    later = timing.send_at(timing.timing(1, None, None), occurred, BERLIN)
    assert later == datetime(2026, 3, 29, 10, 0, tzinfo=UTC)  # 12:00 CEST: 23 hours later
    autumn = datetime(2026, 10, 24, 10, 0, tzinfo=UTC)  # 12:00 CEST
    assert timing.send_at(timing.timing(1, None, None), autumn, BERLIN) - autumn == timedelta(
        hours=25
    )


def test_a_local_time_in_the_gap_moves_past_it_and_a_repeated_one_is_the_first() -> None:
    gap = timing.local_instant(datetime(2026, 3, 29).date(), time(2, 30), BERLIN)
    assert gap.astimezone(BERLIN).strftime("%H:%M") == "03:00"
    repeated = timing.local_instant(datetime(2026, 10, 25).date(), time(2, 30), BERLIN)
    assert repeated == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, not CET


@pytest.mark.parametrize(
    ("days", "at", "delay"),
    [(-1, None, None), (367, None, None), (None, "24:00", None), (None, "7:5", None),
     (None, "10:00:00", None), (None, None, -5), (None, None, 10**9)],
)  # fmt: skip
def test_bad_timings_are_refused(days: int | None, at: str | None, delay: int | None) -> None:
    with pytest.raises(timing.TimingError):
        timing.timing(days, at, delay)


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(timing.TimingError):
        timing.zone("Mars/Olympus")


GOOD = {
    "event": "BALANCE_CHANGED",
    "when": ["event.balanceMinor < client.lowBalanceThresholdMinor"],
    "steps": [{"notice": "LowBalanceNotice"}, {"notice": "LowBalanceNotice", "days": 2}],
    "still_due": ["client.balanceMinor < client.lowBalanceThresholdMinor"],
    "cancel_on": [{"event": "PAYMENT_RECEIVED"}],
    "expires_after_hours": 24,
    "throttle": {"max": 2, "period_hours": 24},
}


def test_a_good_rule_is_read() -> None:
    rule = parse_rule(GOOD, notices={"LowBalanceNotice"})
    assert rule.event is CorpEventType.BALANCE_CHANGED
    assert rule.notices == {"LowBalanceNotice"}
    assert rule.expires_after == timedelta(hours=24)
    assert rule.throttle is not None and rule.throttle.max == 2
    assert [c.event for c in cancelling(rule, CorpEventType.PAYMENT_RECEIVED)] == [
        CorpEventType.PAYMENT_RECEIVED
    ]
    assert cancelling(rule, CorpEventType.RIDE_TAKEN) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event": "NOPE"}, "event"),
        ({"steps": []}, "steps"),
        ({"steps": [{"notice": "Other"}]}, "steps[0].notice"),
        ({"steps": [{"notice": "LowBalanceNotice", "when": 1}]}, "steps[0]"),
        ({"steps": [{"notice": "LowBalanceNotice", "days": "1"}]}, "steps[0].days"),
        ({"steps": [{"notice": "LowBalanceNotice", "at": 10}]}, "steps[0].at"),
        ({"when": "client.balanceMinor < 1"}, "when"),
        ({"when": [1]}, "when"),
        ({"still_due": ["event.balanceMinor < 1"]}, "still_due"),
        ({"cancel_on": [{"event": "NOPE"}]}, "cancel_on[0].event"),
        ({"cancel_on": [{"event": "RIDE_TAKEN", "when": ["event.x < 1"]}]}, "cancel_on[0].when"),
        ({"cancel_on": [{"event": "RIDE_TAKEN", "if": []}]}, "cancel_on[0]"),
        ({"expires_after_hours": 0}, "expires_after_hours"),
        ({"expires_after_hours": True}, "expires_after_hours"),
        ({"throttle": {"max": 0, "period_hours": 1}}, "throttle.max"),
        ({"throttle": {"max": 1}}, "throttle"),
        ({"description": 5}, "description"),
        ({"colour": "red"}, "colour"),
    ],
)  # fmt: skip
def test_a_bad_rule_names_what_is_wrong(change: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule({**GOOD, **change}, notices={"LowBalanceNotice"})
    assert caught.value.field == field
    assert caught.value.unknown_notice is (field == "steps[0].notice")
