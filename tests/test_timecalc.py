"""Tests for the date/time arithmetic behind contact restrictions (collectrules.engine.timecalc)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectrules.engine.timecalc import (
    DailyWindow,
    HolidayCalendar,
    WeeklySchedule,
    cap_next_allowed,
    cooldown_until,
    count_in_window,
    is_allowed_at,
    local_day,
    next_allowed,
    start_of_local_day,
)

NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
SHANGHAI = ZoneInfo("Asia/Shanghai")
SANTIAGO = ZoneInfo("America/Santiago")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")

DAYTIME = WeeklySchedule.parse("08:00-21:00")
ONE_MICROSECOND = timedelta(microseconds=1)


def utc(text: str) -> datetime:
    """An aware UTC datetime from 'YYYY-MM-DDTHH:MM[:SS]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------------------------------
# Schedule parsing
# ------------------------------------------------------------------------------------------------------------


def test_parse_single_window_applies_to_every_day() -> None:
    assert DAYTIME.days == ((DailyWindow(8 * 60, 21 * 60),),) * 7


def test_parse_weekday_mapping_with_default_lists_and_closed() -> None:
    schedule = WeeklySchedule.parse(
        {
            "default": "08:00-21:00",
            "sat": ["14:00-17:00", "09:00-12:00"],
            "sun": "closed",
            "fri": "08:00-24:00",
        }
    )
    daytime = (DailyWindow(480, 1260),)
    assert schedule.days == (
        daytime,
        daytime,
        daytime,
        daytime,
        (DailyWindow(480, 1440),),
        (DailyWindow(540, 720), DailyWindow(840, 1020)),
        (),
    )


def test_parse_days_not_named_without_default_are_closed_and_touching_windows_merge() -> None:
    schedule = WeeklySchedule.parse({"mon": ["09:00-12:00", "12:00-13:30"], "tue": None, "wed": []})
    assert schedule.days[0] == (DailyWindow(540, 810),)
    assert all(windows == () for windows in schedule.days[1:])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("21:00-08:00", "must end after it starts"),
        ("08:00-08:00", "must end after it starts"),
        ("08:00-25:00", "not a valid time of day"),
        ("08:60-21:00", "not a valid time of day"),
        ("24:00-24:00", "cannot start at 24:00"),
        ("8am-9pm", "not a time of day"),
        ("08:00", "expected a window"),
        ("08:00-12:00-13:00", "expected a window"),
        ({"monday": "08:00-21:00"}, "unknown weekday key 'monday'"),
        ({"sat": ["09:00-12:00", "11:00-13:00"]}, "overlap"),
        ({"sat": ["09:00-12:00", "closed"]}, "'closed' cannot be combined"),
        ({"sun": 9}, "expected 'HH:MM-HH:MM'"),
        ({"sun": [9]}, "each window must be a string"),
        ({}, "at least one weekday"),
        (["08:00-21:00"], "a schedule must be a string"),
    ],
)
def test_parse_rejects_bad_input_with_a_clear_message(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WeeklySchedule.parse(spec)  # type: ignore[arg-type]


def test_error_message_names_the_weekday() -> None:
    with pytest.raises(ValueError, match=r"^sat: "):
        WeeklySchedule.parse({"sat": "17:00-09:00"})


@pytest.mark.parametrize(
    ("start", "end"), [(-1, 10), (0, 0), (600, 500), (0, 1441), (1440, 1440), (True, 10)]
)
def test_daily_window_validates_its_bounds(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        DailyWindow(start, end)


def test_weekly_schedule_requires_seven_sorted_days() -> None:
    with pytest.raises(ValueError, match="7 days"):
        WeeklySchedule(days=((),) * 6)
    with pytest.raises(ValueError, match="sorted"):
        WeeklySchedule(days=((DailyWindow(600, 700), DailyWindow(500, 550)),) + ((),) * 6)


# ------------------------------------------------------------------------------------------------------------
# Holiday calendars
# ------------------------------------------------------------------------------------------------------------


def test_holiday_calendar_lookups() -> None:
    us = HolidayCalendar("US")
    assert us.is_holiday(date(2025, 7, 4))
    assert us.holiday_name(date(2025, 7, 4)) == "Independence Day"
    assert not us.is_holiday(date(2025, 7, 5))
    assert us.holiday_name(date(2025, 7, 5)) is None
    china = HolidayCalendar("CN")
    assert "Spring Festival" in (china.holiday_name(date(2025, 1, 29)) or "")


def test_holiday_calendar_subdivision_is_case_insensitive_and_differs_from_the_country() -> None:
    california = HolidayCalendar("us-ca")
    assert california.code == "US-CA"
    assert california == HolidayCalendar("US-CA")
    # Cesar Chavez Day is a California state holiday, not a federal one.
    assert california.is_holiday(date(2025, 3, 31))
    assert not HolidayCalendar("US").is_holiday(date(2025, 3, 31))


@pytest.mark.parametrize("code", ["XX", "US-ZZ", "US-", "", "GB-ENGLAND"])
def test_unknown_holiday_calendar_is_rejected(code: str) -> None:
    with pytest.raises(ValueError):
        HolidayCalendar(code)


# ------------------------------------------------------------------------------------------------------------
# Allowed hours: single zone
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "instant", "allowed"),
    [
        (LOS_ANGELES, "2025-03-10T14:30", False),  # 07:30 PDT, the day after DST started
        (LOS_ANGELES, "2025-03-10T14:59:59", False),
        (LOS_ANGELES, "2025-03-10T15:00", True),  # 08:00 PDT
        (LOS_ANGELES, "2025-03-10T15:05", True),
        (LOS_ANGELES, "2025-03-11T03:59:59", True),  # 20:59:59 PDT
        (LOS_ANGELES, "2025-03-11T04:00", False),  # 21:00 PDT: the window is half-open
        (NEW_YORK, "2025-03-08T12:30", False),  # 07:30 EST
        (NEW_YORK, "2025-03-09T12:30", True),  # 08:30 EDT
    ],
)
def test_is_allowed_at_single_zone(zone: ZoneInfo, instant: str, allowed: bool) -> None:
    assert is_allowed_at(utc(instant), [zone], DAYTIME, None) is allowed


