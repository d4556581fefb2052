"""Calendar periods for KPI measurement: day, ISO week, month, quarter and year.

A :class:`Period` is an inclusive range of dates with a kind and a label. :func:`parse_period` reads the
report's ``--period`` (``2026``, ``2026-Q3``, ``2026-09``, ``2026-W37``, ``2026-09-14``); the other
functions step through periods of a kind:

- :func:`period_of` is the period of a kind that contains a day;
- :func:`periods_ending_in` are the periods of a kind whose last day falls inside another period (how a
  monthly KPI is measured in a quarterly report: July, August, September);
- :meth:`Period.previous` is the period of the same kind just before (trends and ``previous(...)`` targets).

Weeks are ISO 8601 weeks (Monday to Sunday; week 1 holds the year's first Thursday).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Final

__all__ = ["KINDS", "Period", "parse_period", "period_of", "periods_ending_in"]

#: the period kinds, shortest first
KINDS: Final[tuple[str, ...]] = ("day", "week", "month", "quarter", "year")

_MONTH_NAMES: Final[tuple[str, ...]] = ("January", "February", "March", "April", "May", "June", "July",
                                        "August", "September", "October", "November", "December")

_YEAR = re.compile(r"^([0-9]{4})$")
_QUARTER = re.compile(r"^([0-9]{4})-[Qq]([1-4])$")
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")
_WEEK = re.compile(r"^([0-9]{4})-[Ww]([0-9]{2})$")
_DAY = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")


@dataclass(frozen=True, order=True)
class Period:
    """An inclusive range of dates of one kind, such as 2026-Q3 (2026-07-01 to 2026-09-30).

    A period may be cut short (``to_date``): a yearly KPI in a quarterly report is measured from the start
    of the year to the end of the quarter.
    """

    start: _dt.date
    end: _dt.date
    kind: str
    #: the period's name: ``2026-Q3``, ``2026-09``, ``2026-W37``, ``2026-09-14`` or ``2026``
    label: str
    #: the period ends before its kind's natural end (measured "to date")
    to_date: bool = False

    @property
    def days(self) -> int:
        """How many days the period spans, both ends included."""
        return (self.end - self.start).days + 1

    @property
    def opening_date(self) -> _dt.date:
        """The day before the period starts: its opening balances are that day's closing balances."""
        return self.start - _dt.timedelta(days=1)

    def contains(self, day: _dt.date) -> bool:
        return self.start <= day <= self.end

    def previous(self, count: int = 1) -> Period:
        """The full period of the same kind ``count`` periods before this one."""
        period = period_of(self.kind, self.start)
        for _ in range(count):
            period = period_of(self.kind, period.start - _dt.timedelta(days=1))
        return period

    def cut_at(self, end: _dt.date) -> Period:
        """This period ending at ``end`` instead (to date), when ``end`` falls before its natural end."""
        if end >= self.end:
            return self
        return Period(self.start, end, self.kind, self.label, to_date=True)

    def describe(self) -> str:
        """A readable name: ``September 2026``, ``2026-Q3``, ``2026 to 2026-09-30``."""
        if self.kind == "month":
            text = f"{_MONTH_NAMES[self.start.month - 1]} {self.start.year}"
        elif self.kind == "week":
            text = f"{self.label} ({self.start.isoformat()} to {self.end.isoformat()})"
        else:
            text = self.label
        return f"{text} to {self.end.isoformat()}" if self.to_date else text

    def __str__(self) -> str:
        return self.label if not self.to_date else f"{self.label} to {self.end.isoformat()}"


def _month_end(year: int, month: int) -> _dt.date:
    following = _dt.date(year + 1, 1, 1) if month == 12 else _dt.date(year, month + 1, 1)
    return following - _dt.timedelta(days=1)


def period_of(kind: str, day: _dt.date) -> Period:
    """The period of ``kind`` that contains ``day``."""
    if kind == "day":
        return Period(day, day, "day", day.isoformat())
    if kind == "week":
        iso_year, iso_week, weekday = day.isocalendar()
        start = day - _dt.timedelta(days=weekday - 1)
        return Period(start, start + _dt.timedelta(days=6), "week", f"{iso_year}-W{iso_week:02d}")
    if kind == "month":
        return Period(day.replace(day=1), _month_end(day.year, day.month), "month",
                      f"{day.year}-{day.month:02d}")
    if kind == "quarter":
        quarter = (day.month - 1) // 3 + 1
        first = 3 * quarter - 2
        return Period(_dt.date(day.year, first, 1), _month_end(day.year, first + 2), "quarter",
                      f"{day.year}-Q{quarter}")
    if kind == "year":
        return Period(_dt.date(day.year, 1, 1), _dt.date(day.year, 12, 31), "year", str(day.year))
    raise ValueError(f"unknown period kind {kind!r}; expected one of {', '.join(KINDS)}")


def parse_period(text: str) -> Period:
    """Read a period: ``2026`` (year), ``2026-Q3``, ``2026-09`` (month), ``2026-W37`` (ISO week) or
    ``2026-09-14`` (day).

    :raises ValueError: with a message naming the accepted forms.
    """
    value = text.strip()
    try:
        if match := _YEAR.match(value):
            return period_of("year", _dt.date(int(match[1]), 1, 1))
        if match := _QUARTER.match(value):
            return period_of("quarter", _dt.date(int(match[1]), 3 * int(match[2]) - 2, 1))
        if match := _MONTH.match(value):
            return period_of("month", _dt.date(int(match[1]), int(match[2]), 1))
        if match := _WEEK.match(value):
            return period_of("week", _dt.date.fromisocalendar(int(match[1]), int(match[2]), 1))
        if match := _DAY.match(value):
            return period_of("day", _dt.date(int(match[1]), int(match[2]), int(match[3])))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid period: {exc}") from None
    raise ValueError(f"{text!r} is not a period; write a year (2026), a quarter (2026-Q3), a month "
                     "(2026-09), an ISO week (2026-W37) or a day (2026-09-14)")


def periods_ending_in(kind: str, outer: Period) -> list[Period]:
    """The periods of ``kind`` whose last day falls inside ``outer``, in order.

    When ``kind`` is longer than ``outer`` (a yearly KPI in a quarterly report), the result is the one
    period of ``kind`` containing ``outer``'s last day, cut at that day when it ends later.
    """
    if KINDS.index(kind) > KINDS.index(outer.kind):
        return [period_of(kind, outer.end).cut_at(outer.end)]
    found: list[Period] = []
    period = period_of(kind, outer.end)
    while period.end >= outer.start:
        if period.end <= outer.end:
            found.append(period)
        period = period_of(kind, period.start - _dt.timedelta(days=1))
    found.reverse()
    return found
