"""Report periods: the --period syntax, and which periods of a KPI's kind a report measures."""

from __future__ import annotations

import datetime as dt

import pytest

from collectrules.kpi.periods import parse_period, period_of, periods_ending_in

D = dt.date.fromisoformat


@pytest.mark.parametrize(("text", "kind", "start", "end", "label"), [
    ("2026", "year", "2026-01-01", "2026-12-31", "2026"),
    ("2026-Q3", "quarter", "2026-07-01", "2026-09-30", "2026-Q3"),
    ("2026-q1", "quarter", "2026-01-01", "2026-03-31", "2026-Q1"),
    ("2026-09", "month", "2026-09-01", "2026-09-30", "2026-09"),
    ("2024-02", "month", "2024-02-01", "2024-02-29", "2024-02"),
    ("2026-W37", "week", "2026-09-07", "2026-09-13", "2026-W37"),
    ("2026-W01", "week", "2025-12-29", "2026-01-04", "2026-W01"),
    ("2026-09-14", "day", "2026-09-14", "2026-09-14", "2026-09-14"),
])
def test_every_period_form(text: str, kind: str, start: str, end: str, label: str) -> None:
    period = parse_period(text)
    assert (period.kind, period.start, period.end, period.to_date, str(period)) == (kind, D(start), D(end),
                                                                                     False, label)


@pytest.mark.parametrize(("text", "message"), [
    ("2026-Q5", "'2026-Q5' is not a period; write a year (2026), a quarter (2026-Q3), a month (2026-09), "
                "an ISO week (2026-W37) or a day (2026-09-14)"),
    ("2026-13", "'2026-13' is not a valid period: month must be in 1..12"),
    ("2026-W54", "'2026-W54' is not a valid period: Invalid week: 54"),
    ("2026-02-30", "'2026-02-30' is not a valid period: day is out of range for month"),
    ("Q3 2026", "'Q3 2026' is not a period; write a year (2026), a quarter (2026-Q3), a month (2026-09), "
                "an ISO week (2026-W37) or a day (2026-09-14)"),
])
def test_a_malformed_period_says_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_period(text)
    assert str(info.value) == message


def test_a_kpi_is_measured_over_each_of_its_periods_that_ends_in_the_report_period() -> None:
    q3 = parse_period("2026-Q3")
    assert [str(p) for p in periods_ending_in("month", q3)] == ["2026-07", "2026-08", "2026-09"]
    assert [str(p) for p in periods_ending_in("quarter", q3)] == ["2026-Q3"]
    # weeks belong to the period their Sunday falls in: 2026-06-29..07-05 is in Q3, 09-28..10-04 is not
    weeks = periods_ending_in("week", q3)
    assert (str(weeks[0]), str(weeks[-1]), len(weeks)) == ("2026-W27", "2026-W39", 13)
    assert len(periods_ending_in("day", q3)) == 92


def test_a_longer_kpi_period_is_measured_to_date() -> None:
    (year,) = periods_ending_in("year", parse_period("2026-Q3"))
    assert (year.start, year.end, year.to_date, str(year)) == (D("2026-01-01"), D("2026-09-30"), True,
                                                               "2026 to 2026-09-30")
    (month,) = periods_ending_in("month", parse_period("2026-W37"))
    assert (month.start, month.end, month.to_date) == (D("2026-09-01"), D("2026-09-13"), True)


def test_previous_periods_are_full_periods_of_the_same_kind() -> None:
    q3 = parse_period("2026-Q3")
    assert [str(q3.previous(n)) for n in (1, 2, 3, 4)] == ["2026-Q2", "2026-Q1", "2025-Q4", "2025-Q3"]
    (year,) = periods_ending_in("year", q3)
    assert (year.previous().start, year.previous().end) == (D("2025-01-01"), D("2025-12-31"))
    assert str(period_of("week", D("2027-01-01"))) == "2026-W53"
    assert parse_period("2026-09").opening_date == D("2026-08-31")