@pytest.mark.parametrize(
    ("zones", "schedule", "start", "expected"),
    [
        ([LOS_ANGELES], DAYTIME, "2025-03-10T14:30", "2025-03-10T15:00"),
        ([LOS_ANGELES], DAYTIME, "2025-03-10T15:05", "2025-03-10T15:05"),  # already allowed
        ([LOS_ANGELES], DAYTIME, "2025-03-11T04:00", "2025-03-11T15:00"),
        ([NEW_YORK], DAYTIME, "2025-03-08T12:30", "2025-03-08T13:00"),  # 08:00 EST
        ([NEW_YORK], DAYTIME, "2025-03-09T11:00", "2025-03-09T12:00"),  # 08:00 EDT
    ],
)
def test_next_allowed_single_zone(
    zones: list[ZoneInfo], schedule: WeeklySchedule, start: str, expected: str
) -> None:
    result = next_allowed(utc(start), zones, schedule, None)
    assert result == utc(expected)
    assert result is not None and result.tzinfo is UTC


def test_next_allowed_keeps_sub_second_precision_when_already_allowed() -> None:
    start = datetime(2025, 3, 10, 9, 15, 7, 123456, tzinfo=LOS_ANGELES)
    assert next_allowed(start, [LOS_ANGELES], DAYTIME, None) == start


def test_next_allowed_returns_utc_for_local_input() -> None:
    start = datetime(2025, 3, 10, 7, 30, tzinfo=LOS_ANGELES)
    assert next_allowed(start, [LOS_ANGELES], DAYTIME, None) == utc("2025-03-10T15:00")


def test_weekday_schedule_with_sunday_closed_skips_to_monday_opening() -> None:
    schedule = WeeklySchedule.parse({"default": "08:00-21:00", "sat": "09:00-17:00", "sun": "closed"})
    saturday_evening = datetime(2025, 3, 15, 21, 30, tzinfo=NEW_YORK)  # 2025-03-16 01:30 UTC
    assert not is_allowed_at(saturday_evening, [NEW_YORK], schedule, None)
    assert next_allowed(saturday_evening, [NEW_YORK], schedule, None) == utc(
        "2025-03-17T12:00"
    )  # Mon 08:00 EDT


def test_split_saturday_windows() -> None:
    schedule = WeeklySchedule.parse({"default": "08:00-21:00", "sat": ["09:00-12:00", "14:00-17:00"]})
    lunch = datetime(2025, 3, 15, 12, 30, tzinfo=NEW_YORK)
    assert not is_allowed_at(lunch, [NEW_YORK], schedule, None)
    assert next_allowed(lunch, [NEW_YORK], schedule, None) == utc("2025-03-15T18:00")  # 14:00 EDT


def test_closed_schedule_never_allows() -> None:
    closed = WeeklySchedule.parse("closed")
    assert not is_allowed_at(utc("2025-03-10T15:00"), [NEW_YORK], closed, None)
    assert next_allowed(utc("2025-03-10T15:00"), [NEW_YORK], closed, None) is None


