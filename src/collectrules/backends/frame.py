"""Frame backend: compiles a checked expression into Polars expressions over a whole portfolio at once.

:func:`compile_expr_frame` turns the same checked AST the rows backend runs (see
:mod:`collectrules.backends.rows`) into ``pl.Expr`` values. Nothing is evaluated per row in Python: every
node becomes vectorised Polars work, and the semantics are the rows backend's, operation for operation.
Where Polars' defaults disagree with Python, this module does the Python thing explicitly.

Frame backend
=============

Representation of values (one frame column per name):

=============== ===================================================================================
``bool``        ``Boolean``
``int``         ``Int64``; a result outside the 64-bit range makes the run unsupported (see below)
``decimal``     ``Struct{c: Int128, e: Int32}``: the exact value ``c · 10^e`` (see *Decimals*)
``string``      ``String`` (also ``enum`` and ``timezone``)
``date``        ``Date``
``datetime``    ``Struct{at: Datetime(us, UTC), off: Int32}``: the instant and the UTC offset (seconds) it
                was written with, because ``days_since``/``days_between`` take the date *in that offset*,
                as Python's ``datetime.date()`` does
``duration``    ``Int64`` microseconds (Python's ``timedelta`` resolution)
``list[T]``     ``List`` of the item representation, except ``list[decimal]`` whose items are canonical
                keys ``"<coefficient>|<exponent>"`` (trailing zeros stripped) so that ``1.0`` equals ``1``,
                and ``list[datetime]`` whose items are the instants
=============== ===================================================================================

Decimals. Polars' own ``Decimal`` type keeps one scale per column, rounds products and quotients to that
scale and rounds half to even, so it cannot reproduce Python's :class:`decimal.Decimal`. The frame backend
therefore emulates Python's default decimal context exactly: a decimal is a coefficient and an exponent;
``+ - *``, unary minus and ``abs`` compute the exact result and round it to 28 significant digits half to
even, like ``decimal.getcontext()`` (``prec=28, ROUND_HALF_EVEN``); ``/`` is correctly rounded to 28
significant digits (a long division in 10-digit steps in ``Int128``); comparisons are exact. The only values
outside this emulation are coefficients of 35 or more digits read from data or written as literals, and
divisors of more than 28 significant digits: a row holding one makes the run unsupported.

Rounding. ``round(x, n)`` rounds half *up* (away from zero: 2.5 → 3, -2.5 → -3) exactly like the rows
backend's ``quantize(..., ROUND_HALF_UP)``, never Polars' half-to-even ``round``; places outside -18..28 and
a result needing more than 28 digits are the same runtime errors, with the same messages. ``floor`` and
``ceil`` go towards minus and plus infinity (``Int128`` floor division, which rounds like Python's ``//``).

Integers. The language has no integer division and no modulo (``/`` always yields a decimal), so the sign
rules of integer ``//`` and ``%`` never reach a policy. Integer arithmetic is done in ``Int128`` and checked
against the 64-bit range instead of Polars' silent wrap-around.

Nulls. Comparisons, ``in``, ``not in`` and ``between`` with a null operand are false (Polars gives null:
``fill_null(False)``); arithmetic and functions propagate null; ``and``/``or``/``not`` are three-valued,
which Polars' Kleene logic already is; ``min``/``max``/``coalesce`` skip nulls. Polars compares lists with
nulls inside element-wise with ``null == null``, as Python's tuples do.

Strings. Polars compares strings by UTF-8 bytes, which is the code-point order Python uses. ``lower`` and
``upper`` use full Unicode case mapping in both; they agree for every character Python's Unicode database
(14.0 for Python 3.11) knows.

Errors. A node that raises in the rows backend (division by zero, ``round`` overflow, a date out of range,
``contains`` of a non-string in a string) yields a per-row error flag and the same message, with the rows
backend's evaluation order respected: ``and``/``or`` short-circuit, ``if`` evaluates one branch, a comparison
does not evaluate its right side when the left is null.

Unsupported. A plugin's function has only a Python implementation: compiling a call to it raises
:class:`FrameUnsupported`, and so does a value shape the emulation does not cover. Data-dependent limits
(an ``int`` beyond 64 bits, a duration beyond ±2^63 µs, a decimal coefficient of 35 digits or more) are
flagged per row in :attr:`FrameValue.unsup`; the caller raises :class:`FrameUnsupported` when any row is
flagged, so the frame backend never returns a decision that differs from the rows backend: it refuses, and
the caller falls back to the rows backend.

Columns read by a compiled expression: each field or derived name is the column of that name; ``score.NAME``
is ``#score:NAME``; ``today()`` is ``#today`` (``Date``, the as-of date in the debtor's primary zone) and
``#primary`` names that zone (``days_since`` of a datetime takes its date there); ``now()`` is ``#as_of``
(``Datetime(us, UTC)``); ``attempts(ch, w)`` is ``#attempts:ch:<seconds of w>:<d or s>`` (``d`` for a
window written in days or weeks, counted in calendar days), ``last_contact(ch)`` is ``#last:ch`` (a datetime
struct) and ``has_hold(t)`` is ``#hold:t``, which the caller pre-joins from the history and holds (see
:attr:`FrameCompiled.needs`). ``business_days_since`` and ``add_business_days`` read a table of the
calendar's business days built, when the plan is applied, for the dates the frame holds.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import polars as pl

from ..lang import ast
from ..lang.checker import TypedExpr
from ..lang.functions import BUILTIN_FUNCTIONS, Function, FunctionRegistry
from ..lang.types import Type

__all__ = [
    "DATE_MAX_DAYS",
    "DATE_MIN_DAYS",
    "FrameCompiled",
    "FrameUnsupported",
    "FrameValue",
    "Plan",
    "compile_expr_frame",
    "compile_frame",
    "dec_key",
    "dec_to_text",
    "decimal_parts",
    "pack",
]

I128 = pl.Int128
I64 = pl.Int64
I32 = pl.Int32
UTC_US = pl.Datetime("us", "UTC")

#: significant digits of Python's default decimal context
PREC = 28
#: coefficients read from data or literals must stay below this (see the module notes)
COEF_LIMIT = 10**35
_POW10 = pl.Series("pow10", [10**k for k in range(39)], dtype=I128)
_POW_KEYS = list(range(39))
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
DATE_MIN_DAYS = (_dt.date(1, 1, 1) - _dt.date(1970, 1, 1)).days
DATE_MAX_DAYS = (_dt.date(9999, 12, 31) - _dt.date(1970, 1, 1)).days
_WALL_MIN_US = DATE_MIN_DAYS * 86_400_000_000
_WALL_MAX_US = (DATE_MAX_DAYS + 1) * 86_400_000_000 - 1
_DAY_US = 86_400_000_000
_SECOND_US = 1_000_000
#: below this many seconds a float's ``int(td.total_seconds())`` truncates exactly (duration * decimal)
_EXACT_SECONDS = 9_000_000_000
_OUT_OF_RANGE = "arithmetic failed: date value out of range"
#: add_business_days' limit (lang.functions.MAX_BUSINESS_DAYS)
_MAX_BUSINESS_DAYS = 100_000
_ROUND_FAILED = "round() failed: [<class 'decimal.InvalidOperation'>]"


class FrameUnsupported(Exception):
    """The frame backend cannot give results identical to the rows backend here; use the rows backend."""


# -------------------------------------------------------------------------------------------------------
# plan: intermediate columns


@dataclass(frozen=True)
class _LocalDate:
    """A plan entry: the local date of an instant in each row's own time zone (a zone column)."""

    instant: pl.Expr
    zone_column: str


@dataclass(frozen=True)
class _BusinessDays:
    """A plan entry: business days since a date (``since``) or a date moved by business days (``add``).

    Both read a table of the calendar's business days, built for the range of dates the frame needs when
    the plan is applied (holidays come from the ``holidays`` package, once per calendar and year).
    """

    kind: str
    start: pl.Expr
    other: pl.Expr
    code: str


class Plan:
    """Intermediate columns a compiled expression needs, in stages (``with_columns`` calls).

    Binding a sub-expression to a column keeps shared sub-expressions from being copied into every place
    that uses them (a long division reuses each remainder twice per step). With ``inline=True`` nothing is
    bound and everything stays one expression. A local date in each row's own zone cannot be one Polars
    expression (a conversion takes one zone), so such entries are computed per zone when the plan is applied.
    """

    def __init__(self, *, inline: bool = False, prefix: str = "#t") -> None:
        self.inline = inline
        self.prefix = prefix
        self.stages: list[dict[str, pl.Expr | _LocalDate]] = []
        self._count = 0

    def _slot(self, entry: pl.Expr | _LocalDate, level: int) -> tuple[pl.Expr, int]:
        while len(self.stages) <= level:
            self.stages.append({})
        self._count += 1
        name = f"{self.prefix}{self._count}"
        self.stages[level][name] = entry
        return pl.col(name), level + 1

    def bind(self, expr: pl.Expr, level: int) -> tuple[pl.Expr, int]:
        if self.inline:
            return expr, level
        return self._slot(expr, level)

    def local_date(self, instant: pl.Expr, level: int, zone_column: str = "#primary") -> tuple[pl.Expr, int]:
        """The date an instant shows in the zone named by each row's ``zone_column``."""
        if self.inline:
            raise FrameUnsupported("a local date in the debtor's zone needs a plan of intermediate columns")
        return self._slot(_LocalDate(instant, zone_column), level)

    def business_days(
        self, kind: str, start: pl.Expr, other: pl.Expr, code: str, level: int
    ) -> tuple[pl.Expr, int]:
        """``since``: business days after ``start`` up to ``other`` (a date); ``add``: ``start`` moved by
        ``other`` business days."""
        if self.inline:
            raise FrameUnsupported("business days need a plan of intermediate columns")
        return self._slot(_BusinessDays(kind, start, other, code), level)

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        for stage in self.stages:
            plain = {name: entry for name, entry in stage.items() if isinstance(entry, pl.Expr)}
            if plain:
                frame = frame.with_columns(**plain)
            for name, entry in stage.items():
                if isinstance(entry, _LocalDate):
                    frame = frame.with_columns(entry.instant.cast(UTC_US).alias(f"{name}#at"))
                    frame = per_zone(
                        frame,
                        entry.zone_column,
                        lambda zone, n=name: {n: pl.col(f"{n}#at").dt.convert_time_zone(zone).dt.date()},
                    ).drop(f"{name}#at")
                elif isinstance(entry, _BusinessDays):
                    frame = _apply_business_days(frame, name, entry)
        return frame

    def columns(self) -> list[str]:
        return [name for stage in self.stages for name in stage]


