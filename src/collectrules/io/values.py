"""Parsing one cell of an input data file into its runtime value.

The same function serves CSV (where every cell is text), JSON Lines (strings, numbers, booleans, lists) and
Parquet (typed columns), so it accepts both the text form and the already-typed form of each kind. Money is
exact: decimals are built from text (a float from JSON or Parquet goes through ``str`` first), never through
binary floating-point arithmetic. Every rejection is a ``ValueError`` whose message says what was expected
and what was found; the table reader adds the file, row and column.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import functools
import re
import zoneinfo
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from enum import StrEnum

__all__ = ["LIST_SEPARATOR", "ValueKind", "describe", "parse_duration", "parse_value"]


class ValueKind(StrEnum):
    """The kinds of value a column can hold; the names match the policy format's field types."""

    BOOL = "bool"
    INT = "int"
    DECIMAL = "decimal"
    STRING = "string"
    ENUM = "enum"
    DATE = "date"
    DATETIME = "datetime"
    DURATION = "duration"
    TIMEZONE = "timezone"
    LIST = "list"


#: the separator between list items in a CSV cell; ',' is taken by CSV itself
LIST_SEPARATOR = ";"

_TRUE_WORDS = frozenset({"true", "yes", "1"})
_FALSE_WORDS = frozenset({"false", "no", "0"})
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_THOUSANDS_TEXT = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_NON_FINITE_WORDS = frozenset({"nan", "snan", "inf", "infinity"})
_NON_FINITE_NOTE = " (not-a-number and infinity are not amounts)"
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# fromisoformat also takes compact forms ("20250304T0930"); data files should use the readable one
_DATETIME_PREFIX = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")
_DURATION_TEXT = re.compile(r"([0-9]+)([smhdw])")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

_EXPECTED_DATETIME = "a date-time with a time zone like 2025-03-04T09:30:00+01:00"
_EXPECTED_DURATION = "a duration like 7d, 12h, 30m, 2w or 45s"


def describe(raw: object) -> str:
    """How a found value is named in messages: text quoted, numbers and booleans as written."""
    if isinstance(raw, str):
        return repr(raw if len(raw) <= 60 else raw[:60] + "…")
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float | Decimal):
        return str(raw)
    if isinstance(raw, _dt.datetime):
        return f"the date-time {raw.isoformat()}"
    if isinstance(raw, _dt.date):
        return f"the date {raw.isoformat()}"
    if isinstance(raw, _dt.timedelta):
        return f"the duration {raw}"
    if isinstance(raw, list | tuple):
        return "a list"
    if isinstance(raw, dict):
        return "an object"
    if isinstance(raw, bytes | bytearray):
        return "binary data"
    return f"a value of type {type(raw).__name__}"


def _mismatch(expected: str, raw: object, note: str = "") -> ValueError:
    return ValueError(f"expected {expected}, got {describe(raw)}{note}")


def _parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    # JSON and Parquet sources may carry flags as 0/1 integers
    if isinstance(raw, int) and raw in (0, 1):
        return raw == 1
    if isinstance(raw, str):
        word = raw.lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _mismatch("true or false (also yes/no, 1/0)", raw)


def _parse_int(raw: object) -> int:
    # bool is a subclass of int, and True is not a count
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and _INT_TEXT.fullmatch(raw):
        return int(raw)
    # typed sources (a JSON number, a Parquet double column) may hold whole numbers as 42.0
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, Decimal) and raw.is_finite() and raw == raw.to_integral_value():
        return int(raw)
    raise _mismatch("a whole number", raw)


def _parse_decimal(raw: object) -> Decimal:
    if isinstance(raw, bool):
        raise _mismatch("a decimal number", raw)
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, float):
        # str() gives the shortest text that round-trips, which is what the writer meant
        value = Decimal(str(raw))
    elif isinstance(raw, str):
        if not _DECIMAL_TEXT.fullmatch(raw):
            if raw.lstrip("+-").lower() in _NON_FINITE_WORDS:
                note = _NON_FINITE_NOTE
            elif _THOUSANDS_TEXT.fullmatch(raw):
                note = f" (remove the thousands separators: '{raw.replace(',', '')}')"
            elif "," in raw:
                note = " (use '.' as the decimal point)"
            else:
                note = ""
            raise _mismatch("a decimal number", raw, note)
        try:
            value = Decimal(raw)
        except InvalidOperation:  # the pattern admits only valid literals; kept as a guard
            raise _mismatch("a decimal number", raw) from None
    else:
        raise _mismatch("a decimal number", raw)
    if not value.is_finite():
        raise _mismatch("a decimal number", raw, _NON_FINITE_NOTE)
    return value


def _parse_string(raw: object) -> str:
    if isinstance(raw, str):
        return raw
    # identifiers such as account ids or phone numbers often arrive as JSON integers; their text is exact.
    # floats are refused: 5551234567.0 is not the text anyone meant
    if isinstance(raw, int | Decimal) and not isinstance(raw, bool):
        return str(raw)
    raise _mismatch("text", raw)


def _close_match(word: str, candidates: Sequence[str], cutoff: float = 0.6) -> str | None:
    folded = {candidate.lower(): candidate for candidate in candidates}
    if word.lower() in folded:
        return folded[word.lower()]
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff)
    return matches[0] if matches else None


def _parse_enum(raw: object, enum_values: tuple[str, ...]) -> str:
    if isinstance(raw, str) and raw in enum_values:
        return raw
    allowed = ", ".join(repr(value) for value in enum_values)
    suggestion = _close_match(raw, enum_values) if isinstance(raw, str) else None
    note = f"; did you mean {suggestion!r}?" if suggestion else ""
    raise _mismatch(f"one of {allowed}", raw, note)