def test_next_allowed_respects_the_horizon() -> None:
    weekends_closed = WeeklySchedule.parse({"default": "08:00-21:00", "sat": "closed", "sun": "closed"})
    friday_night = utc("2025-03-15T02:00")  # Fri 22:00 EDT
    assert next_allowed(friday_night, [NEW_YORK], weekends_closed, None, horizon_days=2) is None
    assert next_allowed(friday_night, [NEW_YORK], weekends_closed, None, horizon_days=3) == utc(
        "2025-03-17T12:00"
    )


# ------------------------------------------------------------------------------------------------------------
# Allowed hours: several zones (intersection)
# ------------------------------------------------------------------------------------------------------------

# In June New York is UTC-4 and Los Angeles UTC-7: 08:00-21:00 is 12:00-01:00 UTC in New York and
# 15:00-04:00 UTC in Los Angeles, so both allow 15:00-01:00 UTC (08:00-18:00 in LA, 11:00-21:00 in NY).
NY_AND_LA = [NEW_YORK, LOS_ANGELES]


@pytest.mark.parametrize(
    ("instant", "allowed"),
    [
        ("2025-06-10T12:00", False),  # 08:00 NY, 05:00 LA
        ("2025-06-10T14:59:59", False),
        ("2025-06-10T15:00", True),  # 11:00 NY, 08:00 LA
        ("2025-06-11T00:59:59", True),
        ("2025-06-11T01:00", False),  # 21:00 NY, 18:00 LA
        ("2025-06-11T03:00", False),  # LA still open, NY closed
    ],
)
def test_intersection_of_two_us_zones(instant: str, allowed: bool) -> None:
    assert is_allowed_at(utc(instant), NY_AND_LA, DAYTIME, None) is allowed


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2025-06-10T12:00", "2025-06-10T15:00"),  # NY opens first; LA's later opening wins
        ("2025-06-11T01:00", "2025-06-11T15:00"),  # NY closed for the night while LA is open
    ],
)
def test_next_allowed_goes_to_the_later_opening(start: str, expected: str) -> None:
    assert next_allowed(utc(start), NY_AND_LA, DAYTIME, None) == utc(expected)
    assert next_allowed(utc(start), list(reversed(NY_AND_LA)), DAYTIME, None) == utc(expected)


# Shanghai (UTC+8, no DST) allows 00:00-13:00 UTC. New York allows 13:00-02:00 UTC in winter (EST) and
# 12:00-01:00 UTC in summer (EDT). Both allow 00:00-02:00 UTC in winter (19:00-21:00 NY, 08:00-10:00
# Shanghai the next day), and 00:00-01:00 plus 12:00-13:00 UTC in summer.
SHANGHAI_AND_NY = [SHANGHAI, NEW_YORK]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2025-01-15T02:00", "2025-01-16T00:00"),  # winter: the evening/morning overlap only
        ("2025-01-15T12:00", "2025-01-16T00:00"),  # 13:00 UTC opening in NY is Shanghai's 21:00 close
        ("2025-07-15T01:00", "2025-07-15T12:00"),  # summer: the second overlap, 08:00 EDT = 20:00 CST
        ("2025-07-15T13:00", "2025-07-16T00:00"),
    ],
)
def test_shanghai_and_new_york(start: str, expected: str) -> None:
    assert next_allowed(utc(start), SHANGHAI_AND_NY, DAYTIME, None) == utc(expected)


def test_intersection_empty_on_weekend_days() -> None:
    # With Sunday closed, Saturday evening in New York is Sunday morning in Shanghai and Sunday evening in
    # New York is Sunday: neither overlap exists from Friday night until Monday evening New York time.
    schedule = WeeklySchedule.parse({"default": "08:00-21:00", "sun": "closed"})
    friday_night_ny = utc("2025-01-18T02:00")  # Fri 21:00 EST, Sat 10:00 CST
    for day in ("2025-01-19", "2025-01-20"):
        for hour in range(24):
            assert not is_allowed_at(utc(f"{day}T{hour:02d}:00"), SHANGHAI_AND_NY, schedule, None)
    # Monday 19:00 EST = Tuesday 08:00 CST.
    assert next_allowed(friday_night_ny, SHANGHAI_AND_NY, schedule, None) == utc("2025-01-21T00:00")


def test_intersection_empty_every_day() -> None:
    # Business hours never overlap: Shanghai 01:00-09:00 UTC, New York 13:00/14:00-21:00/22:00 UTC.
    office = WeeklySchedule.parse("09:00-17:00")
    assert next_allowed(utc("2025-01-15T00:00"), SHANGHAI_AND_NY, office, None) is None