# -------------------------------------------------------------------------------------------------------
# values


@dataclass(frozen=True)
class FrameValue:
    """A compiled node: its kind and the Polars expressions for its value, errors and domain checks.

    ``main`` is the value (for a decimal the coefficient, for a datetime the instant); ``aux`` the decimal
    exponent or the datetime's offset in seconds. ``err`` is true where the rows backend raises, ``msg``
    the message it raises with; ``unsup`` is true where the value leaves what the frame backend emulates.
    ``level`` is the first plan stage at which every column the expressions read exists.
    """

    kind: str
    main: pl.Expr
    aux: pl.Expr | None = None
    item: str | None = None
    err: pl.Expr | None = None
    msg: pl.Expr | None = None
    unsup: pl.Expr | None = None
    level: int = 0

    def is_null(self) -> pl.Expr:
        return self.main.is_null()


def per_zone(
    frame: pl.DataFrame, zone_column: str, make: Callable[[str], dict[str, pl.Expr]]
) -> pl.DataFrame:
    """Add the columns ``make(zone)`` returns, computed on each zone's rows (their dtypes must not depend on
    the zone); a missing zone means UTC. Rows keep their order."""
    if frame.height == 0:
        return frame.with_columns(**make("UTC")).clear()
    frame = frame.with_row_index("#pz")
    parts = []
    for (zone,), part in frame.partition_by(zone_column, as_dict=True, maintain_order=True).items():
        parts.append(part.with_columns(**make(zone or "UTC")))
    return pl.concat(parts, how="vertical").sort("#pz").drop("#pz")


def _or(a: pl.Expr | None, b: pl.Expr | None) -> pl.Expr | None:
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def _level(*values: FrameValue | None) -> int:
    return max((v.level for v in values if v is not None), default=0)


def _unsup(*values: FrameValue | None, extra: pl.Expr | None = None) -> pl.Expr | None:
    result = extra
    for value in values:
        if value is not None:
            result = _or(result, value.unsup)
    return result


def _errors(
    steps: Sequence[tuple[pl.Expr | None, FrameValue | None]], own: Sequence[tuple[pl.Expr, pl.Expr]] = ()
) -> tuple[pl.Expr | None, pl.Expr | None]:
    """Combine the errors of sub-expressions evaluated in order, each under a gate, then the node's own.

    ``steps`` are ``(gate, value)``: the value is evaluated only where ``gate`` is true (``None`` = always).
    ``own`` are ``(condition, message)`` pairs checked after every step. The first error met in evaluation
    order gives the message, as the rows backend stops at the first exception.
    """
    conditions: list[tuple[pl.Expr, pl.Expr]] = []
    for gate, value in steps:
        if value is None or value.err is None:
            continue
        condition = value.err if gate is None else (gate.fill_null(False) & value.err)
        conditions.append((condition, value.msg if value.msg is not None else pl.lit("", pl.String)))
    conditions.extend(own)
    if not conditions:
        return None, None
    err = conditions[0][0]
    for condition, _ in conditions[1:]:
        err = err | condition
    chain: Any = pl.when(conditions[0][0]).then(conditions[0][1])
    for condition, message in conditions[1:]:
        chain = chain.when(condition).then(message)
    return err.fill_null(False), chain.otherwise(pl.lit(None, pl.String))


def pack(value: FrameValue) -> pl.Expr:
    """The value as one column expression (decimals and datetimes as their structs)."""
    if value.kind == "decimal":
        assert value.aux is not None
        return pl.when(value.main.is_not_null()).then(
            pl.struct(value.main.cast(I128).alias("c"), value.aux.cast(I32).alias("e"))
        )
    if value.kind == "datetime":
        assert value.aux is not None
        return pl.when(value.main.is_not_null()).then(
            pl.struct(value.main.cast(UTC_US).alias("at"), value.aux.cast(I32).alias("off"))
        )
    return value.main


def column_value(name: str, vtype: Type, level: int = 0) -> FrameValue:
    """The value of a column holding ``vtype`` in the frame representation."""
    kind = _kind_of(vtype)
    column = pl.col(name)
    if kind == "decimal":
        return FrameValue("decimal", column.struct.field("c"), column.struct.field("e"), level=level)
    if kind == "datetime":
        return FrameValue("datetime", column.struct.field("at"), column.struct.field("off"), level=level)
    if kind == "list":
        return FrameValue("list", column, item=_kind_of(vtype.item) if vtype.item else "any", level=level)
    return FrameValue(kind, column, level=level)


def _kind_of(vtype: Type | None) -> str:
    if vtype is None:
        return "any"
    if vtype.kind in ("enum", "timezone", "string"):
        return "string"
    return vtype.kind


def frame_dtype(vtype: Type) -> pl.DataType:
    """The Polars dtype of a column holding ``vtype`` in the frame representation."""
    kind = _kind_of(vtype)
    if kind == "list":
        return pl.List(_item_dtype(_kind_of(vtype.item)))
    return _scalar_dtype(kind)


def _scalar_dtype(kind: str) -> pl.DataType:
    return {
        "bool": pl.Boolean(),
        "int": pl.Int64(),
        "string": pl.String(),
        "date": pl.Date(),
        "duration": pl.Int64(),
        "decimal": pl.Struct({"c": I128, "e": I32}),
        "datetime": pl.Struct({"at": UTC_US, "off": I32}),
        "null": pl.Null(),
    }[kind]


def _item_dtype(kind: str) -> pl.DataType:
    return {
        "bool": pl.Boolean(),
        "int": pl.Int64(),
        "string": pl.String(),
        "date": pl.Date(),
        "duration": pl.Int64(),
        "decimal": pl.String(),
        "datetime": UTC_US,
    }.get(kind, pl.Null())


def _null_of(kind: str, item: str | None = None, level: int = 0) -> FrameValue:
    if kind == "decimal":
        return FrameValue("decimal", pl.lit(None, I128), pl.lit(None, I32), level=level)
    if kind == "datetime":
        return FrameValue("datetime", pl.lit(None, UTC_US), pl.lit(None, I32), level=level)
    if kind == "list":
        return FrameValue("list", pl.lit(None, pl.List(_item_dtype(item or "any"))), item=item, level=level)
    if kind in ("null", "any"):
        return FrameValue("null", pl.lit(None), level=level)
    return FrameValue(kind, pl.lit(None, _scalar_dtype(kind)), level=level)


# -------------------------------------------------------------------------------------------------------
# exact decimal arithmetic (Python's default context: 28 digits, half even)


def pow10(exponent: pl.Expr) -> pl.Expr:
    """10**k as Int128 for k in 0..38 (clipped)."""
    return exponent.cast(I32).clip(0, 38).replace_strict(_POW_KEYS, _POW10, return_dtype=I128)


def ndigits(magnitude: pl.Expr) -> pl.Expr:
    """Decimal digits of a non-negative Int128 below 10**38 (0 has 1 digit)."""
    estimate = (magnitude.cast(pl.Float64).clip(1.0, 1e38).log10().floor().cast(I32) + 1).clip(1, 38)
    # the float estimate can be one off next to a power of ten; correct it exactly
    return (
        pl.when(magnitude >= pow10(estimate))
        .then(estimate + 1)
        .when((magnitude > 0) & (magnitude < pow10(estimate - 1)))
        .then(estimate - 1)
        .otherwise(estimate)
    ).cast(I32)


def decimal_parts(value: Decimal) -> tuple[int, int]:
    """``Decimal`` → (coefficient, exponent) of the same value; raises FrameUnsupported outside the domain."""
    if not value.is_finite():
        raise FrameUnsupported(f"{value} is not a finite decimal")
    sign, digits, exponent = value.as_tuple()
    coefficient = int("".join(map(str, digits)) or "0")
    if coefficient >= COEF_LIMIT:
        raise FrameUnsupported(f"the decimal {value} has more than 34 digits")
    assert isinstance(exponent, int)
    return (-coefficient if sign else coefficient), exponent


