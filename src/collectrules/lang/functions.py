"""The function registry: every function an expression may call, with a typed signature.

The type checker uses a function's parameters to check arity and argument types at load time, and its
``returns`` to type the call. Evaluation calls ``impl`` with already-evaluated arguments; a function marked
``uses_context`` also receives the evaluation context (as-of time, the account's history and holds) first.
Unless ``null_safe`` is set, a null argument makes the result null without calling ``impl``.
Plugins add functions through the ``collectrules_register_functions`` hook with the same :class:`Function`;
the built-in ones are listed in docs/expression-language.md.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from . import types as T
from .types import Type


class EvalContext(Protocol):
    """What context-using functions may ask of the account being evaluated."""

    as_of: _dt.datetime
    today: _dt.date

    def attempts(self, channel: str, window: _dt.timedelta) -> int: ...
    def last_contact(self, channel: str) -> _dt.datetime | None: ...
    def has_hold(self, hold_type: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: which argument types it accepts, described for error messages."""

    description: str
    accepts: Callable[[Type], bool]
    #: the argument must be a literal (for example a channel name), so it can be checked at load time
    literal: bool = False


@dataclass(frozen=True)
class Function:
    """A function callable from expressions.

    :param name: the name used in expressions
    :param params: positional parameters; with ``variadic`` the last one repeats
    :param returns: the result type, or a function of the argument types
    :param impl: the implementation, called with evaluated arguments (and the context first if ``uses_context``)
    :param doc: one line shown in the docs and in ``collectrules functions``
    """

    name: str
    params: tuple[Param, ...]
    returns: Type | Callable[[Sequence[Type]], Type]
    impl: Callable[..., Any]
    doc: str
    variadic: bool = False
    min_args: int | None = None
    uses_context: bool = False
    null_safe: bool = False
    #: checks how the argument types relate (e.g. contains' item against its container); returns a message
    check_args: Callable[[Sequence[Type]], str | None] | None = None
    #: who registered it ("builtin" or a plugin name), filled in by the registry
    origin: str = field(default="builtin", compare=False)

    def arity(self) -> tuple[int, int | None]:
        if self.variadic:
            return (self.min_args if self.min_args is not None else len(self.params), None)
        required = self.min_args if self.min_args is not None else len(self.params)
        return (required, len(self.params))

    def param_for(self, index: int) -> Param:
        if index < len(self.params):
            return self.params[index]
        return self.params[-1]

    def result_type(self, args: Sequence[Type]) -> Type:
        return self.returns(args) if callable(self.returns) else self.returns


NUMBER = Param("a number", lambda t: t.is_numeric or t.kind in ("null", "any"))
TEXT = Param("a string", lambda t: t.is_textual or t.kind in ("null", "any"))
DATE_LIKE = Param("a date or datetime", lambda t: t.kind in ("date", "datetime", "null", "any"))
DATE_ONLY = Param("a date", lambda t: t.kind in ("date", "null"))
INTEGER = Param("an integer", lambda t: t.kind in ("int", "null"))
DURATION_LIT = Param("a duration such as 7d", lambda t: t.kind == "duration", literal=True)
ANYTHING = Param("any value", lambda t: True)
CHANNEL = Param("a channel name in quotes, such as \"phone\"", lambda t: t.kind == "string", literal=True)
HOLD_TYPE = Param("a hold type in quotes, such as \"dispute\"", lambda t: t.kind == "string", literal=True)
CONTAINER = Param("a string or a list", lambda t: t.kind in ("string", "enum", "list", "null"))
CALENDAR = Param("a holiday calendar code in quotes, such as \"US\"", lambda t: t.kind == "string",
                 literal=True)
#: add_business_days refuses to walk further than this (about 400 years), so no input can make it run long
MAX_BUSINESS_DAYS = 100_000


def _numeric_result(args: Sequence[Type]) -> Type:
    return T.INT if all(a.kind == "int" for a in args) else T.DECIMAL


def _same_as_first(args: Sequence[Type]) -> Type:
    return args[0] if args else T.ANY


def _coalesce_result(args: Sequence[Type]) -> Type:
    result: Type = T.NULL
    for arg in args:
        unified = T.unify(result, arg)
        result = unified if unified is not None else T.ANY
    return result