def test_is_allowed_at_requires_zones() -> None:
    with pytest.raises(ValueError, match="at least one time zone"):
        is_allowed_at(utc("2025-01-15T00:00"), [], DAYTIME, None)


# ------------------------------------------------------------------------------------------------------------
# Holidays
# ------------------------------------------------------------------------------------------------------------


def test_us_independence_day_is_closed_all_day() -> None:
    us = HolidayCalendar("US")
    morning = utc("2025-07-04T14:00")  # 10:00 EDT
    assert is_allowed_at(morning, [NEW_YORK], DAYTIME, None)
    assert not is_allowed_at(morning, [NEW_YORK], DAYTIME, us)
    assert next_allowed(morning, [NEW_YORK], DAYTIME, us) == utc("2025-07-05T12:00")  # Sat 08:00 EDT
    late_on_the_3rd = utc("2025-07-04T03:30")  # Thu 23:30 EDT
    assert next_allowed(late_on_the_3rd, [NEW_YORK], DAYTIME, us) == utc("2025-07-05T12:00")


def test_holiday_is_judged_on_the_local_date_of_each_zone() -> None:
    us = HolidayCalendar("US")
    # Calendar only: the holiday starts at local midnight in New York (04:00 UTC) and lasts a local day.
    assert is_allowed_at(utc("2025-07-04T03:59:59"), [NEW_YORK], None, us)
    assert not is_allowed_at(utc("2025-07-04T04:00"), [NEW_YORK], None, us)
    assert next_allowed(utc("2025-07-04T04:00"), [NEW_YORK], None, us) == utc("2025-07-05T04:00")
    # In Shanghai's local dates, 2025-07-04 is over by 16:00 UTC on the 4th.
    assert next_allowed(utc("2025-07-04T04:00"), [SHANGHAI], None, us) == utc("2025-07-04T16:00")
    # Both zones: blocked until both local dates have moved past the holiday.
    assert next_allowed(utc("2025-07-04T04:00"), [SHANGHAI, NEW_YORK], None, us) == utc("2025-07-05T04:00")


def test_china_spring_festival() -> None:
    china = HolidayCalendar("CN")
    eve = datetime(2025, 1, 28, 10, 0, tzinfo=SHANGHAI)
    # The public holidays run 28-31 January and 3-4 February 2025; the weekend between is not one.
    assert next_allowed(eve, [SHANGHAI], None, china) == utc("2025-01-31T16:00")  # Sat 1 Feb 00:00 CST
    weekdays = WeeklySchedule.parse({"default": "08:00-21:00", "sat": "closed", "sun": "closed"})
    assert not is_allowed_at(eve, [SHANGHAI], weekdays, china)
    assert next_allowed(eve, [SHANGHAI], weekdays, china) == utc("2025-02-05T00:00")  # Wed 08:00 CST


# ------------------------------------------------------------------------------------------------------------
# Daylight-saving edges
# ------------------------------------------------------------------------------------------------------------

# New York springs forward at 2025-03-09 07:00 UTC (02:00 EST -> 03:00 EDT) and falls back at
# 2025-11-02 06:00 UTC (02:00 EDT -> 01:00 EST).


@pytest.mark.parametrize(
    ("zone", "hours", "start", "expected"),
    [
        # Window start 02:30 falls in the gap: it opens at the first valid instant after the gap.
        (NEW_YORK, "02:30-05:00", "2025-03-09T05:00", "2025-03-09T07:00"),
        (NEW_YORK, "02:30-05:00", "2025-03-09T07:00", "2025-03-09T07:00"),
        (NEW_YORK, "02:30-05:00", "2025-03-09T09:00", "2025-03-10T06:30"),  # 05:00 EDT closed it
        # A window lying wholly inside the gap never opens that day.
        (NEW_YORK, "02:00-02:45", "2025-03-09T05:00", "2025-03-10T06:00"),
        # Fall-back: a window starting in the repeated hour opens at the first occurrence (01:30 EDT)...
        (NEW_YORK, "01:30-03:00", "2025-11-02T04:00", "2025-11-02T05:30"),
        # ...is closed when the clock returns to 01:00 EST, and open again from 01:30 EST.
        (NEW_YORK, "01:30-03:00", "2025-11-02T06:00", "2025-11-02T06:30"),
        # The clock jumping back from 02:00 to 01:00 re-enters a window that had closed at 01:15.
        (NEW_YORK, "00:30-01:15", "2025-11-02T05:15", "2025-11-02T06:00"),
        (NEW_YORK, "00:30-01:15", "2025-11-02T06:15", "2025-11-03T05:30"),
        # Lord Howe springs forward by 30 minutes: 02:00 +10:30 -> 02:30 +11:00 at 2025-10-04 15:30 UTC.
        (LORD_HOWE, "02:15-04:00", "2025-10-04T12:00", "2025-10-04T15:30"),
        (LORD_HOWE, "02:30-04:00", "2025-10-04T12:00", "2025-10-04T15:30"),
        # Santiago skips midnight (2025-09-06 24:00 -04 -> 2025-09-07 01:00 -03 at 04:00 UTC): Sunday opens
        # at the first instant of the local day.
        (SANTIAGO, {"sun": "00:00-12:00"}, "2025-09-06T20:00", "2025-09-07T04:00"),
    ],
)
def test_next_allowed_across_dst(
    zone: ZoneInfo, hours: str | dict[str, str], start: str, expected: str
) -> None:
    schedule = WeeklySchedule.parse(hours)
    result = next_allowed(utc(start), [zone], schedule, None)
    assert result == utc(expected)
    assert is_allowed_at(result, [zone], schedule, None)
    if result > utc(start):
        assert not is_allowed_at(result - ONE_MICROSECOND, [zone], schedule, None)