class _Dec:
    """Decimal operations on (coefficient, exponent) expression pairs, binding intermediates to a plan."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def bind(self, expr: pl.Expr, level: int) -> tuple[pl.Expr, int]:
        return self.plan.bind(expr, level)

    def round28(self, c: pl.Expr, e: pl.Expr, level: int) -> tuple[pl.Expr, pl.Expr, int]:
        """Round ``c · 10^e`` (|c| < 10^38) to 28 significant digits, half to even."""
        c, level = self.bind(c, level)
        magnitude = c.abs()
        digits, level = self.bind(ndigits(magnitude), level)
        shift = (digits - PREC).clip(0, None)
        p = pow10(shift)
        q = magnitude // p
        r = magnitude % p
        half = p // 2
        up = (shift > 0) & ((r > half) | ((r == half) & (q % 2 == 1)))
        q2 = q + up.cast(I128)
        carry = q2 == pl.lit(10**PREC, I128)
        q3 = pl.when(carry).then(pl.lit(10 ** (PREC - 1), I128)).otherwise(q2)
        exponent = (e + shift + carry.cast(I32)).cast(I32)
        coef = pl.when(c < 0).then(_neg(q3)).otherwise(q3)
        coef, level2 = self.bind(coef, level)
        exponent, level3 = self.bind(exponent, level)
        return coef, exponent, max(level2, level3)

    def round_sticky(
        self, c: pl.Expr, e: pl.Expr, sticky: pl.Expr, sticky_sign: pl.Expr, level: int
    ) -> tuple[pl.Expr, pl.Expr, int]:
        # a non-zero tail below the last digit is stood for by one more digit 1 of the tail's sign: the
        # tail then lies strictly between the same rounding boundaries as the true value
        c2 = pl.when(sticky).then(c * 10 + sticky_sign).otherwise(c)
        e2 = pl.when(sticky).then(e - 1).otherwise(e)
        return self.round28(c2, e2.cast(I32), level)

    def add(
        self, ca: pl.Expr, ea: pl.Expr, cb: pl.Expr, eb: pl.Expr, level: int
    ) -> tuple[pl.Expr, pl.Expr, int]:
        ta, level = self.bind(pl.when(ca != 0).then(ndigits(ca.abs()) - 1 + ea).otherwise(-(2**30)), level)
        tb, level = self.bind(pl.when(cb != 0).then(ndigits(cb.abs()) - 1 + eb).otherwise(-(2**30)), level)
        top = pl.max_horizontal(ta, tb)
        # keep 35 digits below the larger operand's top digit: exact for both operands unless one is far
        # smaller, which then only matters as a sticky tail
        base, level = self.bind(pl.max_horizontal(pl.min_horizontal(ea, eb), top - 35).cast(I32), level)
        aligned_a, sticky_a, sign_a = _align(ca, ea - base)
        aligned_b, sticky_b, sign_b = _align(cb, eb - base)
        total = aligned_a + aligned_b
        sticky = sticky_a | sticky_b
        sign = pl.when(sticky_a).then(sign_a).otherwise(sign_b)
        return self.round_sticky(total, base, sticky, sign, level)

    def mul(
        self, ca: pl.Expr, ea: pl.Expr, cb: pl.Expr, eb: pl.Expr, level: int
    ) -> tuple[pl.Expr, pl.Expr, int]:
        split = pl.lit(10**18, I128)
        ma, mb = ca.abs(), cb.abs()
        a1, a0, b1, b0 = ma // split, ma % split, mb // split, mb % split
        low0 = a0 * b0
        middle = a1 * b0 + a0 * b1
        high0 = a1 * b1
        low, level = self.bind(middle % split * split + low0, level)
        high, level = self.bind(high0 + middle // split + low // pl.lit(10**36, I128), level)
        low = low % pl.lit(10**36, I128)
        negative = (ca < 0) != (cb < 0)
        return self.round_wide(high, low, (ea + eb).cast(I32), negative, level)

    def round_wide(
        self, high: pl.Expr, low: pl.Expr, e: pl.Expr, negative: pl.Expr, level: int
    ) -> tuple[pl.Expr, pl.Expr, int]:
        """Round ``±(high · 10^36 + low) · 10^e`` to 28 digits (high < 10^34, 0 ≤ low < 10^36)."""
        dh, level = self.bind(ndigits(high), level)
        shift = dh + 8
        # high has at most 28 digits: the kept digits span high and the top of low
        p_low = pow10(shift)
        q_small = high * pow10(PREC - dh) + low // p_low
        r_small = low % p_low
        half_small = p_low // 2
        up_small = (r_small > half_small) | ((r_small == half_small) & (q_small % 2 == 1))
        # high has more than 28 digits: every kept digit is in high
        k = dh - PREC
        p_high = pow10(k)
        q_big = high // p_high
        r_big = high % p_high
        half_big = p_high // 2
        up_big = (r_big > half_big) | ((r_big == half_big) & ((low > 0) | (q_big % 2 == 1)))
        big = dh > PREC
        q = pl.when(high == 0).then(low).when(big).then(q_big).otherwise(q_small)
        up = pl.when(high == 0).then(False).when(big).then(up_big).otherwise(up_small)
        exponent = pl.when(high == 0).then(e).otherwise(e + shift)
        signed = pl.when(negative).then(_neg(q + up.cast(I128))).otherwise(q + up.cast(I128))
        # the high == 0 case has not been rounded yet; round28 is exact for the others (≤ 28 digits + carry)
        return self.round28(signed, exponent.cast(I32), level)

    def div(
        self, ca: pl.Expr, ea: pl.Expr, cb: pl.Expr, eb: pl.Expr, level: int
    ) -> tuple[pl.Expr, pl.Expr, pl.Expr, int]:
        """Correctly rounded quotient, and the unsupported flag (a divisor of more than 28 digits)."""
        x = ca.abs()
        y_raw = cb.abs()
        zeros, level = self.bind(trailing_zeros(y_raw), level)
        y, level = self.bind(
            pl.when(y_raw == 0).then(pl.lit(1, I128)).otherwise(y_raw // pow10(zeros)), level
        )
        e_b = eb + zeros
        dy, level = self.bind(ndigits(y), level)
        dx = ndigits(x)
        k, level = self.bind(pl.max_horizontal(pl.lit(0, I32), 30 - (dx - dy)).cast(I32), level)
        q, level = self.bind(x // y, level)
        r, level = self.bind(x % y, level)
        remaining = k
        for step in range(6):
            chunk = pl.min_horizontal(
                pl.max_horizontal(remaining - 10 * step, pl.lit(0, I32)), pl.lit(10, I32)
            )
            p = pow10(chunk)
            shifted = r * p
            q, level_q = self.bind(q * p + shifted // y, level)
            r, level_r = self.bind(shifted % y, level)
            level = max(level_q, level_r)
        exponent = (ea - e_b - k).cast(I32)
        sticky = r != 0
        negative = (ca < 0) != (cb < 0)
        # q has at least 30 digits (or is 0), so the sticky digit only decides exact halves
        signed = pl.when(negative).then(_neg(q)).otherwise(q)
        sign = pl.when(negative).then(pl.lit(-1, I128)).otherwise(pl.lit(1, I128))
        c, e, level = self.round_sticky(signed, exponent, sticky, sign, level)
        return c, e, dy > PREC, level

    def compare(self, ca: pl.Expr, ea: pl.Expr, cb: pl.Expr, eb: pl.Expr, level: int) -> tuple[pl.Expr, int]:
        """The sign (-1, 0, 1) of a - b, exactly."""
        c, _, level = self.add(ca, ea, _neg(cb), eb, level)
        return c.sign(), level

    def logistic(self, c: pl.Expr, e: pl.Expr, level: int) -> tuple[pl.Expr, int]:
        """The builtin logistic scorer's result for log-odds ``z = c · 10^e``: the coefficient of
        ``1 / (1 + e^-z)`` rounded half up to 9 places (exponent -9).

        Python computes it with 40-digit decimals; here it is a 30-digit fixed-point computation in Int128
        (e^-x as a table value for the whole part and the first two decimals, times a Taylor series for the
        rest). Both round the same way unless the exact probability lies within about 1e-28 of a rounding
        boundary, which no log-odds other than 0 (probability 0.5 exactly, computed exactly here) comes near.
        """
        scale = pl.lit(_FIXED, I128)
        magnitude = c.abs()
        top = pl.when(magnitude != 0).then(ndigits(magnitude) - 1 + e).otherwise(-1000)
        shift = e + 30
        fixed = (
            pl.when(top >= 2)
            .then(pl.lit(40 * _FIXED, I128))
            .when(shift >= 0)
            .then(magnitude * pow10(shift.clip(0, 38)))
            .when(shift < -38)
            .then(pl.lit(0, I128))
            .otherwise(magnitude // pow10(-shift))
        )
        # beyond |z| = 40 the probability rounds to 1 or 0 at 9 places either way
        x, level = self.bind(pl.min_horizontal(fixed, pl.lit(40 * _FIXED, I128)), level)
        whole = (x // scale).cast(I32)
        fraction = x % scale
        hundredths = (fraction // pl.lit(10**28, I128)).cast(I32)
        rest, level = self.bind(fraction % pl.lit(10**28, I128), level)
        exp_whole = whole.replace_strict(list(range(41)), _EXP_WHOLE, return_dtype=I128)
        exp_hundredths = hundredths.replace_strict(list(range(100)), _EXP_HUNDREDTHS, return_dtype=I128)
        term, total = scale, scale
        for k in range(1, 15):
            term, level_t = self.bind(_mul_fixed(term, rest) // k, level)
            total, level = self.bind(total + term if k % 2 == 0 else total - term, max(level, level_t))
        partial, level = self.bind(_mul_fixed(exp_whole, exp_hundredths), level)
        u, level = self.bind(_mul_fixed(partial, total), level)
        negative = c < 0
        divisor, level = self.bind(scale + u, level)
        numerator = pl.when(negative).then(u).otherwise(scale)
        q, level_q = self.bind(numerator // divisor, level)
        r, level_r = self.bind(numerator % divisor, level)
        level = max(level_q, level_r)
        for _ in range(5):
            shifted = r * pl.lit(10**6, I128)
            q, level_q = self.bind(q * pl.lit(10**6, I128) + shifted // divisor, level)
            r, level_r = self.bind(shifted % divisor, level)
            level = max(level_q, level_r)
        # q is the probability with 30 decimals; round half up to 9
        rounded = q // pl.lit(10**21, I128) + (q % pl.lit(10**21, I128) >= pl.lit(5 * 10**20, I128)).cast(
            I128
        )
        return self.bind(rounded, level)


_FIXED = 10**30


def _fixed_exp_table(values: Sequence[Decimal]) -> pl.Series:
    from decimal import localcontext

    with localcontext() as context:
        context.prec = 60
        exact = [(-v).exp() * _FIXED for v in values]
    return pl.Series([int(x.to_integral_value()) for x in exact], dtype=I128)


_EXP_WHOLE = _fixed_exp_table([Decimal(n) for n in range(41)])
_EXP_HUNDREDTHS = _fixed_exp_table([Decimal(k) / 100 for k in range(100)])


def _mul_fixed(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """a · b / 10^30 for non-negative fixed-point values below 10^31, without overflowing Int128."""
    split = pl.lit(10**15, I128)
    a1, a0, b1, b0 = a // split, a % split, b // split, b % split
    return a1 * b1 + (a1 * b0 + a0 * b1) // split + (a0 * b0) // pl.lit(10**30, I128)


def trailing_zeros(magnitude: pl.Expr) -> pl.Expr:
    """How many trailing zeros a non-zero Int128 has (0 for 0)."""
    count = pl.lit(0, I32)
    for k in range(1, 38):
        count = count + ((magnitude != 0) & (magnitude % pl.lit(10**k, I128) == 0)).cast(I32)
    return count


def _align(c: pl.Expr, k: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """``c · 10^k``; for k < 0 truncated toward zero, with a sticky flag for the dropped digits."""
    drop = -k
    divisor = pow10(drop)
    magnitude = c.abs()
    kept = pl.when(drop > 38).then(pl.lit(0, I128)).otherwise(magnitude // divisor)
    lost = pl.when(drop > 38).then(magnitude != 0).otherwise(magnitude % divisor != 0)
    truncated = pl.when(c < 0).then(_neg(kept)).otherwise(kept)
    value = pl.when(k >= 0).then(c * pow10(k)).otherwise(truncated)
    sticky = (k < 0) & lost
    sign = pl.when(c < 0).then(pl.lit(-1, I128)).otherwise(pl.lit(1, I128))
    return value, sticky, sign


def dec_key(c: pl.Expr, e: pl.Expr) -> pl.Expr:
    """A canonical text key of a decimal value (equal values, equal keys)."""
    zeros = trailing_zeros(c.abs())
    coefficient = pl.when(c == 0).then(pl.lit(0, I128)).otherwise(c // pow10(zeros))
    exponent = pl.when(c == 0).then(pl.lit(0, I32)).otherwise(e + zeros)
    return pl.concat_str(coefficient.cast(pl.String), pl.lit("|"), exponent.cast(pl.String))


def dec_to_text(c: pl.Expr, e: pl.Expr, negative_zero: pl.Expr | None = None) -> pl.Expr:
    """``str(Decimal)`` of ``c · 10^e``, Python's to-scientific-string rules, vectorised."""
    digits = c.abs().cast(pl.String)
    length = digits.str.len_chars().cast(I32)
    adjusted = e + length - 1
    negative = (c < 0) if negative_zero is None else ((c < 0) | ((c == 0) & negative_zero))
    sign = pl.when(negative).then(pl.lit("-")).otherwise(pl.lit(""))
    point = length + e  # digits before the decimal point, when plain
    plain_int = pl.concat_str(digits, pl.lit(""))
    plain_split = pl.concat_str(digits.str.slice(0, point), pl.lit("."), digits.str.slice(point))
    plain_small = pl.concat_str(
        pl.lit("0."), pl.lit("0").repeat_by((-point).clip(0, None)).list.join(""), digits
    )
    plain = pl.when(e == 0).then(plain_int).when(point > 0).then(plain_split).otherwise(plain_small)
    mantissa = (
        pl.when(length > 1)
        .then(pl.concat_str(digits.str.slice(0, 1), pl.lit("."), digits.str.slice(1)))
        .otherwise(digits)
    )
    exp_text = pl.concat_str(
        pl.when(adjusted >= 0).then(pl.lit("+")).otherwise(pl.lit("")), adjusted.cast(pl.String)
    )
    scientific = pl.concat_str(mantissa, pl.lit("E"), exp_text)
    body = pl.when((e <= 0) & (adjusted >= -6)).then(plain).otherwise(scientific)
    return pl.when(c.is_not_null()).then(pl.concat_str(sign, body))


