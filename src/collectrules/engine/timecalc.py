"""Date and time arithmetic behind contact restrictions.

Everything here is pure: no I/O, no knowledge of policies or accounts. The functions answer questions such as
"may we call at this instant, given the debtor's time zones, the allowed hours and the holiday calendar?",
"when is the next instant we may?", "how many counted attempts fall in the current 7-calendar-day window?" and
"when does a cool-down end?".

Conventions:

* Every datetime going in must be timezone-aware (naive values raise ``ValueError``); every datetime
  coming out of a "next allowed" / "until" function is in UTC.
* Allowed hours are judged on the local wall clock of each zone: an instant is inside a window when its local
  time of day lies in ``[start, end)`` of a window belonging to its local weekday, and its local date is not a
  holiday. With several zones (a debtor who may be in more than one place) an instant must be allowed in every
  zone.
* Daylight-saving transitions:

  - A window whose local start falls in a spring-forward gap opens at the first valid instant after the gap
    (the transition instant). A window lying entirely inside the gap never opens that day, because no local
    time in it exists.
  - A window whose local start falls in a fall-back overlap opens at the first occurrence of that wall time
    (``fold=0``). Because the judgement is by wall clock, the repeated local hour after the transition is
    inside the window again if its wall times are; ``next_allowed`` reports such re-openings consistently.
  - "Local midnight" of a day is the first instant whose local date is that day: the first occurrence in an
    overlap, or the transition instant when midnight itself is skipped (for example America/Santiago).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from holidays import HolidayBase

__all__ = [
    "MINUTES_PER_DAY",
    "WEEKDAY_KEYS",
    "DailyWindow",
    "HolidayCalendar",
    "WeeklySchedule",
    "cap_next_allowed",
    "cooldown_until",
    "count_in_window",
    "is_allowed_at",
    "local_day",
    "next_allowed",
    "start_of_local_day",
]

MINUTES_PER_DAY = 24 * 60
WEEKDAY_KEYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_ONE_DAY = timedelta(days=1)
_ONE_SECOND = timedelta(seconds=1)
_MICROS_PER_MINUTE = 60_000_000
# Offsets are probed this often when looking for DST transitions; real zones never change offset twice
# within this span.
_TRANSITION_PROBE = timedelta(hours=3)
_CLOSED = "closed"
_CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


# ----------------------------------------------------------------------------------------------------
# Schedules
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyWindow:
    """A window ``[start_minute, end_minute)`` of local wall-clock minutes; ``end_minute`` may be 24*60."""

    start_minute: int
    end_minute: int

    def __post_init__(self) -> None:
        for name in ("start_minute", "end_minute"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if not 0 <= self.start_minute < MINUTES_PER_DAY:
            raise ValueError(f"start_minute must be in 0..{MINUTES_PER_DAY - 1}, got {self.start_minute}")
        if not self.start_minute < self.end_minute <= MINUTES_PER_DAY:
            raise ValueError(
                f"end_minute must be after start_minute ({self.start_minute}) and at most {MINUTES_PER_DAY}, "
                f"got {self.end_minute}"
            )

    def __str__(self) -> str:
        return f"{_format_clock(self.start_minute)}-{_format_clock(self.end_minute)}"


@dataclass(frozen=True, slots=True)
class WeeklySchedule:
    """Allowed windows per local weekday (Monday = 0); an empty tuple means closed all day."""

    days: tuple[tuple[DailyWindow, ...], ...]

    def __post_init__(self) -> None:
        # Accept lists from callers building schedules by hand; store tuples so the value stays hashable.
        days = tuple(tuple(windows) for windows in self.days)
        if len(days) != 7:
            raise ValueError(f"a weekly schedule needs 7 days (Monday first), got {len(days)}")
        for weekday, windows in enumerate(days):
            previous: DailyWindow | None = None
            for window in windows:
                if not isinstance(window, DailyWindow):
                    raise ValueError(f"{WEEKDAY_KEYS[weekday]}: expected DailyWindow, got {window!r}")
                if previous is not None and window.start_minute < previous.end_minute:
                    raise ValueError(
                        f"{WEEKDAY_KEYS[weekday]}: windows must be sorted and must not overlap "
                        f"({previous} then {window})"
                    )
                previous = window
        object.__setattr__(self, "days", days)

    @classmethod
    def parse(cls, spec: str | Mapping[str, str | list[str] | None]) -> WeeklySchedule:
        """Build a schedule from the policy notation.

        ``"08:00-21:00"`` applies to every day. A mapping has keys ``mon`` … ``sun`` and ``default`` (used
        for days not named); each value is ``"HH:MM-HH:MM"``, a list of such windows, or ``"closed"``. A
        null value or an empty list also means closed, and without ``default`` the days not named are
        closed. Windows may end at ``24:00`` but cannot cross midnight; touching windows are merged.
        """
        if isinstance(spec, str):
            windows = _parse_day_value(spec, "schedule")
            return cls(days=(windows,) * 7)
        if not isinstance(spec, Mapping):
            raise ValueError(
                f"a schedule must be a string like '08:00-21:00' or a mapping of weekdays, got {spec!r}"
            )
        if not spec:
            raise ValueError("a schedule mapping must name at least one weekday or 'default'")
        known = (*WEEKDAY_KEYS, "default")
        for key in spec:
            if key not in known:
                raise ValueError(f"unknown weekday key {key!r}; expected one of {', '.join(known)}")
        default = _parse_day_value(spec["default"], "default") if "default" in spec else ()
        days = tuple(_parse_day_value(spec[key], key) if key in spec else default for key in WEEKDAY_KEYS)
        return cls(days=days)

    def windows_on(self, weekday: int) -> tuple[DailyWindow, ...]:
        """The windows of a weekday (Monday = 0)."""
        return self.days[weekday]

    @property
    def is_never_open(self) -> bool:
        """True when every day is closed."""
        return not any(self.days)


def _format_clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _parse_clock(text: str, context: str) -> int:
    match = _CLOCK_RE.match(text.strip())
    if match is None:
        raise ValueError(f"{context}: {text.strip()!r} is not a time of day in HH:MM form")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes != 0):
        raise ValueError(f"{context}: {text.strip()!r} is not a valid time of day (00:00 to 24:00)")
    return hours * 60 + minutes


def _parse_window(text: str, context: str) -> DailyWindow:
    parts = text.split("-")
    if len(parts) != 2:
        raise ValueError(f"{context}: expected a window like '08:00-21:00' or 'closed', got {text!r}")
    start, end = _parse_clock(parts[0], context), _parse_clock(parts[1], context)
    if start == MINUTES_PER_DAY:
        raise ValueError(f"{context}: window {text!r} cannot start at 24:00")
    if end <= start:
        raise ValueError(
            f"{context}: window {text!r} must end after it starts; windows cannot cross midnight "
            f"(use 24:00 as the end and put the rest on the next day)"
        )
    return DailyWindow(start, end)


def _parse_day_value(value: object, context: str) -> tuple[DailyWindow, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        if value.strip().lower() == _CLOSED:
            return ()
        items: list[object] = [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(f"{context}: expected 'HH:MM-HH:MM', a list of windows or 'closed', got {value!r}")
    windows: list[DailyWindow] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{context}: each window must be a string like '08:00-21:00', got {item!r}")
        if item.strip().lower() == _CLOSED:
            raise ValueError(f"{context}: 'closed' cannot be combined with windows")
        windows.append(_parse_window(item, context))
    windows.sort(key=lambda window: window.start_minute)
    merged: list[DailyWindow] = []
    for window in windows:
        if merged and window.start_minute < merged[-1].end_minute:
            raise ValueError(f"{context}: windows {merged[-1]} and {window} overlap")
        if merged and window.start_minute == merged[-1].end_minute:
            merged[-1] = DailyWindow(merged[-1].start_minute, window.end_minute)
        else:
            merged.append(window)
    return tuple(merged)


# ----------------------------------------------------------------------------------------------------
# Holiday calendars
# ----------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _country_codes() -> frozenset[str]:
    # the registry names every country without importing each country's module, which
    # list_supported_countries() does and which costs more than the rest of `validate`
    from holidays.registry import COUNTRIES

    return frozenset(code for entry in COUNTRIES.values() for code in entry[1:3])


@lru_cache(maxsize=64)
def _subdivisions(country: str) -> tuple[str, ...]:
    import holidays

    return tuple(holidays.country_holidays(country).subdivisions)


@lru_cache(maxsize=512)
def _holidays_for(country: str, subdivision: str | None, year: int) -> HolidayBase:
    import holidays

    return holidays.country_holidays(country, subdiv=subdivision, years=year)


class HolidayCalendar:
    """Public holidays of a country, or of a subdivision written ``COUNTRY-SUBDIVISION`` (``US-CA``)."""

    __slots__ = ("code", "country", "subdivision")

    code: str
    country: str
    subdivision: str | None

    def __init__(self, code: str) -> None:
        if not isinstance(code, str) or not code.strip():
            raise ValueError(f"a holiday calendar code must be a non-empty string, got {code!r}")
        country_part, separator, subdivision_part = code.strip().partition("-")
        country = country_part.strip().upper()
        if country not in _country_codes():
            raise ValueError(f"unknown holiday calendar {code!r}: no calendar for country {country!r}")
        subdivision: str | None = None
        if subdivision_part.strip():
            wanted = subdivision_part.strip().casefold()
            matches = [name for name in _subdivisions(country) if name.casefold() == wanted]
            if not matches:
                raise ValueError(
                    f"unknown holiday calendar {code!r}: {country} has no subdivision "
                    f"{subdivision_part.strip()!r}"
                )
            subdivision = matches[0]
        elif separator:
            raise ValueError(f"holiday calendar {code!r}: missing subdivision after '-'")
        self.country = country
        self.subdivision = subdivision
        self.code = country if subdivision is None else f"{country}-{subdivision}"

    def is_holiday(self, day: date) -> bool:
        """True when ``day`` is a public holiday (observed days included)."""
        return _as_date(day) in _holidays_for(self.country, self.subdivision, day.year)

    def holiday_name(self, day: date) -> str | None:
        """The holiday's name (several names joined by ``"; "``), or None on an ordinary day."""
        name: str | None = _holidays_for(self.country, self.subdivision, day.year).get(_as_date(day))
        return name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HolidayCalendar) and other.code == self.code

    def __hash__(self) -> int:
        return hash(("HolidayCalendar", self.code))

    def __repr__(self) -> str:
        return f"HolidayCalendar({self.code!r})"