@pytest.mark.parametrize(
    ("instant", "allowed"),
    [
        ("2025-11-02T05:29:59", False),  # 01:29:59 EDT
        ("2025-11-02T05:30", True),  # 01:30 EDT
        ("2025-11-02T05:59:59", True),  # 01:59:59 EDT
        ("2025-11-02T06:00", False),  # 01:00 EST
        ("2025-11-02T06:30", True),  # 01:30 EST
        ("2025-11-02T07:59:59", True),  # 02:59:59 EST
        ("2025-11-02T08:00", False),  # 03:00 EST
    ],
)
def test_fall_back_window_is_judged_by_wall_clock(instant: str, allowed: bool) -> None:
    assert is_allowed_at(utc(instant), [NEW_YORK], WeeklySchedule.parse("01:30-03:00"), None) is allowed


@pytest.mark.parametrize(
    ("day", "zone", "expected"),
    [
        (date(2025, 3, 9), NEW_YORK, "2025-03-09T05:00"),  # still EST at midnight
        (date(2025, 3, 10), NEW_YORK, "2025-03-10T04:00"),  # EDT
        (date(2025, 11, 2), NEW_YORK, "2025-11-02T04:00"),
        (date(2025, 11, 3), NEW_YORK, "2025-11-03T05:00"),
        (date(2025, 9, 7), SANTIAGO, "2025-09-07T04:00"),  # midnight skipped: the day starts at 01:00 -03
        (date(2025, 4, 6), SANTIAGO, "2025-04-06T04:00"),  # after the 24:00 -> 23:00 fall-back
        (date(2025, 3, 9), ZoneInfo("Asia/Kolkata"), "2025-03-08T18:30"),
    ],
)
def test_start_of_local_day(day: date, zone: ZoneInfo, expected: str) -> None:
    start = start_of_local_day(day, zone)
    assert start == utc(expected)
    assert start.tzinfo is UTC
    assert local_day(start, zone) == day
    assert local_day(start - ONE_MICROSECOND, zone) < day


def test_local_day() -> None:
    assert local_day(utc("2025-03-10T03:59"), NEW_YORK) == date(2025, 3, 9)
    assert local_day(utc("2025-03-10T04:00"), NEW_YORK) == date(2025, 3, 10)