# -------------------------------------------------------------------------------------------------------
# the compiler


_BUILTIN_IDS = frozenset(id(f) for f in BUILTIN_FUNCTIONS)


@dataclass
class FrameCompiled:
    """A compiled expression: its plan of intermediate columns, its value, the context columns it reads."""

    value: FrameValue
    plan: Plan
    #: context columns the caller must provide: ``("attempts", channel, seconds)``, ``("last", channel)``,
    #: ``("hold", type)``, ``("today",)``, ``("as_of",)``, ``("score", name)``
    needs: set[tuple[Any, ...]] = field(default_factory=set)

    def expr(self) -> pl.Expr:
        """The value packed into one column (null where the rows backend raises)."""
        packed = pack(self.value)
        if self.value.err is not None:
            packed = pl.when(~self.value.err).then(packed)
        return packed


def compile_frame(typed: TypedExpr, functions: FunctionRegistry, plan: Plan | None = None) -> FrameCompiled:
    """Compile a checked expression for the frame backend (see the module notes for columns and semantics).

    :raises FrameUnsupported: for a plugin's function, or a value the frame backend does not emulate.
    """
    plan = plan if plan is not None else Plan()
    compiler = _Compiler(typed, functions, plan)
    value = compiler.compile(typed.expr)
    return FrameCompiled(value, plan, compiler.needs)


def compile_expr_frame(typed: TypedExpr, registry: Any) -> pl.Expr:
    """Compile a checked expression into one Polars expression over a frame of accounts.

    ``registry`` is a :class:`~collectrules.registry.Registry` or a
    :class:`~collectrules.lang.functions.FunctionRegistry`. The expression reads the columns listed in the
    module notes and gives the value in the frame representation, null where the rows backend would
    raise. :class:`FrameUnsupported` is raised for what the frame backend cannot compile (a plugin's
    Python-only function), so that the caller can fall back to the rows backend.
    """
    functions = registry if isinstance(registry, FunctionRegistry) else registry.functions
    compiled = compile_frame(typed, functions, Plan(prefix="#c"))
    if not compiled.plan.columns():
        return compiled.expr()
    # Polars has no let-binding inside one expression: the intermediate columns are computed by running the
    # plan on each batch the expression is applied to (whole columns at a time, never row by row)
    inputs = sorted(
        {n.name for n in ast.referenced_names(typed.expr)} | {_need_column(n) for n in compiled.needs}
    )
    final = compiled.expr().alias("#value")
    plan = compiled.plan

    def run(batch: pl.Series) -> pl.Series:
        frame = batch.struct.unnest() if inputs else pl.DataFrame({"#n": [None] * len(batch)})
        return plan.apply(frame).select(final).to_series()

    source = pl.struct([pl.col(name) for name in inputs]) if inputs else pl.lit(None)
    return source.map_batches(run, return_dtype=frame_dtype(typed.type))


def _need_column(need: tuple[Any, ...]) -> str:
    kind = need[0]
    if kind == "attempts":
        return f"#attempts:{need[1]}:{need[2]}:{need[3]}"
    if kind == "last":
        return f"#last:{need[1]}"
    if kind == "hold":
        return f"#hold:{need[1]}"
    if kind == "score":
        return f"#score:{need[1]}"
    return f"#{kind}"


