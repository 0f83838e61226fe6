"""The family domain's pure rules: limit frames across zones and DST, usage and its alerts,
and the migration rollout (no database)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.models.family import FamilyNotificationKind as Kind
from app.models.family import LimitFrame
from app.services.family import rollout
from app.services.family.frames import frame_at
from app.services.family.limits import Usage, alerts_crossed, reached

US = timedelta(microseconds=1)
ZONES = (
    "UTC",
    "Europe/Moscow",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Kiritimati",
    "America/Santiago",
    "Europe/Berlin",
)


def midnight(day: date, zone: str) -> datetime:
    """Local midnight of `day` in `zone`, as UTC (the zone's midnight must exist)."""
    local = datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))
    assert local.astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None) == (
        local.replace(tzinfo=None)
    )
    return local.astimezone(UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, *rest: int) -> datetime:
    second, micro = (*rest, 0, 0)[:2]
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# --- frames at their boundaries --------------------------------------------------------


@pytest.mark.parametrize("zone", ["Europe/Moscow", "America/New_York", "Asia/Kolkata", "UTC"])
def test_a_day_turns_over_at_local_midnight_to_the_microsecond(zone: str) -> None:
    tz = ZoneInfo(zone)
    boundary = midnight(date(2026, 5, 14), zone)
    before = frame_at(LimitFrame.DAY, tz, boundary - US)
    after = frame_at(LimitFrame.DAY, tz, boundary)
    assert before.end == boundary == after.start
    assert before.start == midnight(date(2026, 5, 13), zone)
    assert after.end == midnight(date(2026, 5, 15), zone)
    assert frame_at(LimitFrame.DAY, tz, boundary + US) == after


def test_the_frames_of_a_zone_are_not_utc_days() -> None:
    # 2026-05-13 22:30 UTC is already the 14th in Moscow (+3) and in Kolkata (+5:30),
    # still the 13th in New York (-4).
    now = utc(2026, 5, 13, 22, 30)
    assert frame_at(LimitFrame.DAY, ZoneInfo("Europe/Moscow"), now).start == utc(2026, 5, 13, 21)
    kolkata = frame_at(LimitFrame.DAY, ZoneInfo("Asia/Kolkata"), now)
    assert kolkata.start == utc(2026, 5, 13, 18, 30)
    assert kolkata.end == utc(2026, 5, 14, 18, 30)
    ny = frame_at(LimitFrame.DAY, ZoneInfo("America/New_York"), now)
    assert (ny.start, ny.end) == (utc(2026, 5, 13, 4), utc(2026, 5, 14, 4))


def test_kiritimati_at_utc_plus_14_starts_its_day_the_utc_day_before() -> None:
    tz = ZoneInfo("Pacific/Kiritimati")
    frame = frame_at(LimitFrame.DAY, tz, utc(2026, 1, 1, 9, 59, 59, 999_999))
    assert (frame.start, frame.end) == (utc(2025, 12, 31, 10), utc(2026, 1, 1, 10))
    assert frame_at(LimitFrame.DAY, tz, utc(2026, 1, 1, 10)).start == utc(2026, 1, 1, 10)
    # The new year's month starts at 10:00 UTC on New Year's Eve.
    month = frame_at(LimitFrame.MONTH, tz, utc(2025, 12, 31, 10))
    assert (month.start, month.end) == (utc(2025, 12, 31, 10), utc(2026, 1, 31, 10))


def test_kiritimati_skipped_1994_12_31_and_the_day_before_ends_at_the_next_one() -> None:
    tz = ZoneInfo("Pacific/Kiritimati")  # -10 → +14: 31 December 1994 never happened there
    last = frame_at(LimitFrame.DAY, tz, utc(1994, 12, 31, 9, 59))
    first = frame_at(LimitFrame.DAY, tz, utc(1994, 12, 31, 10))
    assert last.end == first.start == utc(1994, 12, 31, 10)
    assert first.start.astimezone(tz).date() == date(1995, 1, 1)


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2026, 3, 28), 24), (date(2026, 3, 29), 23), (date(2026, 10, 25), 25)],
)
def test_a_berlin_day_across_dst_lasts_23_or_25_hours(day: date, hours: int) -> None:
    tz = ZoneInfo("Europe/Berlin")
    frame = frame_at(LimitFrame.DAY, tz, midnight(day, "Europe/Berlin") + timedelta(hours=12))
    assert frame.start == midnight(day, "Europe/Berlin")
    assert frame.end - frame.start == timedelta(hours=hours)
    # The instant of the change itself (02:00 → 03:00, 03:00 → 02:00) is inside the day.
    change = utc(day.year, day.month, day.day, 1)
    if hours != 24:
        assert frame_at(LimitFrame.DAY, tz, change) == frame
        assert frame_at(LimitFrame.DAY, tz, change - US) == frame