def _as_date(day: date) -> date:
    # A datetime is a date subclass; looking it up would silently use its date part, so refuse it instead.
    if isinstance(day, datetime) or not isinstance(day, date):
        raise ValueError(f"expected a date, got {day!r}")
    return day


# ----------------------------------------------------------------------------------------------------
# Local days and wall-clock resolution
# ----------------------------------------------------------------------------------------------------


def _require_aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value


def _require_zone(zone: object, name: str = "zone") -> tzinfo:
    if not isinstance(zone, tzinfo):
        raise ValueError(f"{name} must be a ZoneInfo, got {zone!r}")
    return zone


def _utc_offset(instant: datetime, zone: tzinfo) -> timedelta | None:
    return instant.astimezone(zone).utcoffset()


def _first_instant_with_new_offset(before: datetime, after: datetime, zone: tzinfo) -> datetime:
    """Bisect ``(before, after]`` to the second for the instant the zone's offset changes.

    Both bounds are whole seconds and tzdb transitions fall on whole seconds, so the result is exact.
    """
    offset_before = _utc_offset(before, zone)
    while after - before > _ONE_SECOND:
        span_seconds = int((after - before).total_seconds())
        middle = before + timedelta(seconds=span_seconds // 2)
        if _utc_offset(middle, zone) == offset_before:
            before = middle
        else:
            after = middle
    return after


@lru_cache(maxsize=16384)
def _offset_transitions(zone: tzinfo, utc_day: date) -> tuple[datetime, ...]:
    """UTC instants within ``utc_day`` at which the zone's UTC offset changes."""
    day_start = datetime.combine(utc_day, time(0), tzinfo=UTC)
    day_end = day_start + _ONE_DAY
    # Start one second early so a transition exactly at midnight UTC is seen.
    probe = day_start - _ONE_SECOND
    probe_offset = _utc_offset(probe, zone)
    found: list[datetime] = []
    next_probe = day_start
    while probe < day_end:
        next_probe = min(probe + _TRANSITION_PROBE, day_end)
        next_offset = _utc_offset(next_probe, zone)
        if next_offset != probe_offset:
            transition = _first_instant_with_new_offset(probe, next_probe, zone)
            if day_start <= transition < day_end:
                found.append(transition)
        probe, probe_offset = next_probe, next_offset
    return tuple(found)


def _occurrences(wall: datetime, zone: tzinfo) -> list[datetime]:
    """The UTC instants at which the local clock shows ``wall`` (0 in a gap, 2 in an overlap), in order."""
    instants: list[datetime] = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall and instant not in instants:
            instants.append(instant)
    instants.sort()
    return instants


def _resolve_local(wall: datetime, zone: tzinfo) -> datetime:
    """The first instant at or after the local wall time ``wall``, in UTC.

    In an overlap that is the first occurrence (fold=0); in a spring-forward gap it is the transition
    instant that ends the gap.
    """
    occurrences = _occurrences(wall, zone)
    if occurrences:
        return occurrences[0]
    # In a gap, PEP 495 maps fold=1 through the later offset and fold=0 through the earlier one, so the two
    # readings bracket the transition.
    earliest = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    latest = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    low, high = min(earliest, latest), max(earliest, latest)
    return _first_instant_with_new_offset(_floor_second(low), _ceil_second(high), zone)


def _floor_second(instant: datetime) -> datetime:
    return instant.replace(microsecond=0)


def _ceil_second(instant: datetime) -> datetime:
    floored = instant.replace(microsecond=0)
    return floored if floored == instant else floored + _ONE_SECOND


def local_day(at: datetime, zone: ZoneInfo) -> date:
    """The calendar date shown by the local clock of ``zone`` at ``at``."""
    _require_aware(at, "at")
    return at.astimezone(_require_zone(zone)).date()


def start_of_local_day(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which local ``day`` begins in ``zone`` (DST-safe, see the module notes)."""
    return _resolve_local(datetime.combine(_as_date(day), time(0)), _require_zone(zone))


# ----------------------------------------------------------------------------------------------------
# Allowed hours
# ----------------------------------------------------------------------------------------------------


def _check_zones(zones: Sequence[ZoneInfo]) -> tuple[tzinfo, ...]:
    checked = tuple(_require_zone(zone, "each zone") for zone in zones)
    if not checked:
        raise ValueError("at least one time zone is required")
    return checked


def _allowed_in_zone(
    instant: datetime, zone: tzinfo, schedule: WeeklySchedule | None, calendar: HolidayCalendar | None
) -> bool:
    local = instant.astimezone(zone)
    if calendar is not None and calendar.is_holiday(local.date()):
        return False
    if schedule is None:
        return True
    # Integer microseconds: exact comparison against minute boundaries, no float rounding.
    micros = ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000 + local.microsecond
    return any(
        window.start_minute * _MICROS_PER_MINUTE <= micros < window.end_minute * _MICROS_PER_MINUTE
        for window in schedule.days[local.weekday()]
    )


def is_allowed_at(
    at: datetime,
    zones: Sequence[ZoneInfo],
    schedule: WeeklySchedule | None,
    calendar: HolidayCalendar | None,
) -> bool:
    """Whether ``at`` is allowed in every zone: inside a window of the local weekday and not on a holiday.

    ``schedule=None`` allows any time of day, leaving only the holiday calendar.
    """
    _require_aware(at, "at")
    return all(_allowed_in_zone(at, zone, schedule, calendar) for zone in _check_zones(zones))


_ALL_DAY_STARTS: tuple[int, ...] = (0,)


def _window_starts(schedule: WeeklySchedule | None, weekday: int) -> tuple[int, ...]:
    if schedule is None:
        return _ALL_DAY_STARTS
    return tuple(window.start_minute for window in schedule.days[weekday])


@lru_cache(maxsize=16384)
def _opening_candidates(zone: tzinfo, schedule: WeeklySchedule | None, utc_day: date) -> tuple[datetime, ...]:
    """Instants within ``utc_day`` at which the zone can pass from blocked to allowed, sorted.

    Within a stretch of constant UTC offset the wall clock moves forward, so the zone can only become allowed
    when the wall clock reaches a window start (every occurrence of it) or when the offset jumps.
    """
    day_start = datetime.combine(utc_day, time(0), tzinfo=UTC)
    day_end = day_start + _ONE_DAY
    found: set[datetime] = set(_offset_transitions(zone, utc_day))
    # UTC offsets stay well within a day, so only these local dates overlap the UTC day.
    for local_date in (utc_day - _ONE_DAY, utc_day, utc_day + _ONE_DAY):
        for start_minute in _window_starts(schedule, local_date.weekday()):
            wall = datetime.combine(local_date, time(start_minute // 60, start_minute % 60))
            found.update(instant for instant in _occurrences(wall, zone) if day_start <= instant < day_end)
    return tuple(sorted(found))


def _zone_next_allowed(
    start: datetime,
    zone: tzinfo,
    schedule: WeeklySchedule | None,
    calendar: HolidayCalendar | None,
    limit: datetime,
) -> datetime | None:
    if _allowed_in_zone(start, zone, schedule, calendar):
        return start
    utc_day = start.date()
    while datetime.combine(utc_day, time(0), tzinfo=UTC) <= limit:
        for candidate in _opening_candidates(zone, schedule, utc_day):
            if candidate <= start:
                continue
            if candidate > limit:
                return None
            if _allowed_in_zone(candidate, zone, schedule, calendar):
                return candidate
        utc_day += _ONE_DAY
    return None


def next_allowed(
    at: datetime,
    zones: Sequence[ZoneInfo],
    schedule: WeeklySchedule | None,
    calendar: HolidayCalendar | None,
    *,
    horizon_days: int = 400,
) -> datetime | None:
    """The earliest instant ``t >= at`` (in UTC) with ``is_allowed_at(t, ...)``, or None within the horizon.

    Each zone proposes its own next opening at or after the current candidate; the latest proposal becomes the
    new candidate until every zone accepts it (a fixed point). The result is exact, not rounded: openings are
    the UTC images of local window starts and the instants of offset transitions (see the module notes for
    the DST rules). Nothing later than ``at + horizon_days`` is returned.
    """
    _require_aware(at, "at")
    checked_zones = _check_zones(zones)
    if horizon_days < 0:
        raise ValueError(f"horizon_days must be >= 0, got {horizon_days}")
    if schedule is not None and schedule.is_never_open:
        return None
    candidate = at.astimezone(UTC)
    limit = candidate + timedelta(days=horizon_days)
    while True:
        moved = False
        for zone in checked_zones:
            proposal = _zone_next_allowed(candidate, zone, schedule, calendar, limit)
            if proposal is None:
                return None
            if proposal != candidate:
                candidate, moved = proposal, True
        if not moved:
            return candidate


# ----------------------------------------------------------------------------------------------------
# Frequency caps and cool-downs
# ----------------------------------------------------------------------------------------------------


def _window_kind(
    calendar_days: int | None, sliding: timedelta | None, zone: ZoneInfo | None
) -> tuple[int | None, timedelta | None, tzinfo | None]:
    if (calendar_days is None) == (sliding is None):
        raise ValueError("give exactly one of calendar_days or sliding")
    if calendar_days is not None:
        if not isinstance(calendar_days, int) or isinstance(calendar_days, bool) or calendar_days < 1:
            raise ValueError(f"calendar_days must be an int >= 1, got {calendar_days!r}")
        if zone is None:
            raise ValueError("calendar_days needs the zone whose calendar days are counted")
        return calendar_days, None, _require_zone(zone)
    if not isinstance(sliding, timedelta) or sliding <= timedelta(0):
        raise ValueError(f"sliding must be a positive timedelta, got {sliding!r}")
    return None, sliding, None


def _utc_events(events: Iterable[datetime]) -> list[datetime]:
    # Python compares and subtracts datetimes sharing a tzinfo by wall clock, which is wrong across DST;
    # UTC makes every comparison and `+ sliding` a comparison of real instants.
    return [_require_aware(event, "each event").astimezone(UTC) for event in events]


def _count(
    events: Sequence[datetime],
    at: datetime,
    calendar_days: int | None,
    sliding: timedelta | None,
    zone: tzinfo | None,
) -> int:
    if sliding is not None:
        window_start = at - sliding
        return sum(1 for event in events if window_start < event <= at)
    assert calendar_days is not None and zone is not None
    today = at.astimezone(zone).date()
    first_day = today - timedelta(days=calendar_days - 1)
    return sum(1 for event in events if event <= at and first_day <= event.astimezone(zone).date() <= today)


def count_in_window(
    events: Sequence[datetime],
    at: datetime,
    *,
    calendar_days: int | None = None,
    sliding: timedelta | None = None,
    zone: ZoneInfo | None = None,
) -> int:
    """How many events count against a cap at ``at``.

    ``calendar_days=N`` counts events at or before ``at`` whose local date in ``zone`` is one of the N
    calendar days ending with ``at``'s local date (today and the N-1 days before). ``sliding`` counts events
    in ``(at - sliding, at]``. Exactly one of the two must be given.
    """
    _require_aware(at, "at")
    days, span, checked_zone = _window_kind(calendar_days, sliding, zone)
    return _count(_utc_events(events), at.astimezone(UTC), days, span, checked_zone)


def _leave_instant(
    event: datetime, calendar_days: int | None, sliding: timedelta | None, zone: tzinfo | None
) -> datetime:
    """The instant from which ``event`` no longer counts."""
    if sliding is not None:
        return event.astimezone(UTC) + sliding
    assert calendar_days is not None and zone is not None
    return start_of_local_day(event.astimezone(zone).date() + timedelta(days=calendar_days), zone)


def cap_next_allowed(
    events: Sequence[datetime],
    at: datetime,
    limit: int,
    *,
    calendar_days: int | None = None,
    sliding: timedelta | None = None,
    zone: ZoneInfo | None = None,
) -> datetime:
    """The earliest instant ``t >= at`` (in UTC) at which fewer than ``limit`` events count.

    ``at`` itself when already under the cap. Otherwise, assuming no new events, the count only falls when an
    event leaves the window: at local midnight N days after the event's local day for calendar days, or at
    ``event + sliding`` for a sliding window (the window is half-open, so that exact instant is allowed).
    Events later than ``at`` in ``events`` are taken into account as they enter the window.
    """
    _require_aware(at, "at")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be an int >= 1, got {limit!r}")
    days, span, checked_zone = _window_kind(calendar_days, sliding, zone)
    checked_events = _utc_events(events)
    at_utc = at.astimezone(UTC)
    if _count(checked_events, at_utc, days, span, checked_zone) < limit:
        return at_utc
    leave_instants = sorted({_leave_instant(event, days, span, checked_zone) for event in checked_events})
    for candidate in leave_instants:
        if candidate > at_utc and _count(checked_events, candidate, days, span, checked_zone) < limit:
            return candidate
    # Unreachable: once the last event has left, the count is zero.
    raise AssertionError("no instant found at which the cap clears")


def cooldown_until(
    event_at: datetime,
    *,
    calendar_days: int | None = None,
    sliding: timedelta | None = None,
    zone: ZoneInfo | None = None,
) -> datetime:
    """The instant (in UTC) a cool-down started by an event ends.

    ``calendar_days=N``: the event's local day is day 1, contact stays blocked through local day N and the
    result is the local midnight starting day N+1. ``sliding``: ``event_at + sliding``.
    """
    _require_aware(event_at, "event_at")
    days, span, checked_zone = _window_kind(calendar_days, sliding, zone)
    return _leave_instant(event_at, days, span, checked_zone)