class _Compiler:
    def __init__(self, typed: TypedExpr, functions: FunctionRegistry, plan: Plan) -> None:
        self.typed = typed
        self.functions = functions
        self.plan = plan
        self.dec = _Dec(plan)
        self.needs: set[tuple[Any, ...]] = set()

    # ---- helpers -------------------------------------------------------------------------------------

    def type_of(self, node: ast.Expr) -> Type:
        return self.typed.type_of(node)

    def bind(self, value: FrameValue) -> FrameValue:
        """Bind a value's expressions to columns (used where a value is read more than once)."""
        level = value.level
        main, level_main = self.plan.bind(value.main, level)
        aux, level_aux = self.plan.bind(value.aux, level) if value.aux is not None else (None, level)
        err, level_err = self.plan.bind(value.err, level) if value.err is not None else (None, level)
        msg, level_msg = self.plan.bind(value.msg, level) if value.msg is not None else (None, level)
        return replace(
            value,
            main=main,
            aux=aux,
            err=err,
            msg=msg,
            level=max(level_main, level_aux, level_err, level_msg),
        )

    def as_decimal(self, value: FrameValue) -> FrameValue:
        if value.kind == "decimal":
            return value
        if value.kind == "int":
            return replace(value, kind="decimal", main=value.main.cast(I128), aux=pl.lit(0, I32))
        if value.kind in ("null", "any"):
            return replace(value, kind="decimal", main=pl.lit(None, I128), aux=pl.lit(None, I32))
        raise FrameUnsupported(f"a {value.kind} where a number is expected")

    def coerce(self, value: FrameValue, kind: str, item: str | None = None) -> FrameValue:
        """Convert a value to the representation of ``kind`` (numbers widen, nulls take the type)."""
        if kind == "decimal":
            return self.as_decimal(value)
        if value.kind in ("null", "any") and kind not in ("null", "any"):
            typed_null = _null_of(kind, item)
            return replace(value, kind=kind, main=typed_null.main, aux=typed_null.aux, item=typed_null.item)
        if kind == "list" and value.kind == "list" and item is not None and value.item != item:
            return replace(value, main=self._list_items_as(value, item), item=item)
        return value

    def _list_items_as(self, value: FrameValue, item: str) -> pl.Expr:
        if value.item in ("any", "null", None):
            return value.main.cast(pl.List(_item_dtype(item)))
        if value.item == "int" and item == "decimal":
            return value.main.list.eval(dec_key(pl.element().cast(I128), pl.lit(0, I32)))
        raise FrameUnsupported(f"a list of {value.item} used as a list of {item}")

    def _value(
        self,
        kind: str,
        main: pl.Expr,
        children: Sequence[FrameValue | None],
        *,
        aux: pl.Expr | None = None,
        item: str | None = None,
        err: pl.Expr | None = None,
        msg: pl.Expr | None = None,
        unsup: pl.Expr | None = None,
        level: int | None = None,
    ) -> FrameValue:
        return FrameValue(
            kind,
            main,
            aux,
            item,
            err,
            msg,
            _unsup(*children, extra=unsup),
            _level(*children) if level is None else level,
        )

    # ---- nodes ---------------------------------------------------------------------------------------

    def compile(self, node: ast.Expr) -> FrameValue:
        return self._settle(self._compile(node))

    def _settle(self, value: FrameValue) -> FrameValue:
        """Bind a node's decimal parts and its error expressions to columns.

        Decimal helpers read their operands several times (digit counts, alignments, trailing zeros) and the
        error of a node reads its children's errors twice; without columns these trees would double at
        every level of nesting.
        """

        def settle(expr: pl.Expr | None, level: int) -> tuple[pl.Expr | None, int]:
            if expr is None or expr.meta.is_column() or expr.meta.is_literal():
                return expr, level
            return self.plan.bind(expr, level)

        level = value.level
        main, aux = value.main, value.aux
        levels = [level]
        if value.kind in ("decimal", "datetime"):
            main, level_main = settle(value.main, level)
            aux, level_aux = settle(value.aux, level)
            levels += [level_main, level_aux]
        err, level_err = settle(value.err, level)
        msg, level_msg = settle(value.msg, level)
        return replace(value, main=main, aux=aux, err=err, msg=msg, level=max(*levels, level_err, level_msg))

    def _compile(self, node: ast.Expr) -> FrameValue:  # noqa: C901 - one branch per node type, by design
        match node:
            case ast.Literal():
                return self._literal(node)
            case ast.ListLit(items=items):
                return self._list(node, items)
            case ast.Name(name=name):
                return column_value(name, self.type_of(node))
            case ast.Member(member=member):
                self.needs.add(("score", member))
                return column_value(f"#score:{member}", self.type_of(node))
            case ast.Call():
                return self._call(node)
            case ast.Unary(op="not", operand=operand):
                inner = self.compile(operand)
                err, msg = _errors([(None, inner)])
                main = ~self.coerce(inner, "bool").main
                return self._value("bool", main, [inner], err=err, msg=msg)
            case ast.Unary(op="neg", operand=operand):
                return self._negate(self.compile(operand))
            case ast.BinOp(op="and", left=left, right=right):
                a, b = self.compile(left), self.compile(right)
                am, bm = self.coerce(a, "bool").main, self.coerce(b, "bool").main
                err, msg = _errors([(None, a), (am.fill_null(True), b)])
                return self._value("bool", am & bm, [a, b], err=err, msg=msg)
            case ast.BinOp(op="or", left=left, right=right):
                a, b = self.compile(left), self.compile(right)
                am, bm = self.coerce(a, "bool").main, self.coerce(b, "bool").main
                err, msg = _errors([(None, a), (~am.fill_null(False), b)])
                return self._value("bool", am | bm, [a, b], err=err, msg=msg)
            case ast.BinOp(op=op, left=left, right=right) if op in ast.COMPARISON_OPS:
                a, b = self.compile(left), self.compile(right)
                result, level = self._compare(op, a, b)
                err, msg = _errors([(None, a), (a.main.is_not_null(), b)])
                return self._value(
                    "bool", result.fill_null(False), [a, b], err=err, msg=msg, level=max(level, _level(a, b))
                )
            case ast.BinOp(op=op, left=left, right=right):
                return self._arith(node, op, self.compile(left), self.compile(right))
            case ast.In(value=value, container=container, negated=negated):
                v, c = self.compile(value), self.compile(container)
                found, level = self._membership(v, c)
                result = ~found if negated else found
                result = (
                    pl.when(v.main.is_null() | c.main.is_null())
                    .then(False)
                    .otherwise(result.fill_null(False))
                )
                err, msg = _errors([(None, v), (v.main.is_not_null(), c)])
                return self._value("bool", result, [v, c], err=err, msg=msg, level=max(level, _level(v, c)))
            case ast.Between(value=value, low=low, high=high):
                v, lo, hi = self.compile(value), self.compile(low), self.compile(high)
                if v.err is not None or lo.err is not None or hi.err is not None:
                    v = self.bind(v)
                above, level_a = self._compare("<=", lo, v)
                below, level_b = self._compare("<=", v, hi)
                result = (above & below).fill_null(False)
                gate = v.main.is_not_null()
                err, msg = _errors([(None, v), (gate, lo), (gate, hi)])
                return self._value(
                    "bool",
                    result,
                    [v, lo, hi],
                    err=err,
                    msg=msg,
                    level=max(level_a, level_b, _level(v, lo, hi)),
                )
            case ast.IsNull(value=value, negated=negated):
                inner = self.compile(value)
                err, msg = _errors([(None, inner)])
                main = inner.main.is_not_null() if negated else inner.main.is_null()
                return self._value("bool", main, [inner], err=err, msg=msg)
            case ast.If(cond=cond, then=then, otherwise=otherwise):
                return self._if(node, self.compile(cond), self.compile(then), self.compile(otherwise))
        raise AssertionError(f"unhandled node {type(node).__name__}")

    def _literal(self, node: ast.Literal) -> FrameValue:
        value = node.value
        if node.kind == "int":
            assert isinstance(value, int)
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise FrameUnsupported(f"the integer {value} does not fit in 64 bits")
            return FrameValue("int", pl.lit(value, I64))
        if node.kind in ("decimal", "percent"):
            assert isinstance(value, Decimal)
            c, e = decimal_parts(value)
            return FrameValue("decimal", pl.lit(c, I128), pl.lit(e, I32))
        if node.kind == "string":
            return FrameValue("string", pl.lit(value, pl.String))
        if node.kind == "bool":
            return FrameValue("bool", pl.lit(value, pl.Boolean))
        if node.kind == "duration":
            assert isinstance(value, _dt.timedelta)
            micros = _micros(value)
            if not _INT64_MIN <= micros <= _INT64_MAX:
                raise FrameUnsupported(f"the duration {value} is too long")
            return FrameValue("duration", pl.lit(micros, I64))
        return FrameValue("null", pl.lit(None))

    def _list(self, node: ast.ListLit, items: tuple[ast.Expr, ...]) -> FrameValue:
        list_type = self.type_of(node)
        item_kind = _kind_of(list_type.item)
        if not items:
            return FrameValue("list", pl.lit([], pl.List(pl.Null)), item="any")
        if item_kind in ("any", "null"):
            item_kind = "null"
        values = [self.coerce(self.compile(i), item_kind) for i in items]
        parts = [self._item_expr(v, item_kind) for v in values]
        err, msg = _errors([(None, v) for v in values])
        return self._value("list", pl.concat_list(parts), values, item=item_kind, err=err, msg=msg)

    def _item_expr(self, value: FrameValue, item_kind: str) -> pl.Expr:
        if item_kind == "decimal":
            assert value.aux is not None
            return pl.when(value.main.is_not_null()).then(dec_key(value.main, value.aux))
        if item_kind == "null":
            return value.main.cast(pl.Null)
        return value.main.cast(_item_dtype(item_kind))

    def _negate(self, inner: FrameValue) -> FrameValue:
        err, msg = _errors([(None, inner)])
        if inner.kind == "int":
            wide = _neg(inner.main.cast(I128))
            return self._value(
                "int",
                wide.cast(I64, wrap_numerical=True),
                [inner],
                err=err,
                msg=msg,
                unsup=_out_of_int64(wide),
            )
        if inner.kind == "duration":
            wide = _neg(inner.main.cast(I128))
            return self._value(
                "duration",
                wide.cast(I64, wrap_numerical=True),
                [inner],
                err=err,
                msg=msg,
                unsup=_out_of_int64(wide),
            )
        if inner.kind == "decimal":
            assert inner.aux is not None
            c, e, level = self.dec.round28(_neg(inner.main), inner.aux, inner.level)
            return self._value("decimal", c, [inner], aux=e, err=err, msg=msg, level=level)
        return self._value(inner.kind, inner.main, [inner], aux=inner.aux, err=err, msg=msg)

    # ---- comparisons ---------------------------------------------------------------------------------

    def _compare(self, op: str, a: FrameValue, b: FrameValue) -> tuple[pl.Expr, int]:
        """``a op b`` where both are non-null; null otherwise (the caller fills nulls with false)."""
        level = _level(a, b)
        if {a.kind, b.kind} <= {"int", "decimal"} and "decimal" in (a.kind, b.kind):
            da, db = self.as_decimal(a), self.as_decimal(b)
            assert da.aux is not None and db.aux is not None
            sign, level = self.dec.compare(da.main, da.aux, db.main, db.aux, level)
            left, right = sign, pl.lit(0, I128)
        elif a.kind == "datetime" or b.kind == "datetime":
            left, right = a.main, b.main
        elif a.kind == "list" or b.kind == "list":
            item = a.item if a.item not in ("any", "null", None) else b.item
            la = self.coerce(a, "list", item) if item else a
            lb = self.coerce(b, "list", item) if item else b
            left, right = la.main, lb.main
            if op == "==":
                return (left == right), level
            return (left != right), level
        else:
            left, right = a.main, b.main
        result = {
            "==": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]
        return pl.when(a.main.is_not_null() & b.main.is_not_null()).then(result), level

    def _membership(self, value: FrameValue, container: FrameValue) -> tuple[pl.Expr, int]:
        """Whether a non-null value is an item of a list (null when either is null)."""
        if container.kind != "list":
            raise FrameUnsupported(f"'in' on a {container.kind}")
        item = container.item or "any"
        if item in ("any", "null"):
            return pl.lit(False), _level(value, container)
        needle = self._needle(value, item)
        if needle is None:
            return pl.lit(False), _level(value, container)
        return container.main.list.contains(needle), _level(value, container)

    def _needle(self, value: FrameValue, item: str) -> pl.Expr | None:
        """The value as an item of a list of ``item`` kind; None when no item of that kind can equal it."""
        if item == "decimal":
            if value.kind not in ("int", "decimal"):
                return None
            dec = self.as_decimal(value)
            assert dec.aux is not None
            return dec_key(dec.main, dec.aux)
        if item == "int" and value.kind == "decimal":
            assert value.aux is not None
            # a decimal equals an int item only when it is a whole number within the int range
            key = dec_key(value.main, value.aux)
            parts = key.str.split("|")
            coefficient = parts.list.get(0).cast(I128)
            exponent = parts.list.get(1).cast(I32)
            whole = pl.when((exponent >= 0) & (exponent <= 18)).then(coefficient * pow10(exponent))
            return pl.when(whole.is_between(_INT64_MIN, _INT64_MAX)).then(whole.cast(I64))
        if item == "datetime":
            return value.main if value.kind == "datetime" else None
        if item == "int" and value.kind == "int" or item == value.kind:
            return value.main
        if item == "string" and value.kind == "string":
            return value.main
        return None

    # ---- if ------------------------------------------------------------------------------------------

    def _if(self, node: ast.If, cond: FrameValue, then: FrameValue, otherwise: FrameValue) -> FrameValue:
        result_type = self.type_of(node)
        kind = _kind_of(result_type)
        item = _kind_of(result_type.item) if result_type.kind == "list" else None
        if kind == "any":
            raise FrameUnsupported("an if/else whose branches have no common type")
        a = self.coerce(then, kind, item)
        b = self.coerce(otherwise, kind, item)
        taken = cond.main.fill_null(False)
        main = pl.when(taken).then(a.main).otherwise(b.main)
        aux = pl.when(taken).then(a.aux).otherwise(b.aux) if a.aux is not None and b.aux is not None else None
        err, msg = _errors([(None, cond), (taken, then), (~taken, otherwise)])
        return self._value(kind, main, [cond, a, b], aux=aux, item=a.item, err=err, msg=msg)

    # ---- arithmetic ----------------------------------------------------------------------------------

    def _arith(self, node: ast.BinOp, op: str, a: FrameValue, b: FrameValue) -> FrameValue:  # noqa: C901
        both = a.main.is_not_null() & b.main.is_not_null()
        result_kind = _kind_of(self.type_of(node))
        level = _level(a, b)
        own: list[tuple[pl.Expr, pl.Expr]] = []
        unsup: pl.Expr | None = None
        aux: pl.Expr | None = None
        if op == "/":
            da, db = self.as_decimal(a), self.as_decimal(b)
            assert da.aux is not None and db.aux is not None
            zero = db.main == 0
            divisor = pl.when(zero).then(pl.lit(1, I128)).otherwise(db.main)
            c, e, too_long, level = self.dec.div(da.main, da.aux, divisor, db.aux, level)
            own.append((both & zero, pl.lit("division by zero")))
            unsup = both & ~zero & too_long
            main, aux, kind = pl.when(both & ~zero).then(c), e, "decimal"
        elif a.kind == "int" and b.kind == "int":
            wide = {
                "+": a.main.cast(I128) + b.main.cast(I128),
                "-": a.main.cast(I128) - b.main.cast(I128),
                "*": a.main.cast(I128) * b.main.cast(I128),
            }[op]
            main, kind, unsup = wide.cast(I64, wrap_numerical=True), "int", _out_of_int64(wide)
        elif {a.kind, b.kind} <= {"int", "decimal"}:
            da, db = self.as_decimal(a), self.as_decimal(b)
            assert da.aux is not None and db.aux is not None
            if op == "*":
                c, e, level = self.dec.mul(da.main, da.aux, db.main, db.aux, level)
            else:
                cb = db.main if op == "+" else _neg(db.main)
                c, e, level = self.dec.add(da.main, da.aux, cb, db.aux, level)
            main, aux, kind = pl.when(both).then(c), e, "decimal"
        elif result_kind == "string":
            main, kind = pl.concat_str(a.main, b.main), "string"
        elif result_kind == "duration" and a.kind == b.kind == "duration":
            wide = (
                a.main.cast(I128) + b.main.cast(I128) if op == "+" else a.main.cast(I128) - b.main.cast(I128)
            )
            main, kind, unsup = wide.cast(I64, wrap_numerical=True), "duration", _out_of_int64(wide)
        elif result_kind == "duration" and a.kind == b.kind and a.kind in ("date", "datetime"):
            if a.kind == "date":
                days = a.main.cast(I32).cast(I64) - b.main.cast(I32).cast(I64)
                main = days * _DAY_US
            else:
                main = a.main.cast(UTC_US).cast(I64) - b.main.cast(UTC_US).cast(I64)
            kind = "duration"
        elif result_kind == "duration":
            # duration * int or duration * decimal, either order
            duration, factor = (a, b) if a.kind == "duration" else (b, a)
            if factor.kind == "int":
                wide = duration.main.cast(I128) * factor.main.cast(I128)
                main, kind, unsup = wide.cast(I64, wrap_numerical=True), "duration", _out_of_int64(wide)
            else:
                assert factor.aux is not None
                micros = duration.main.cast(I128)
                # Python goes through int(td.total_seconds()): whole seconds, truncated toward zero
                seconds = (
                    pl.when(micros < 0).then(_neg(_neg(micros) // _SECOND_US)).otherwise(micros // _SECOND_US)
                )
                c, e, level = self.dec.mul(seconds, pl.lit(0, I32), factor.main, factor.aux, level)
                whole = _truncate_decimal(c, e)
                wide = whole * _SECOND_US
                main, kind = wide.cast(I64, wrap_numerical=True), "duration"
                unsup = both & (_out_of_int64(wide) | (seconds.abs() >= _EXACT_SECONDS) | (e > 18))
        elif result_kind in ("date", "datetime"):
            point, duration = (a, b) if a.kind in ("date", "datetime") else (b, a)
            sign = -1 if op == "-" else 1
            micros = duration.main.cast(I128) * sign
            if point.kind == "date":
                # Python moves a date by whole days only, td.days (the floor of the duration in days), and
                # subtracts as ``date + timedelta(-td.days)``: date - 12h is the same date,
                # date + -12h the day before
                days = (duration.main.cast(I128) // _DAY_US) * sign
                total = point.main.cast(I32).cast(I128) + days
                bad = both & ~total.is_between(DATE_MIN_DAYS, DATE_MAX_DAYS)
                main = pl.when(both & ~bad).then(total.cast(I32).cast(pl.Date))
                kind = "date"
            else:
                assert point.aux is not None
                instant = point.main.cast(UTC_US).cast(I64).cast(I128) + micros
                wall = instant + point.aux.cast(I128) * _SECOND_US
                bad = both & ~wall.is_between(_WALL_MIN_US, _WALL_MAX_US)
                main = pl.when(both & ~bad).then(instant.cast(I64, wrap_numerical=True).cast(UTC_US))
                aux, kind = point.aux, "datetime"
            own.append((bad, pl.lit(_OUT_OF_RANGE)))
        else:
            raise FrameUnsupported(f"'{op}' on a {a.kind} and a {b.kind}")
        err, msg = _errors([(None, a), (None, b)], own)
        if unsup is not None:
            unsup = both & unsup
        return self._value(kind, main, [a, b], aux=aux, err=err, msg=msg, unsup=unsup, level=level)

    # ---- calls ---------------------------------------------------------------------------------------

    def _call(self, node: ast.Call) -> FrameValue:  # noqa: C901 - one branch per built-in
        name = node.func
        function = self.functions.get(name)
        if function is None and name in ("date", "datetime"):
            text = str(node.args[0].value)  # type: ignore[union-attr]
            if name == "date":
                return FrameValue("date", pl.lit(_dt.date.fromisoformat(text), pl.Date))
            instant = _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(_dt.UTC)
            return FrameValue("datetime", pl.lit(instant, UTC_US), pl.lit(0, I32))
        assert function is not None, "the checker guarantees every called function exists"
        if id(function) not in _BUILTIN_IDS:
            raise FrameUnsupported(
                f"function {name}() (from {function.origin}) has only a Python implementation; "
                f"use the rows backend"
            )
        if name in ("attempts", "last_contact", "has_hold"):
            return self._context_call(node, function)
        if name in ("business_days_since", "add_business_days"):
            return self._business_call(node)
        if name == "today":
            self.needs.add(("today",))
            return FrameValue("date", pl.col("#today"))
        if name == "now":
            self.needs.add(("as_of",))
            return FrameValue("datetime", pl.col("#as_of"), pl.lit(0, I32))
        args = [self.compile(a) for a in node.args]
        steps: list[tuple[pl.Expr | None, FrameValue | None]] = [(None, a) for a in args]
        present = pl.lit(True)
        for arg in args:
            present = present & arg.main.is_not_null()
        result_type = self.type_of(node)
        kind = _kind_of(result_type)
        if function.null_safe:
            return self._null_safe_call(name, args, kind, steps)
        own: list[tuple[pl.Expr, pl.Expr]] = []
        unsup: pl.Expr | None = None
        aux: pl.Expr | None = None
        level = _level(*args)
        if name == "days_since":
            self.needs.add(("today",))
            arg = args[0]
            if arg.kind == "datetime":
                # an instant becomes a date in the debtor's primary zone, like today()
                self.needs.add(("primary",))
                day, level = self.plan.local_date(arg.main.cast(UTC_US), level)
            else:
                day = arg.main.cast(pl.Date)
            main = (pl.col("#today").cast(I32) - day.cast(I32)).cast(I64)
        elif name == "days_between":
            main = (_to_date(args[1]).cast(I32) - _to_date(args[0]).cast(I32)).cast(I64)
        elif name == "abs":
            arg = args[0]
            if arg.kind == "decimal":
                assert arg.aux is not None
                c, aux, level = self.dec.round28(arg.main.abs(), arg.aux, level)
                main, kind = c, "decimal"
            elif arg.kind == "int":
                wide = arg.main.cast(I128).abs()
                main, unsup, kind = wide.cast(I64, wrap_numerical=True), _out_of_int64(wide), "int"
            else:
                main, kind = arg.main, arg.kind
        elif name == "round":
            main, aux, kind, level, own, unsup = self._round(args, level)
        elif name in ("floor", "ceil"):
            arg = args[0]
            if arg.kind == "decimal":
                assert arg.aux is not None
                wide, too_big = _floor_ceil(arg.main, arg.aux, name)
                main, unsup = wide.cast(I64, wrap_numerical=True), too_big | _out_of_int64(wide)
            else:
                main = arg.main.cast(I64)
            kind = "int"
        elif name in ("lower", "upper"):
            main = args[0].main.str.to_lowercase() if name == "lower" else args[0].main.str.to_uppercase()
        elif name == "len":
            arg = args[0]
            main = (arg.main.list.len() if arg.kind == "list" else arg.main.str.len_chars()).cast(I64)
        elif name == "contains":
            main, own = self._contains(args[0], args[1])
        elif name == "starts_with":
            main = args[0].main.str.starts_with(args[1].main)
        elif name == "ends_with":
            main = args[0].main.str.ends_with(args[1].main)
        else:
            raise FrameUnsupported(f"function {name}() has no frame implementation")
        own = [(present & condition, message) for condition, message in own]
        err, msg = _errors(steps, own)
        main = pl.when(present).then(main)
        if unsup is not None:
            unsup = present & unsup
        return self._value(kind, main, args, aux=aux, err=err, msg=msg, unsup=unsup, level=level)

    def _null_safe_call(
        self,
        name: str,
        args: list[FrameValue],
        kind: str,
        steps: list[tuple[pl.Expr | None, FrameValue | None]],
    ) -> FrameValue:
        err, msg = _errors(steps)
        if kind in ("any",):
            raise FrameUnsupported(f"{name}() over values of different types")
        values = [self.coerce(a, kind) for a in args]
        if name == "coalesce":
            main = pl.coalesce([v.main for v in values])
            aux = None
            if kind in ("decimal", "datetime"):
                aux = pl.when(values[0].main.is_not_null()).then(values[0].aux)
                for value in values[1:]:
                    aux = aux.when(value.main.is_not_null()).then(value.aux)  # type: ignore[attr-defined]
            item = next((v.item for v in values if v.item not in (None, "any", "null")), values[0].item)
            return self._value(kind, main, args, aux=aux, item=item, err=err, msg=msg)
        # min / max: skip nulls; keep the first of equal values (as Python's min and max do)
        level = _level(*args)
        best = values[0]
        for value in values[1:]:
            if kind == "decimal":
                assert best.aux is not None and value.aux is not None
                best = self.bind(best)
                value = self.bind(value)
                sign, level = self.dec.compare(
                    value.main, value.aux, best.main, best.aux, max(level, best.level, value.level)
                )
                better = (sign < 0) if name == "min" else (sign > 0)
            else:
                better = (value.main < best.main) if name == "min" else (value.main > best.main)
            take = best.main.is_null() | (value.main.is_not_null() & better.fill_null(False))
            main = pl.when(take).then(value.main).otherwise(best.main)
            aux = pl.when(take).then(value.aux).otherwise(best.aux) if kind == "decimal" else None
            best = FrameValue(kind, main, aux, level=max(level, best.level, value.level))
        return self._value(
            kind, best.main, args, aux=best.aux, err=err, msg=msg, level=max(level, best.level)
        )

    def _round(
        self, args: list[FrameValue], level: int
    ) -> tuple[pl.Expr, pl.Expr | None, str, int, list[tuple[pl.Expr, pl.Expr]], pl.Expr | None]:
        """round(x, n): n within -18..28, half up (away from zero), exactly as the rows backend."""
        value = args[0]
        digits = args[1].main.cast(I64) if len(args) > 1 else pl.lit(0, I64)
        out_of_range = ~digits.is_between(-18, 28)
        own = [
            (
                out_of_range,
                pl.concat_str(
                    pl.lit("round() failed: round() takes between -18 and 28 places, got "),
                    digits.cast(pl.String),
                ),
            )
        ]
        places = digits.clip(-18, 28).cast(I32)
        if value.kind == "int":
            # whole numbers stay as they are, except that negative places round to tens, hundreds …
            divisor = pow10((-places).clip(0, 18))
            magnitude = value.main.cast(I128).abs()
            rounded = (magnitude // divisor + (magnitude % divisor * 2 >= divisor).cast(I128)) * divisor
            signed = pl.when(value.main < 0).then(_neg(rounded)).otherwise(rounded)
            main = pl.when(places >= 0).then(value.main).otherwise(signed.cast(I64, wrap_numerical=True))
            return main, None, "int", level, own, (places < 0) & _out_of_int64(signed)
        if value.kind != "decimal":
            return value.main, None, value.kind, level, own, None
        assert value.aux is not None
        target = (-places).cast(I32)
        c, e = value.main, value.aux
        up_shift = e - target
        # e >= target: exact, only the digit count can fail
        scaled = c * pow10(up_shift)
        exact_digits = ndigits(c.abs()) + up_shift
        # e < target: divide, half up (away from zero)
        down = target - e
        divisor = pow10(down)
        magnitude = c.abs()
        q = pl.when(down > 38).then(pl.lit(0, I128)).otherwise(magnitude // divisor)
        r = pl.when(down > 38).then(magnitude).otherwise(magnitude % divisor)
        half_up = pl.when(down > 38).then(False).otherwise(r * 2 >= divisor)
        rounded = q + half_up.cast(I128)
        signed = pl.when(c < 0).then(_neg(rounded)).otherwise(rounded)
        coefficient = pl.when(up_shift >= 0).then(scaled).otherwise(signed)
        too_long = (
            pl.when(c == 0)
            .then(False)
            .when(up_shift >= 0)
            .then(exact_digits > PREC)
            .otherwise(ndigits(rounded) > PREC)
        )
        # negative places: the rows backend quantizes once more to a whole number (plain notation), which
        # fails beyond 28 integer digits
        whole = coefficient * pow10(target.clip(0, 38))
        too_long_whole = (places < 0) & (coefficient != 0) & (ndigits(coefficient.abs()) + target > PREC)
        failed = (too_long | too_long_whole).fill_null(False)
        own.append((failed, pl.lit(_ROUND_FAILED)))
        result = pl.when(places < 0).then(whole).otherwise(coefficient)
        exponent = pl.when(places < 0).then(pl.lit(0, I32)).otherwise(target)
        return pl.when(~failed & ~out_of_range).then(result), exponent, "decimal", level, own, None

    def _contains(
        self, container: FrameValue, item: FrameValue
    ) -> tuple[pl.Expr, list[tuple[pl.Expr, pl.Expr]]]:
        if container.kind == "string":
            if item.kind == "string":
                return container.main.str.contains(item.main, literal=True), []
            python_type = {
                "int": "int",
                "decimal": "decimal.Decimal",
                "bool": "bool",
                "date": "datetime.date",
                "datetime": "datetime.datetime",
                "duration": "datetime.timedelta",
                "list": "tuple",
            }.get(item.kind)
            if python_type is None:
                raise FrameUnsupported(f"contains() of a {item.kind} in a string")
            message = f"contains() failed: 'in <string>' requires string as left operand, not {python_type}"
            return pl.lit(None, pl.Boolean), [(pl.lit(True), pl.lit(message))]
        found, _ = self._membership(item, container)
        return found.fill_null(False), []

    def _business_call(self, node: ast.Call) -> FrameValue:
        code_literal = node.args[-1]
        assert isinstance(code_literal, ast.Literal) and isinstance(code_literal.value, str)
        code = code_literal.value
        value = self.compile(node.args[0])
        if node.func == "business_days_since":
            self.needs.add(("today",))
            if value.kind == "datetime":
                # an instant becomes a date in the debtor's primary zone, like today()
                self.needs.add(("primary",))
                start, level = self.plan.local_date(value.main.cast(UTC_US), value.level)
            else:
                start, level = value.main.cast(pl.Date), value.level
            count, level = self.plan.business_days("since", start, pl.col("#today"), code, level)
            err, msg = _errors([(None, value)])
            return self._value(
                "int",
                pl.when(value.main.is_not_null()).then(count.cast(I64)),
                [value],
                err=err,
                msg=msg,
                level=level,
            )
        steps = self.compile(node.args[1])
        start = _to_date(value) if value.kind == "datetime" else value.main.cast(pl.Date)
        present = value.main.is_not_null() & steps.main.is_not_null()
        too_far = present & (steps.main.abs() > _MAX_BUSINESS_DAYS)
        message = pl.concat_str(
            pl.lit(
                f"add_business_days() failed: add_business_days() moves at most "
                f"{_MAX_BUSINESS_DAYS:,} business days, got "
            ),
            steps.main.cast(pl.String),
        )
        day, level = self.plan.business_days(
            "add", start, pl.when(~too_far).then(steps.main.cast(I64)), code, _level(value, steps)
        )
        err, msg = _errors([(None, value), (None, steps)], [(too_far, message)])
        return self._value(
            "date", pl.when(present & ~too_far).then(day), [value, steps], err=err, msg=msg, level=level
        )

    def _context_call(self, node: ast.Call, function: Function) -> FrameValue:
        literal = node.args[0]
        assert isinstance(literal, ast.Literal)
        if node.func == "attempts":
            window = node.args[1]
            assert isinstance(window, ast.Literal) and isinstance(window.value, _dt.timedelta)
            seconds = int(window.value.total_seconds())
            # the unit decides: 7d counts calendar days in the debtor's zone, 168h is a sliding window
            unit = "d" if _is_calendar_duration(window.value) else "s"
            self.needs.add(("attempts", literal.value, seconds, unit))
            return FrameValue("int", pl.col(f"#attempts:{literal.value}:{seconds}:{unit}"))
        if node.func == "last_contact":
            self.needs.add(("last", literal.value))
            column = pl.col(f"#last:{literal.value}")
            return FrameValue("datetime", column.struct.field("at"), column.struct.field("off"))
        self.needs.add(("hold", literal.value))
        return FrameValue("bool", pl.col(f"#hold:{literal.value}"))


# -------------------------------------------------------------------------------------------------------
# small helpers


def _neg(value: pl.Expr) -> pl.Expr:
    """Negation of an Int128 expression (Polars has no unary minus for Int128)."""
    return pl.lit(0, I128) - value


def _is_calendar_duration(value: _dt.timedelta) -> bool:
    """Whether a duration was written in days or weeks (``7d``), which count calendar days in windows."""
    calendar_type = getattr(ast, "CalendarDuration", None)
    if calendar_type is None:
        return int(value.total_seconds()) % 86400 == 0
    return isinstance(value, calendar_type)


def _micros(value: _dt.timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def _out_of_int64(wide: pl.Expr) -> pl.Expr:
    return ~wide.is_between(_INT64_MIN, _INT64_MAX)


def _to_date(value: FrameValue) -> pl.Expr:
    """Python's ``value.date()`` for a datetime (in its own offset); a date as it is."""
    if value.kind == "datetime":
        assert value.aux is not None
        shifted = value.main.cast(UTC_US) + pl.duration(seconds=value.aux.cast(I64))
        return shifted.dt.date()
    return value.main.cast(pl.Date)


def _truncate_decimal(c: pl.Expr, e: pl.Expr) -> pl.Expr:
    """The integer part of ``c · 10^e`` (toward zero) as Int128; callers flag exponents above 18."""
    magnitude = c.abs()
    down = pl.when(e < -38).then(pl.lit(0, I128)).otherwise(magnitude // pow10(-e))
    whole = pl.when(e >= 0).then(magnitude * pow10(e)).otherwise(down)
    return pl.when(c < 0).then(_neg(whole)).otherwise(whole)


def _floor_ceil(c: pl.Expr, e: pl.Expr, name: str) -> tuple[pl.Expr, pl.Expr]:
    """floor or ceil of ``c · 10^e`` as Int128, and whether it leaves the emulated range."""
    scaled = c * pow10(e)
    far = e < -38
    divisor = pow10(-e)
    if name == "floor":
        fraction = (
            pl.when(far)
            .then(pl.when(c < 0).then(pl.lit(-1, I128)).otherwise(pl.lit(0, I128)))
            .otherwise(c // divisor)
        )
    else:
        fraction = (
            pl.when(far)
            .then(pl.when(c > 0).then(pl.lit(1, I128)).otherwise(pl.lit(0, I128)))
            .otherwise(_neg(_neg(c) // divisor))
        )
    return pl.when(e >= 0).then(scaled).otherwise(fraction), (e > 18) & (c != 0)


def literal_value(value: Any, vtype: Type) -> pl.Expr:
    """A Python value of ``vtype`` (as the rows backend holds it) as a frame literal."""
    kind = _kind_of(vtype)
    if value is None:
        return pack(_null_of(kind, _kind_of(vtype.item) if vtype.item else None))
    if kind == "decimal":
        c, e = decimal_parts(Decimal(value))
        return pl.struct(pl.lit(c, I128).alias("c"), pl.lit(e, I32).alias("e"))
    if kind == "datetime":
        offset = value.utcoffset()
        return pl.struct(
            pl.lit(value.astimezone(_dt.UTC), UTC_US).alias("at"),
            pl.lit(int(offset.total_seconds()) if offset else 0, I32).alias("off"),
        )
    if kind == "duration":
        return pl.lit(_micros(value), I64)
    if kind == "list":
        item = _kind_of(vtype.item)
        items: list[Any] = []
        for element in value:
            if item == "decimal":
                c, e = decimal_parts(Decimal(element))
                items.append(_canonical_key(c, e))
            elif item == "duration":
                items.append(_micros(element))
            elif item == "datetime":
                items.append(element.astimezone(_dt.UTC))
            else:
                items.append(element)
        return pl.lit(pl.Series([items], dtype=pl.List(_item_dtype(item))))
    return pl.lit(value, _scalar_dtype(kind))


def _canonical_key(c: int, e: int) -> str:
    if c == 0:
        return "0|0"
    while c % 10 == 0:
        c //= 10
        e += 1
    return f"{c}|{e}"


def python_decimal(c: int | None, e: int | None) -> Decimal | None:
    """The Python value of a frame decimal (for tests and conversions back to rows)."""
    if c is None or e is None:
        return None
    digits = tuple(int(d) for d in str(abs(c)))
    return Decimal((1 if c < 0 else 0, digits, e))


def python_value(value: Any, vtype: Type) -> Any:
    """A frame value (as Polars returns it to Python) as the rows backend holds it."""
    if value is None:
        return None
    kind = _kind_of(vtype)
    if kind == "decimal":
        return python_decimal(value["c"], value["e"])
    if kind == "datetime":
        zone = _dt.timezone(_dt.timedelta(seconds=value["off"]))
        return value["at"].astimezone(zone)
    if kind == "duration":
        return _dt.timedelta(microseconds=value)
    if kind == "list":
        item = _kind_of(vtype.item)
        out = []
        for element in value:
            if element is None:
                out.append(None)
            elif item == "decimal":
                coefficient, exponent = str(element).split("|")
                out.append(python_decimal(int(coefficient), int(exponent)))
            elif item == "duration":
                out.append(_dt.timedelta(microseconds=element))
            else:
                out.append(element)
        return tuple(out)
    return value


# -------------------------------------------------------------------------------------------------------
# holiday calendars and business days


def holiday_table(code: str, years: Sequence[int]) -> pl.DataFrame:
    """The public holidays (``day``, ``name``) of a calendar in the given years, as HolidayCalendar sees them.

    A day is a holiday when it is in the calendar's holidays of its own year (observed days included), which
    is what HolidayCalendar.is_holiday asks; the ``holidays`` package is called once per calendar and year.
    """
    from ..engine import timecalc

    calendar = timecalc.HolidayCalendar(code)
    rows: list[tuple[_dt.date, str | None]] = []
    for year in sorted(set(years)):
        if not 1 <= year <= 9999:
            continue
        holidays = timecalc._holidays_for(calendar.country, calendar.subdivision, year)
        rows.extend(
            (day, holidays.get(day)) for day in sorted(d for d in list(holidays.keys()) if d.year == year)
        )
    return pl.DataFrame(rows, schema={"day": pl.Date, "name": pl.String}, orient="row")


def _business_table(code: str, first: _dt.date, last: _dt.date) -> pl.DataFrame:
    """Every date from ``first`` to ``last`` with ``cum``, the count of business days up to it."""
    days = pl.DataFrame({"day": pl.date_range(first, last, "1d", eager=True)})
    holidays = holiday_table(code, range(first.year, last.year + 1))
    days = days.join(holidays.select("day", pl.lit(True).alias("holiday")), on="day", how="left")
    business = (days["day"].dt.weekday() <= 5) & days["holiday"].is_null()
    return days.select("day", business.alias("business")).with_columns(
        pl.col("business").cast(I64).cum_sum().alias("cum")
    )


def _apply_business_days(frame: pl.DataFrame, name: str, entry: _BusinessDays) -> pl.DataFrame:
    """Compute a business-days plan entry into column ``name`` (see :class:`_BusinessDays`)."""
    frame = frame.with_columns(entry.start.cast(pl.Date).alias(f"{name}#s"), entry.other.alias(f"{name}#o"))
    starts = frame[f"{name}#s"].drop_nulls()
    if starts.len() == 0 or (entry.kind == "add" and frame[f"{name}#o"].drop_nulls().len() == 0):
        return frame.with_columns(pl.lit(None, I64 if entry.kind == "since" else pl.Date).alias(name)).drop(
            f"{name}#s", f"{name}#o"
        )
    low, high = starts.min(), starts.max()
    assert isinstance(low, _dt.date) and isinstance(high, _dt.date)
    if entry.kind == "since":
        others = frame[f"{name}#o"].drop_nulls()
        low, high = min(low, others.min()), max(high, others.max())  # type: ignore[type-var]
    else:
        steps = frame[f"{name}#o"].drop_nulls()
        # business days are at least a third of all days in any calendar; the result is checked below
        reach = 3 * int(max(abs(steps.min()), abs(steps.max()))) + 30  # type: ignore[arg-type]
        low, high = low - _dt.timedelta(days=reach), high + _dt.timedelta(days=reach)
    first, last = low - _dt.timedelta(days=1), high + _dt.timedelta(days=1)
    if first.year < 2 or last.year > 9998:
        raise FrameUnsupported("business days near the ends of the calendar")
    table = _business_table(entry.code, first, last)
    cum = table.select(pl.col("day"), pl.col("cum"))
    frame = frame.join(
        cum.rename({"day": f"{name}#s", "cum": f"{name}#cs"}),
        on=f"{name}#s",
        how="left",
        maintain_order="left",
    )
    if entry.kind == "since":
        frame = frame.join(
            cum.rename({"day": f"{name}#o", "cum": f"{name}#co"}),
            on=f"{name}#o",
            how="left",
            maintain_order="left",
        )
        # business days after the start up to the end; negative when the start is later
        frame = frame.with_columns((pl.col(f"{name}#co") - pl.col(f"{name}#cs")).alias(name))
        return frame.drop(f"{name}#s", f"{name}#o", f"{name}#cs", f"{name}#co")
    business = table.filter(pl.col("business")).select(
        pl.col("cum").alias(f"{name}#t"), pl.col("day").alias(name)
    )
    flags = table.select(pl.col("day").alias(f"{name}#s"), pl.col("business").alias(f"{name}#b"))
    frame = frame.join(flags, on=f"{name}#s", how="left", maintain_order="left")
    steps_col = pl.col(f"{name}#o")
    # forward: the n-th business day after the start; backward: the n-th before it
    target = (
        pl.when(steps_col > 0)
        .then(pl.col(f"{name}#cs") + steps_col)
        .when(steps_col < 0)
        .then(pl.col(f"{name}#cs") - pl.col(f"{name}#b").cast(I64) + steps_col + 1)
    )
    frame = frame.with_columns(target.alias(f"{name}#t")).join(
        business, on=f"{name}#t", how="left", maintain_order="left"
    )
    frame = frame.with_columns(
        pl.when(steps_col == 0).then(pl.col(f"{name}#s")).otherwise(pl.col(name)).alias(name)
    )
    unresolved = frame.filter(
        pl.col(f"{name}#s").is_not_null() & steps_col.is_not_null() & pl.col(name).is_null()
    )
    if unresolved.height:
        raise FrameUnsupported("business days beyond the table built for them")
    return frame.drop(f"{name}#s", f"{name}#o", f"{name}#cs", f"{name}#b", f"{name}#t")