def test_santiago_springs_forward_at_midnight_the_day_starts_at_one() -> None:
    tz = ZoneInfo("America/Santiago")  # 2026-09-06 00:00 (-4) doesn't exist: 01:00 (-3)
    sunday = frame_at(LimitFrame.DAY, tz, utc(2026, 9, 6, 12))
    assert sunday.start == utc(2026, 9, 6, 4)
    assert sunday.start.astimezone(tz).replace(tzinfo=None) == datetime(2026, 9, 6, 1)
    assert sunday.end - sunday.start == timedelta(hours=23)
    saturday = frame_at(LimitFrame.DAY, tz, sunday.start - US)
    assert saturday.end == sunday.start
    assert saturday.end - saturday.start == timedelta(hours=24)
    assert frame_at(LimitFrame.DAY, tz, sunday.start) == sunday
    # A week from Monday 31 August runs into the short Sunday and ends on Monday 7th.
    week = frame_at(LimitFrame.WEEK, tz, sunday.start)
    assert week.start.astimezone(tz).date() == date(2026, 8, 31)
    assert week.end == sunday.end
    assert week.end - week.start == timedelta(days=7, hours=-1)


def test_santiago_falls_back_at_midnight_the_saturday_lasts_25_hours() -> None:
    tz = ZoneInfo("America/Santiago")  # 2026-04-05 00:00 (-3) → 2026-04-04 23:00 (-4)
    saturday = frame_at(LimitFrame.DAY, tz, utc(2026, 4, 4, 12))
    assert (saturday.start, saturday.end) == (utc(2026, 4, 4, 3), utc(2026, 4, 5, 4))
    # The repeated 23:xx hour (both of them) is still Saturday.
    assert frame_at(LimitFrame.DAY, tz, utc(2026, 4, 5, 3, 30)) == saturday
    assert frame_at(LimitFrame.DAY, tz, utc(2026, 4, 5, 2, 30)) == saturday
    assert frame_at(LimitFrame.DAY, tz, utc(2026, 4, 5, 4)).start == utc(2026, 4, 5, 4)


@pytest.mark.parametrize("zone", ["Europe/Moscow", "America/New_York", "Asia/Kolkata"])
def test_a_week_runs_from_monday_midnight_to_monday_midnight(zone: str) -> None:
    tz = ZoneInfo(zone)
    monday = midnight(date(2026, 5, 11), zone)  # a Monday
    assert frame_at(LimitFrame.WEEK, tz, monday - US).start == midnight(date(2026, 5, 4), zone)
    for now in (monday, monday + US, midnight(date(2026, 5, 17), zone) + timedelta(hours=23)):
        week = frame_at(LimitFrame.WEEK, tz, now)
        assert (week.start, week.end) == (monday, midnight(date(2026, 5, 18), zone))


def test_a_berlin_week_with_the_spring_change_is_an_hour_short() -> None:
    tz = ZoneInfo("Europe/Berlin")
    week = frame_at(LimitFrame.WEEK, tz, utc(2026, 3, 29, 12))  # Sunday of the change
    assert week.start == midnight(date(2026, 3, 23), "Europe/Berlin")
    assert week.end - week.start == timedelta(days=7, hours=-1)