def _to_date(value: _dt.date | _dt.datetime, zone: _dt.tzinfo | None = None) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return (value.astimezone(zone) if zone is not None else value).date()
    return value


def _days_since(ctx: EvalContext, value: _dt.date | _dt.datetime) -> int:
    # an instant becomes a date in the debtor's zone, like "today"
    return (ctx.today - _to_date(value, getattr(ctx, "primary_zone", None))).days


@functools.lru_cache(maxsize=64)
def _calendar(code: str) -> Any:
    # imported here: the holidays package is only loaded when a policy counts business days
    from ..engine.timecalc import HolidayCalendar

    return HolidayCalendar(code)


def _is_business_day(day: _dt.date, calendar: Any) -> bool:
    return day.weekday() < 5 and not calendar.is_holiday(day)


def _business_days_since(ctx: EvalContext, value: _dt.date | _dt.datetime, code: str) -> int:
    # business days after the date up to and including today: Monday to Friday, the calendar's holidays
    # (observed days included) excluded; negative when the date is still to come
    calendar = _calendar(code)
    start, end = _to_date(value, getattr(ctx, "primary_zone", None)), ctx.today
    sign = 1
    if end < start:
        start, end, sign = end, start, -1
    count = 0
    day = start + _dt.timedelta(days=1)
    while day <= end:
        count += _is_business_day(day, calendar)
        day += _dt.timedelta(days=1)
    return sign * count


def _add_business_days(value: _dt.date | _dt.datetime, days: int, code: str) -> _dt.date:
    if abs(days) > MAX_BUSINESS_DAYS:
        raise ValueError(f"add_business_days() moves at most {MAX_BUSINESS_DAYS:,} business days, got {days}")
    calendar = _calendar(code)
    day = _to_date(value)
    step = _dt.timedelta(days=1 if days >= 0 else -1)
    for _ in range(abs(days)):
        day += step
        while not _is_business_day(day, calendar):
            day += step
    return day


def _days_between(a: _dt.date | _dt.datetime, b: _dt.date | _dt.datetime) -> int:
    return (_to_date(b) - _to_date(a)).days


def _round(value: int | Decimal, digits: int = 0) -> int | Decimal:
    # Money rounds half up (away from zero for .5), not banker's rounding; documented in the language guide.
    if not -18 <= digits <= 28:
        raise ValueError(f"round() takes between -18 and 28 places, got {digits}")
    if isinstance(value, int):
        if digits >= 0:
            return value
        return int(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))
    rounded = value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    # negative places round to tens, hundreds …; keep the result in plain notation (20, not 2E+1)
    return rounded.quantize(Decimal(1)) if digits < 0 else rounded


def _contains_args(args: Sequence[Type]) -> str | None:
    container, item = args
    if item.kind in ("null", "any") or container.kind in ("null", "any"):
        return None
    if container.kind in ("string", "enum"):
        return None if item.is_textual else f"cannot look for {_article(item)} in a string"
    if container.kind == "list" and container.item is not None and container.item.kind != "any":
        if not T.comparable(container.item, item, ordered=False):
            return f"cannot look for {_article(item)} in {_article(container)}"
    return None


def _article(t: Type) -> str:
    text = str(t)
    return ("an " if text[:1] in "aeiou" else "a ") + text


def _floor(value: int | Decimal) -> int:
    return value if isinstance(value, int) else int(value.to_integral_value(rounding=ROUND_FLOOR))


def _ceil(value: int | Decimal) -> int:
    return value if isinstance(value, int) else int(value.to_integral_value(rounding=ROUND_CEILING))


def _contains(container: str | Sequence[Any], item: Any) -> bool:
    return item in container