# ------------------------------------------------------------------------------------------------------------
# Naive datetimes and argument errors
# ------------------------------------------------------------------------------------------------------------


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2025, 3, 10, 15, 0)
    aware = utc("2025-03-10T15:00")
    calls = [
        lambda: is_allowed_at(naive, [NEW_YORK], DAYTIME, None),
        lambda: next_allowed(naive, [NEW_YORK], DAYTIME, None),
        lambda: local_day(naive, NEW_YORK),
        lambda: count_in_window([naive], aware, sliding=timedelta(hours=1)),
        lambda: count_in_window([aware], naive, sliding=timedelta(hours=1)),
        lambda: cap_next_allowed([aware], naive, 1, sliding=timedelta(hours=1)),
        lambda: cooldown_until(naive, sliding=timedelta(hours=1)),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"calendar_days": 7, "sliding": timedelta(hours=1), "zone": NEW_YORK},
        {"calendar_days": 7},  # calendar days need a zone
        {"calendar_days": 0, "zone": NEW_YORK},
        {"sliding": timedelta(0)},
    ],
)
def test_window_arguments_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        count_in_window([], utc("2025-03-10T15:00"), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        cooldown_until(utc("2025-03-10T15:00"), **kwargs)  # type: ignore[arg-type]


def test_cap_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        cap_next_allowed([], utc("2025-03-10T15:00"), 0, sliding=timedelta(hours=1))


# ------------------------------------------------------------------------------------------------------------
# Frequency caps
# ------------------------------------------------------------------------------------------------------------

# One counted call a day at 16:00 UTC, 3-9 March 2025 (New York local dates 3-9 March).
SEVEN_CALLS = [utc(f"2025-03-{day:02d}T16:00") for day in range(3, 10)]


@pytest.mark.parametrize(
    ("at", "expected_count"),
    [
        ("2025-03-09T20:00", 7),
        ("2025-03-09T15:59", 6),  # the call of the 9th has not happened yet
        ("2025-03-10T03:59:59", 7),  # still 9 March in New York
        ("2025-03-10T04:00", 6),  # local midnight: the 3 March call left the 7-day window
        ("2025-03-10T16:00", 6),
        ("2025-03-16T04:00", 0),
    ],
)
def test_calendar_day_count(at: str, expected_count: int) -> None:
    assert count_in_window(SEVEN_CALLS, utc(at), calendar_days=7, zone=NEW_YORK) == expected_count


def test_seven_in_seven_cap_clears_at_local_midnight() -> None:
    blocked_at = utc("2025-03-09T20:00")
    cleared = cap_next_allowed(SEVEN_CALLS, blocked_at, 7, calendar_days=7, zone=NEW_YORK)
    assert cleared == utc("2025-03-10T04:00")  # midnight EDT on 10 March
    assert cleared.tzinfo is UTC
    call_on_the_10th = utc("2025-03-10T16:00")
    assert (
        cap_next_allowed(SEVEN_CALLS, call_on_the_10th, 7, calendar_days=7, zone=NEW_YORK) == call_on_the_10th
    )


def test_calendar_cap_waits_for_enough_events_to_leave() -> None:
    # Two calls on 3 March and one on 5 March, limit 1 per 3 calendar days: all three must leave,
    # the last on local midnight starting 8 March (05:00 UTC, EST).
    events = [utc("2025-03-03T15:00"), utc("2025-03-03T18:00"), utc("2025-03-05T15:00")]
    at = utc("2025-03-05T20:00")
    assert count_in_window(events, at, calendar_days=3, zone=NEW_YORK) == 3
    assert cap_next_allowed(events, at, 1, calendar_days=3, zone=NEW_YORK) == utc("2025-03-08T05:00")
    assert cap_next_allowed(events, at, 2, calendar_days=3, zone=NEW_YORK) == utc("2025-03-06T05:00")


SLIDING_EVENTS = [utc("2025-03-10T10:00"), utc("2025-03-10T12:00"), utc("2025-03-10T14:00")]
DAY = timedelta(hours=24)


@pytest.mark.parametrize(
    ("at", "expected_count"),
    [
        ("2025-03-10T09:59", 0),
        ("2025-03-10T10:00", 1),  # the window is (at - 24h, at]: an event at `at` counts
        ("2025-03-10T15:00", 3),
        ("2025-03-11T09:59:59", 3),
        ("2025-03-11T10:00", 2),  # exactly 24h after the first event it no longer counts
        ("2025-03-11T14:00", 0),
    ],
)
def test_sliding_count(at: str, expected_count: int) -> None:
    assert count_in_window(SLIDING_EVENTS, utc(at), sliding=DAY) == expected_count


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (4, "2025-03-10T15:00"),  # under the cap: `at` itself
        (3, "2025-03-11T10:00"),  # oldest leaves
        (2, "2025-03-11T12:00"),  # the 2nd oldest must leave
        (1, "2025-03-11T14:00"),  # all three must leave
    ],
)
def test_sliding_cap_next_allowed(limit: int, expected: str) -> None:
    assert cap_next_allowed(SLIDING_EVENTS, utc("2025-03-10T15:00"), limit, sliding=DAY) == utc(expected)


def test_sliding_count_uses_elapsed_time_for_local_datetimes() -> None:
    # Local datetimes around the fall-back: 01:30 EDT and 01:10 EST are 40 minutes apart although the wall
    # clock went backwards.
    first = datetime(2025, 11, 2, 1, 30, tzinfo=NEW_YORK)
    second = datetime(2025, 11, 2, 1, 10, fold=1, tzinfo=NEW_YORK)
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(minutes=40)
    assert count_in_window([first], second, sliding=timedelta(minutes=45)) == 1
    assert count_in_window([first], second, sliding=timedelta(minutes=40)) == 0
    one_am_est = datetime(2025, 11, 2, 1, 0, fold=1, tzinfo=NEW_YORK)  # 06:00 UTC, after 01:30 EDT
    assert cap_next_allowed([first], one_am_est, 1, sliding=timedelta(hours=1)) == utc("2025-11-02T06:30")