@pytest.mark.parametrize(
    ("inside", "first", "following"),
    [
        (date(2026, 2, 28), date(2026, 2, 1), date(2026, 3, 1)),  # 28 days
        (date(2028, 2, 29), date(2028, 2, 1), date(2028, 3, 1)),  # a leap year's 29th
        (date(2026, 12, 31), date(2026, 12, 1), date(2027, 1, 1)),  # December → January
        (date(2027, 1, 1), date(2027, 1, 1), date(2027, 2, 1)),
        (date(2026, 4, 30), date(2026, 4, 1), date(2026, 5, 1)),
        (date(2026, 10, 25), date(2026, 10, 1), date(2026, 11, 1)),  # 31 days + 1 hour
    ],
)
def test_a_month_from_the_first_to_the_next_first(
    inside: date, first: date, following: date
) -> None:
    zone = "Europe/Berlin"
    tz = ZoneInfo(zone)
    end = midnight(following, zone)
    month = frame_at(LimitFrame.MONTH, tz, end - US)
    assert (month.start, month.end) == (midnight(first, zone), end)
    assert frame_at(LimitFrame.MONTH, tz, midnight(inside, zone)) == month
    assert frame_at(LimitFrame.MONTH, tz, end).start == end


def test_february_lasts_28_or_29_days() -> None:
    tz = ZoneInfo("Asia/Kolkata")
    for year, days in ((2026, 28), (2028, 29), (2100, 28), (2000, 29)):
        feb = frame_at(LimitFrame.MONTH, tz, midnight(date(year, 2, 15), "Asia/Kolkata"))
        assert feb.end - feb.start == timedelta(days=days)


# --- frame properties ------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2080, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(now=instants, zone=st.sampled_from(ZONES), kind=st.sampled_from(list(LimitFrame)))
def test_frames_hold_now_and_tile_time(now: datetime, zone: str, kind: LimitFrame) -> None:
    tz = ZoneInfo(zone)
    frame = frame_at(kind, tz, now)
    assert frame.start <= now < frame.end
    assert frame_at(kind, tz, frame.start) == frame
    assert frame_at(kind, tz, frame.end - US) == frame
    following = frame_at(kind, tz, frame.end)
    assert following.start == frame.end and following.end > following.start
    assert frame_at(kind, tz, frame.start - US).end == frame.start
    local = frame.start.astimezone(tz)
    if kind is LimitFrame.WEEK:
        assert local.weekday() == 0
    if kind is LimitFrame.MONTH:
        assert local.day == 1
    hours = (frame.end - frame.start) / timedelta(hours=1)
    low, high = {LimitFrame.DAY: (0, 26), LimitFrame.WEEK: (166, 170)}.get(kind, (670, 746))
    assert low < hours < high


@settings(max_examples=100, deadline=None)
@given(now=instants, zone=st.sampled_from(ZONES))
def test_frames_nest_day_in_week_in_month_start(now: datetime, zone: str) -> None:
    tz = ZoneInfo(zone)
    day = frame_at(LimitFrame.DAY, tz, now)
    week = frame_at(LimitFrame.WEEK, tz, now)
    month = frame_at(LimitFrame.MONTH, tz, now)
    assert week.start <= day.start and day.end <= week.end
    assert month.start <= day.start and day.end <= month.end


# --- usage and alerts ------------------------------------------------------------------


def test_usage_counts_charges_and_holds_and_never_goes_below_zero() -> None:
    usage = Usage(limit=1000, charged=600, held=300)
    assert (usage.used, usage.remaining) == (900, 100)
    assert usage.fits(100) and not usage.fits(101)
    over = Usage(limit=1000, charged=1200, held=0)
    assert over.remaining == 0 and not over.fits(0)
    assert Usage(limit=0, charged=0, held=0).fits(0)
    assert not Usage(limit=0, charged=0, held=0).fits(1)


def test_alerts_are_crossed_once_each() -> None:
    assert alerts_crossed(1000, 0, 799) == ()
    assert alerts_crossed(1000, 0, 800) == (Kind.LIMIT_80,)
    assert alerts_crossed(1000, 800, 900) == ()
    assert alerts_crossed(1000, 850, 1000) == (Kind.LIMIT_100,)
    assert alerts_crossed(1000, 1000, 1500) == ()
    assert alerts_crossed(1000, 0, 1000) == (Kind.LIMIT_80, Kind.LIMIT_100)
    assert alerts_crossed(1000, 799, 5000) == (Kind.LIMIT_80, Kind.LIMIT_100)
    assert alerts_crossed(1000, 500, 500) == ()