def _coalesce(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _min(*values: int | Decimal) -> int | Decimal | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _max(*values: int | Decimal) -> int | Decimal | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _len(value: str | Sequence[Any]) -> int:
    return len(value)


BUILTIN_FUNCTIONS: tuple[Function, ...] = (
    Function("days_since", (DATE_LIKE,), T.INT, _days_since, uses_context=True,
             doc="Whole days from a date to today (the as-of date in the debtor's time zone)."),
    Function("days_between", (DATE_LIKE, DATE_LIKE), T.INT, _days_between,
             doc="Whole days from the first date to the second (negative when the second is earlier)."),
    Function("today", (), T.DATE, lambda ctx: ctx.today, uses_context=True,
             doc="The as-of date in the debtor's time zone."),
    Function("now", (), T.DATETIME, lambda ctx: ctx.as_of, uses_context=True,
             doc="The as-of instant."),
    Function("min", (NUMBER,), _numeric_result, _min, variadic=True, min_args=2, null_safe=True,
             doc="The smallest of its arguments, ignoring nulls."),
    Function("max", (NUMBER,), _numeric_result, _max, variadic=True, min_args=2, null_safe=True,
             doc="The largest of its arguments, ignoring nulls."),
    Function("abs", (NUMBER,), _same_as_first, abs, doc="Absolute value."),
    Function("round", (NUMBER, INTEGER), _same_as_first, _round, min_args=1,
             doc="Round half up to the given number of decimal places (default 0)."),
    Function("floor", (NUMBER,), T.INT, _floor, doc="Largest integer not above the number."),
    Function("ceil", (NUMBER,), T.INT, _ceil, doc="Smallest integer not below the number."),
    Function("lower", (TEXT,), T.STRING, lambda s: s.lower(), doc="Lower-case text."),
    Function("upper", (TEXT,), T.STRING, lambda s: s.upper(), doc="Upper-case text."),
    Function("len", (CONTAINER,), T.INT, _len, doc="Length of a string or a list."),
    Function("contains", (CONTAINER, ANYTHING), T.BOOL, _contains, check_args=_contains_args,
             doc="Whether a string contains a substring, or a list contains an item."),
    Function("starts_with", (TEXT, TEXT), T.BOOL, lambda s, p: s.startswith(p),
             doc="Whether the text starts with the prefix."),
    Function("ends_with", (TEXT, TEXT), T.BOOL, lambda s, p: s.endswith(p),
             doc="Whether the text ends with the suffix."),
    Function("coalesce", (ANYTHING,), _coalesce_result, _coalesce, variadic=True, min_args=2, null_safe=True,
             doc="The first argument that is not null."),
    Function("attempts", (CHANNEL, DURATION_LIT), T.INT,
             lambda ctx, channel, window: ctx.attempts(channel, window), uses_context=True, null_safe=True,
             doc="Outbound attempts on a channel (\"any\" for all) within a window: 7d counts calendar days "
                 "in the debtor's zone including today, 12h a sliding window."),
    Function("last_contact", (CHANNEL,), T.DATETIME,
             lambda ctx, channel: ctx.last_contact(channel), uses_context=True, null_safe=True,
             doc="When the last outbound attempt on a channel (\"any\" for all) was made; null if never."),
    Function("business_days_since", (DATE_LIKE, CALENDAR), T.INT, _business_days_since, uses_context=True,
             doc="Business days (Monday to Friday, not a public holiday of the calendar) after a date, up to "
                 "and including today; negative for a date still to come."),
    Function("add_business_days", (DATE_LIKE, INTEGER, CALENDAR), T.DATE, _add_business_days,
             doc="The date that many business days (Monday to Friday, not a public holiday of the calendar) "
                 "after a date; before it for a negative number."),
    Function("has_hold", (HOLD_TYPE,), T.BOOL,
             lambda ctx, hold: ctx.has_hold(hold), uses_context=True, null_safe=True,
             doc="Whether a hold of this type (from the holds file) is active at the as-of date."),
)


class FunctionRegistry:
    """Functions by name; a duplicate name is an error naming both origins."""

    def __init__(self, functions: Sequence[Function] = BUILTIN_FUNCTIONS) -> None:
        self._functions: dict[str, Function] = {}
        for function in functions:
            self.add(function)

    def add(self, function: Function, origin: str | None = None) -> None:
        if origin is not None:
            object.__setattr__(function, "origin", origin)
        existing = self._functions.get(function.name)
        if existing is not None:
            raise ValueError(f"function {function.name!r} is registered twice: by {existing.origin} "
                             f"and by {function.origin}")
        if not function.name.isidentifier():
            raise ValueError(f"function name {function.name!r} is not an identifier")
        self._functions[function.name] = function

    def get(self, name: str) -> Function | None:
        return self._functions.get(name)

    def names(self) -> list[str]:
        return sorted(self._functions)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._functions.values())