def test_sliding_cap_accounts_for_events_after_at() -> None:
    # A call logged after `at` enters the window before the older ones leave.
    events = [utc("2025-03-10T10:00"), utc("2025-03-10T20:00")]
    at = utc("2025-03-10T15:00")
    assert count_in_window(events, at, sliding=DAY) == 1
    # The 10:00 call leaves at 10:00 the next day, but by then the 20:00 call counts; it leaves at 20:00.
    assert cap_next_allowed(events, at, 1, sliding=DAY) == utc("2025-03-11T20:00")
    assert cap_next_allowed(events, utc("2025-03-10T09:00"), 1, sliding=DAY) == utc("2025-03-10T09:00")


# ------------------------------------------------------------------------------------------------------------
# Cool-down
# ------------------------------------------------------------------------------------------------------------


def test_calendar_day_cooldown_after_conversation() -> None:
    conversation = utc("2025-03-04T15:00")  # Tue 10:00 EST: day 1
    until = cooldown_until(conversation, calendar_days=7, zone=NEW_YORK)
    assert until == utc("2025-03-11T04:00")  # Tue 11 March 00:00 EDT (DST began on the 9th)
    assert until.tzinfo is UTC
    monday_10th_local = [datetime(2025, 3, 10, hour, 59, tzinfo=NEW_YORK) for hour in range(24)]
    assert all(moment < until for moment in monday_10th_local)
    assert local_day(until, NEW_YORK) == date(2025, 3, 11)


@pytest.mark.parametrize(
    ("event", "days", "expected"),
    [
        ("2025-03-05T04:59", 1, "2025-03-05T05:00"),  # 23:59 EST on the 4th: blocked only for the rest of it
        ("2025-03-05T05:00", 1, "2025-03-06T05:00"),
        ("2025-11-01T12:00", 2, "2025-11-03T05:00"),  # across the fall-back
    ],
)
def test_calendar_day_cooldown_boundaries(event: str, days: int, expected: str) -> None:
    assert cooldown_until(utc(event), calendar_days=days, zone=NEW_YORK) == utc(expected)


def test_sliding_cooldown_counts_elapsed_time_across_dst() -> None:
    event = datetime(2025, 3, 8, 22, 0, tzinfo=NEW_YORK)  # 2025-03-09 03:00 UTC
    # 72 elapsed hours, not 72 wall-clock hours (the clocks sprang forward in between).
    assert cooldown_until(event, sliding=timedelta(hours=72)) == utc("2025-03-12T03:00")


# ------------------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------------------