def test_a_zero_limit_raises_no_alerts() -> None:
    assert alerts_crossed(0, 0, 0) == ()
    assert alerts_crossed(0, 0, 500) == ()


def test_shares_are_integer_math_without_rounding() -> None:
    # 0.8 * 15 is 12.000000000000002 in floats: 12 of 15 is exactly 80 %.
    assert reached(15, 12, 80) and not reached(15, 11, 80)
    assert alerts_crossed(15, 11, 12) == (Kind.LIMIT_80,)
    # 80 % of 3 is 2.4: 2 is below it, 3 is not; nothing rounds 2.4 down to 2.
    assert alerts_crossed(3, 0, 2) == ()
    assert alerts_crossed(3, 2, 3) == (Kind.LIMIT_80, Kind.LIMIT_100)
    big = 2_000_000_000
    assert reached(big, big * 4 // 5, 80) and not reached(big, big * 4 // 5 - 1, 80)
    assert not reached(big, big - 1, 100) and reached(big, big, 100)


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 10**12),
    steps=st.lists(st.integers(0, 10**11), min_size=1, max_size=20),
)
def test_along_any_rides_each_alert_is_crossed_at_most_once(limit: int, steps: list[int]) -> None:
    used, seen = 0, list[Kind]()
    for step in steps:
        seen.extend(alerts_crossed(limit, used, used + step))
        used += step
    shares = ((Kind.LIMIT_80, 80), (Kind.LIMIT_100, 100))
    expected = [kind for kind, share in shares if used * 100 >= limit * share]
    assert seen == expected


# --- rollout ---------------------------------------------------------------------------

FIXED = uuid.UUID("12345678-1234-5678-1234-567812345678")
OWNER = uuid.UUID("00000000-0000-4000-8000-000000000001")


def test_a_family_has_a_fixed_bucket() -> None:
    assert rollout.bucket(FIXED) == 7597
    assert rollout.bucket(uuid.UUID(int=0)) == 9518
    assert not rollout.in_rollout(FIXED, OWNER, percent=75, allowlist=())
    assert rollout.in_rollout(FIXED, OWNER, percent=76, allowlist=())
    assert rollout.bucket(FIXED) == rollout.bucket(uuid.UUID(str(FIXED)))


def test_zero_percent_takes_only_the_allow_list() -> None:
    other = uuid.uuid4()
    assert not rollout.in_rollout(FIXED, OWNER, percent=0, allowlist=())
    assert rollout.in_rollout(FIXED, OWNER, percent=0, allowlist={str(FIXED)})
    assert rollout.in_rollout(FIXED, OWNER, percent=0, allowlist={str(OWNER)})
    assert not rollout.in_rollout(FIXED, OWNER, percent=0, allowlist={str(other)})


@settings(max_examples=200, deadline=None)
@given(account=st.uuids(), owner=st.uuids())
def test_a_hundred_percent_takes_everyone(account: uuid.UUID, owner: uuid.UUID) -> None:
    assert rollout.in_rollout(account, owner, percent=100, allowlist=())
    assert 0 <= rollout.bucket(account) < rollout.BUCKETS


@settings(max_examples=300, deadline=None)
@given(account=st.uuids(), percent=st.integers(0, 100), more=st.integers(0, 100))
def test_raising_the_percentage_only_adds_families(
    account: uuid.UUID, percent: int, more: int
) -> None:
    higher = min(percent + more, 100)
    if rollout.in_rollout(account, OWNER, percent=percent, allowlist=()):
        assert rollout.in_rollout(account, OWNER, percent=higher, allowlist=())


def test_the_buckets_spread_evenly() -> None:
    rng = random.Random(20260514)
    ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(10_000)]
    for percent in (1, 30, 50, 90):
        taken = sum(rollout.in_rollout(i, OWNER, percent=percent, allowlist=()) for i in ids)
        assert abs(taken - percent * 100) <= 200, (percent, taken)
    deciles = [0] * 10
    for i in ids:
        deciles[rollout.bucket(i) // 1000] += 1
    assert all(800 <= count <= 1200 for count in deciles), deciles