def _parse_date(raw: object) -> _dt.date:
    if isinstance(raw, _dt.datetime):
        raise _mismatch("a date like 2025-03-04", raw)
    if isinstance(raw, _dt.date):
        return raw
    if isinstance(raw, str) and _DATE_TEXT.fullmatch(raw):
        try:
            return _dt.date.fromisoformat(raw)
        except ValueError as exc:
            raise _mismatch("a date like 2025-03-04", raw, f" ({exc})") from None
    raise _mismatch("a date like 2025-03-04", raw)


def _parse_datetime(raw: object) -> _dt.datetime:
    if isinstance(raw, _dt.datetime):
        value = raw
    elif isinstance(raw, str) and _DATETIME_PREFIX.match(raw):
        try:
            value = _dt.datetime.fromisoformat(raw)
        except ValueError as exc:
            raise _mismatch(_EXPECTED_DATETIME, raw, f" ({exc})") from None
    else:
        raise _mismatch(_EXPECTED_DATETIME, raw)
    if value.tzinfo is None or value.utcoffset() is None:
        # guessing the zone would shift contact times by hours, which matters for calling-hour rules
        raise _mismatch(_EXPECTED_DATETIME, raw,
                        ", which has no time zone (add an offset such as '+01:00', or 'Z' for UTC)")
    return value


def parse_duration(text: str) -> _dt.timedelta:
    """Parse a duration written as a whole number and a unit: ``45s``, ``30m``, ``12h``, ``7d``, ``2w``.

    :param text: the duration text; surrounding whitespace is ignored.
    :raises ValueError: when the text is not of that form or too large to represent.
    """
    match = _DURATION_TEXT.fullmatch(text.strip())
    if match is None:
        raise _mismatch(_EXPECTED_DURATION, text)
    amount, unit = match.groups()
    try:
        return _dt.timedelta(**{_DURATION_UNITS[unit]: int(amount)})
    except OverflowError:
        raise _mismatch(_EXPECTED_DURATION, text, " (too large)") from None


def _parse_duration_value(raw: object) -> _dt.timedelta:
    if isinstance(raw, _dt.timedelta):
        return raw
    if isinstance(raw, str):
        return parse_duration(raw)
    raise _mismatch(_EXPECTED_DURATION, raw)


@functools.cache
def _known_zones() -> tuple[str, ...]:
    # scanning the zone database is only needed to suggest a name after a failure
    return tuple(sorted(zoneinfo.available_timezones()))


def _parse_timezone(raw: object) -> str:
    if not isinstance(raw, str):
        raise _mismatch("an IANA time zone name like 'Europe/London'", raw)
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        suggestion = _close_match(raw, _known_zones(), cutoff=0.8)
        note = f"; did you mean {suggestion!r}?" if suggestion else ""
        raise _mismatch("an IANA time zone name like 'Europe/London'", raw, note) from None
    return raw


_SCALAR_PARSERS = {
    ValueKind.BOOL: _parse_bool,
    ValueKind.INT: _parse_int,
    ValueKind.DECIMAL: _parse_decimal,
    ValueKind.STRING: _parse_string,
    ValueKind.DATE: _parse_date,
    ValueKind.DATETIME: _parse_datetime,
    ValueKind.DURATION: _parse_duration_value,
    ValueKind.TIMEZONE: _parse_timezone,
}


def _parse_list(raw: object, item_kind: ValueKind, enum_values: tuple[str, ...]) -> tuple[object, ...]:
    if item_kind is ValueKind.LIST:
        raise TypeError("list items cannot themselves be lists")
    items: Sequence[object]
    if isinstance(raw, str):
        # CSV form: "America/New_York;America/Chicago"; blank items (a trailing ';') carry nothing
        items = [part if part.strip() else None for part in raw.split(LIST_SEPARATOR)]
        from_text = True
    elif isinstance(raw, list | tuple):
        items = raw
        from_text = False
    else:
        raise _mismatch(f"a list ('{LIST_SEPARATOR}'-separated in CSV)", raw)
    values: list[object] = []
    for position, item in enumerate(items, start=1):
        try:
            value = parse_value(item, item_kind, enum_values=enum_values)
        except ValueError as exc:
            raise ValueError(f"item {position}: {exc}") from None
        if value is None:
            if from_text:
                continue
            raise ValueError(f"item {position}: expected a value, got null")
        values.append(value)
    return tuple(values)


def parse_value(raw: object, kind: ValueKind, *, enum_values: tuple[str, ...] = (),
                item_kind: ValueKind | None = None) -> object:
    """Turn one cell into its runtime value.

    Text is stripped of surrounding whitespace first. ``None`` and empty text give ``None``: whether a null
    is allowed is the caller's decision.

    :param raw: the cell as the file gave it: text from CSV, a JSON value, or a Python value from Parquet.
    :param kind: what the column holds.
    :param enum_values: the allowed values of an ``ENUM`` column, or of the items of a ``LIST`` of enums.
    :param item_kind: the kind of a ``LIST`` column's items (text when not given). In CSV a list is one
        ``;``-separated cell; in JSON and Parquet it is a real list.
    :returns: ``bool``, ``int``, ``Decimal``, ``str`` (string, enum and time zone name), ``datetime.date``,
        an aware ``datetime.datetime``, ``datetime.timedelta``, a ``tuple`` of item values, or ``None``.
    :raises ValueError: when the cell does not hold a value of that kind; the message says what was
        expected and what was found.
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if not raw:
            return None
    if kind is ValueKind.ENUM:
        return _parse_enum(raw, enum_values)
    if kind is ValueKind.LIST:
        return _parse_list(raw, item_kind or ValueKind.STRING, enum_values)
    return _SCALAR_PARSERS[kind](raw)