PROPERTY_ZONES = [
    ZoneInfo(name)
    for name in (
        "UTC",
        "America/New_York",
        "America/Los_Angeles",
        "America/Santiago",
        "Europe/London",
        "Africa/Casablanca",
        "Asia/Shanghai",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
    )
]
PROPERTY_CALENDARS = [HolidayCalendar("US"), HolidayCalendar("GB")]
RANGE_START = datetime(2024, 1, 1, tzinfo=UTC)
RANGE_END = datetime(2026, 12, 31, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
DENSE_CHECK_LIMIT = timedelta(days=1)
SPARSE_SAMPLES = 600


def _dst_transitions() -> list[datetime]:
    """Offset changes of the property zones in the test range, to within six hours (coarse is enough: the
    strategy below spreads instants two days either side)."""
    found: list[datetime] = []
    for zone in PROPERTY_ZONES:
        previous = RANGE_START.astimezone(zone).utcoffset()
        instant = RANGE_START
        while instant < RANGE_END:
            instant += timedelta(hours=6)
            offset = instant.astimezone(zone).utcoffset()
            if offset != previous:
                found.append(instant)
            previous = offset
    return found


DST_TRANSITIONS = _dst_transitions()


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    if draw(st.booleans()):
        return draw(st.datetimes(RANGE_START.replace(tzinfo=None), RANGE_END.replace(tzinfo=None))).replace(
            tzinfo=UTC
        )
    # Near a DST transition, where the edge cases live.
    transition = draw(st.sampled_from(DST_TRANSITIONS))
    return transition + timedelta(seconds=draw(st.integers(-2 * 86400, 2 * 86400)))


@st.composite
def day_windows(draw: st.DrawFn) -> tuple[DailyWindow, ...]:
    # Quarter-hour marks keep windows starting inside DST gaps and overlaps likely.
    marks = sorted(draw(st.sets(st.integers(0, 96), max_size=4)))
    if len(marks) % 2:
        marks = marks[:-1]
    return tuple(DailyWindow(marks[i] * 15, marks[i + 1] * 15) for i in range(0, len(marks), 2))


schedules = st.one_of(
    st.none(),
    st.builds(lambda days: WeeklySchedule(days=tuple(days)), st.lists(day_windows(), min_size=7, max_size=7)),
    st.builds(lambda windows: WeeklySchedule(days=(windows,) * 7), day_windows()),
)
zone_lists = st.lists(st.sampled_from(PROPERTY_ZONES), min_size=1, max_size=3)
calendars = st.one_of(st.none(), st.sampled_from(PROPERTY_CALENDARS))


def _instants_to_check(start: datetime, end: datetime) -> list[datetime]:
    """Points in [start, end): every minute boundary when the span is short, else an even sample.

    All property zones have whole-minute offsets and windows start on whole minutes, so the allowed state
    can only change on a UTC minute boundary: checking `start` and every boundary covers the span exactly.
    """
    points = [start]
    first_boundary = start.replace(second=0, microsecond=0) + MINUTE
    if end - start <= DENSE_CHECK_LIMIT:
        boundary = first_boundary
        while boundary < end:
            points.append(boundary)
            boundary += MINUTE
        return [point for point in points if point < end]
    step = (end - start) / SPARSE_SAMPLES
    points.extend(start + step * index for index in range(1, SPARSE_SAMPLES))
    points.extend(first_boundary + MINUTE * index for index in range(60))
    points.extend(end.replace(second=0, microsecond=0) - MINUTE * index for index in range(60))
    return [point for point in points if start <= point < end]


@settings(max_examples=200, deadline=None)
@given(start=instants(), zones=zone_lists, schedule=schedules, calendar=calendars)
def test_next_allowed_is_the_first_allowed_instant(
    start: datetime,
    zones: list[ZoneInfo],
    schedule: WeeklySchedule | None,
    calendar: HolidayCalendar | None,
) -> None:
    horizon_days = 30
    result = next_allowed(start, zones, schedule, calendar, horizon_days=horizon_days)
    if result is None:
        for point in _instants_to_check(start, start + timedelta(days=horizon_days)):
            assert not is_allowed_at(point, zones, schedule, calendar), point
        return
    assert result.tzinfo is UTC
    assert start <= result <= start + timedelta(days=horizon_days)
    assert is_allowed_at(result, zones, schedule, calendar)
    if result > start:
        assert not is_allowed_at(result - ONE_MICROSECOND, zones, schedule, calendar)
    for point in _instants_to_check(start, result):
        assert not is_allowed_at(point, zones, schedule, calendar), point


event_offsets = st.lists(st.integers(-12 * 86400, 2 * 86400), max_size=12)
cap_windows = st.one_of(
    st.builds(lambda days: {"calendar_days": days}, st.integers(1, 8)),
    st.builds(lambda hours: {"sliding": timedelta(hours=hours)}, st.integers(1, 72)),
)


@settings(max_examples=200, deadline=None)
@given(
    at=instants(),
    offsets=event_offsets,
    extra_offsets=event_offsets,
    limit=st.integers(1, 5),
    window=cap_windows,
    zone=st.sampled_from(PROPERTY_ZONES),
)
def test_cap_next_allowed_properties(
    at: datetime,
    offsets: list[int],
    extra_offsets: list[int],
    limit: int,
    window: dict[str, object],
    zone: ZoneInfo,
) -> None:
    events = [at + timedelta(seconds=offset) for offset in offsets]
    extra = [at + timedelta(seconds=offset) for offset in extra_offsets]
    options = {**window, "zone": zone}
    result = cap_next_allowed(events, at, limit, **options)  # type: ignore[arg-type]
    assert result >= at
    assert count_in_window(events, result, **options) < limit  # type: ignore[arg-type]
    if result > at:
        # Earliest: just before it the cap was still reached.
        assert count_in_window(events, result - ONE_MICROSECOND, **options) >= limit  # type: ignore[arg-type]
    # More events can only delay the moment the cap clears.
    assert cap_next_allowed(events + extra, at, limit, **options) >= result  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(event=instants(), days=st.integers(1, 10), zone=st.sampled_from(PROPERTY_ZONES))
def test_calendar_cooldown_ends_at_the_local_midnight_of_day_n_plus_1(
    event: datetime, days: int, zone: ZoneInfo
) -> None:
    until = cooldown_until(event, calendar_days=days, zone=zone)
    assert local_day(until, zone) == local_day(event, zone) + timedelta(days=days)
    assert local_day(until - ONE_MICROSECOND, zone) < local_day(until, zone)
