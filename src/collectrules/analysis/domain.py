"""Value domains and regions of accounts, the ground the static analysis reasons on.

A *region* is a set of accounts written as a union of *boxes*. A box constrains some fields, each to a set
of values of that field's domain, and leaves every other field free. The domains are exact:

- numbers (``int`` and ``decimal`` fields): unions of intervals with open or closed bounds, in Python's
  :class:`~decimal.Decimal`; ``int`` fields keep integer bounds, so ``dpd > 30`` is the same set as
  ``dpd >= 31`` and ``dpd between 1 and 2.5`` the same as ``dpd between 1 and 2``;
- enums: the declared values; booleans: true and false;
- every other type (string, date, list …): only whether a value is present, so ``x is null`` is exact while
  a comparison on such a field is left to the caller, which calls it unknown.

Null is a value of the domain of an optional field without a default (the engine sees an empty value there)
and of no other field.

Questions such as "does any account match no rule?" are answered by :meth:`Space.find_outside`, a search
that cuts the holes out of a region box by box and stops at the first account left, rather than by building
the complement of a union, which grows exponentially with the number of rules. Regions only grow as large
as :data:`MAX_BOXES` and searches as long as :data:`MAX_STEPS`; past that, an operation raises
:class:`TooComplex` and the check that needed it is undecided rather than slow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, TypeAlias

from ..lang.types import Type

#: the one non-null value of a domain that only tracks presence (strings, dates, lists …)
PRESENT = "<present>"

#: the largest region (in boxes) an operation may build before giving up
MAX_BOXES = 2000
#: the most boxes a search for an account outside some regions may visit before giving up
MAX_STEPS = 20_000
#: above this many boxes, contained boxes are not looked for (that check compares every pair)
_SIMPLIFY_LIMIT = 200


class TooComplex(Exception):
    """A region outgrew :data:`MAX_BOXES`; whatever needed it cannot be decided."""


# ---- intervals ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interval:
    """Numbers between ``low`` and ``high``; a ``None`` bound is infinite (and then never closed)."""

    low: Decimal | None
    low_closed: bool
    high: Decimal | None
    high_closed: bool

    def contains(self, value: Decimal) -> bool:
        if self.low is not None and (value < self.low or (value == self.low and not self.low_closed)):
            return False
        if self.high is not None and (value > self.high or (value == self.high and not self.high_closed)):
            return False
        return True

    def __str__(self) -> str:
        low = "-inf" if self.low is None else _show_number(self.low)
        high = "inf" if self.high is None else _show_number(self.high)
        return f"{'[' if self.low_closed else '('}{low}, {high}{']' if self.high_closed else ')'}"


def _canonical(interval: Interval, integer: bool) -> Interval | None:
    """The interval in canonical form (integer bounds, closed, for ``int`` fields), or None when empty."""
    low, high = interval.low, interval.high
    low_closed = interval.low_closed and low is not None
    high_closed = interval.high_closed and high is not None
    if integer:
        if low is not None:
            low = low.to_integral_value(ROUND_CEILING) if low_closed \
                else low.to_integral_value(ROUND_FLOOR) + 1
            low_closed = True
        if high is not None:
            high = high.to_integral_value(ROUND_FLOOR) if high_closed \
                else high.to_integral_value(ROUND_CEILING) - 1
            high_closed = True
    if low is not None and high is not None:
        if low > high or (low == high and not (low_closed and high_closed)):
            return None
    return Interval(low, low_closed, high, high_closed)


def _low_key(interval: Interval) -> tuple[int, Decimal, int]:
    # -inf first; at an equal bound, the closed one starts earlier
    if interval.low is None:
        return (0, Decimal(0), 0)
    return (1, interval.low, 0 if interval.low_closed else 1)


def _touches(first: Interval, second: Interval, integer: bool) -> bool:
    """Whether ``second`` (starting no earlier than ``first``) overlaps or continues ``first``."""
    if first.high is None or second.low is None:
        return True
    if integer:
        return second.low <= first.high + 1
    return second.low < first.high or (second.low == first.high and (first.high_closed or second.low_closed))


def _hull(first: Interval, second: Interval) -> Interval:
    if first.high is None or second.high is None:
        return Interval(first.low, first.low_closed, None, False)
    if first.high > second.high:
        return Interval(first.low, first.low_closed, first.high, first.high_closed)
    if second.high > first.high:
        return Interval(first.low, first.low_closed, second.high, second.high_closed)
    return Interval(first.low, first.low_closed, first.high, first.high_closed or second.high_closed)


def normalize_intervals(intervals: Iterable[Interval], integer: bool) -> tuple[Interval, ...]:
    """Sorted, disjoint, merged, canonical intervals covering the same numbers."""
    canonical = sorted((c for c in (_canonical(i, integer) for i in intervals) if c is not None),
                       key=_low_key)
    merged: list[Interval] = []
    for interval in canonical:
        if merged and _touches(merged[-1], interval, integer):
            merged[-1] = _hull(merged[-1], interval)
        else:
            merged.append(interval)
    return tuple(merged)


def _intersect_two(a: Interval, b: Interval) -> Interval:
    if a.low is None:
        low, low_closed = b.low, b.low_closed
    elif b.low is None or a.low > b.low:
        low, low_closed = a.low, a.low_closed
    elif b.low > a.low:
        low, low_closed = b.low, b.low_closed
    else:
        low, low_closed = a.low, a.low_closed and b.low_closed
    if a.high is None:
        high, high_closed = b.high, b.high_closed
    elif b.high is None or a.high < b.high:
        high, high_closed = a.high, a.high_closed
    elif b.high < a.high:
        high, high_closed = b.high, b.high_closed
    else:
        high, high_closed = a.high, a.high_closed and b.high_closed
    return Interval(low, low_closed, high, high_closed)


def intersect_intervals(xs: tuple[Interval, ...], ys: tuple[Interval, ...],
                        integer: bool) -> tuple[Interval, ...]:
    return normalize_intervals((_intersect_two(x, y) for x in xs for y in ys), integer)


def complement_intervals(xs: tuple[Interval, ...], integer: bool) -> tuple[Interval, ...]:
    """The numbers not in ``xs`` (which must be normalized)."""
    gaps: list[Interval] = []
    previous: Interval | None = None
    for interval in xs:
        if previous is None:
            if interval.low is not None:
                gaps.append(Interval(None, False, interval.low, not interval.low_closed))
        else:
            assert previous.high is not None and interval.low is not None
            gaps.append(Interval(previous.high, not previous.high_closed,
                                 interval.low, not interval.low_closed))
        previous = interval
    if previous is None:
        gaps.append(Interval(None, False, None, False))
    elif previous.high is not None:
        gaps.append(Interval(previous.high, not previous.high_closed, None, False))
    return normalize_intervals(gaps, integer)


def _show_number(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


# ---- value sets per field ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumberSet:
    """Values of a number field: normalized intervals, plus null when ``null`` is set."""

    intervals: tuple[Interval, ...]
    null: bool = False


ValueSet: TypeAlias = NumberSet | frozenset[Any]


@dataclass(frozen=True)
class FieldDomain:
    """The values a field can take, as the analysis models them."""

    name: str
    #: "number" (intervals) or "finite" (enums, booleans, and presence-only fields)
    kind: str
    integer: bool = False
    #: the non-null values of a finite domain, in declaration order
    values: tuple[Any, ...] = ()
    nullable: bool = False
    #: the field's declared type
    type: Type | None = None

    @property
    def presence_only(self) -> bool:
        return self.kind == "finite" and self.values == (PRESENT,)

    def full(self) -> ValueSet:
        if self.kind == "number":
            return NumberSet((Interval(None, False, None, False),), self.nullable)
        return frozenset(self.values) | ({None} if self.nullable else frozenset())

    def empty(self) -> ValueSet:
        return NumberSet((), False) if self.kind == "number" else frozenset()

    def nulls(self) -> ValueSet:
        """The set holding only null (empty when the field is never null)."""
        if self.kind == "number":
            return NumberSet((), self.nullable)
        return frozenset({None}) if self.nullable else frozenset()

    def numbers(self, intervals: Iterable[Interval]) -> NumberSet:
        return NumberSet(normalize_intervals(intervals, self.integer), False)

    def is_empty(self, values: ValueSet) -> bool:
        if isinstance(values, NumberSet):
            return not values.intervals and not values.null
        return not values

    def is_full(self, values: ValueSet) -> bool:
        return values == self.full()

    def intersect(self, a: ValueSet, b: ValueSet) -> ValueSet:
        if isinstance(a, NumberSet) and isinstance(b, NumberSet):
            return NumberSet(intersect_intervals(a.intervals, b.intervals, self.integer), a.null and b.null)
        assert isinstance(a, frozenset) and isinstance(b, frozenset)
        return a & b

    def union(self, a: ValueSet, b: ValueSet) -> ValueSet:
        if isinstance(a, NumberSet) and isinstance(b, NumberSet):
            return NumberSet(normalize_intervals(a.intervals + b.intervals, self.integer), a.null or b.null)
        assert isinstance(a, frozenset) and isinstance(b, frozenset)
        return a | b

    def complement(self, values: ValueSet) -> ValueSet:
        if isinstance(values, NumberSet):
            return NumberSet(complement_intervals(values.intervals, self.integer),
                             self.nullable and not values.null)
        return self.full() - values  # type: ignore[operator]

    def is_subset(self, a: ValueSet, b: ValueSet) -> bool:
        if isinstance(a, NumberSet) and isinstance(b, NumberSet):
            if a.null and not b.null:
                return False
            return intersect_intervals(a.intervals, b.intervals, self.integer) == a.intervals
        assert isinstance(a, frozenset) and isinstance(b, frozenset)
        return a <= b

    def pick(self, values: ValueSet, *, avoid_zero: bool = False) -> Any:
        """A readable member of a non-empty set: 0 or the bound nearest to it, the first enum value,
        false before true; null only when nothing else is in the set. ``avoid_zero`` prefers another
        number, for fields the analysis saw in arithmetic (a zero divisor would fail there)."""
        if isinstance(values, NumberSet):
            candidates = [_readable_number(i, avoid_zero) for i in values.intervals]
            if not candidates:
                return None
            best = min(candidates, key=lambda v: (avoid_zero and v == 0, abs(v), v < 0))
            return int(best) if self.integer else best
        for value in self.values:
            if value in values:
                return value
        return None

    def show(self, value: Any) -> str:
        """A value as the counterexample shows it (and as a data file would hold it)."""
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, Decimal):
            return _show_number(value)
        if value == PRESENT:
            return sample_text(self.type)
        return str(value)


def _readable_number(interval: Interval, avoid_zero: bool = False) -> Decimal:
    zero = Decimal(0)
    if interval.contains(zero):
        if avoid_zero:
            for other in (Decimal(1), Decimal(-1)):
                if interval.contains(other):
                    return other
            if interval.high is not None and interval.high > zero:
                return _step_inside(zero, interval.high, interval.high_closed)
            if interval.low is not None and interval.low < zero:
                return -_step_inside(zero, -interval.low, interval.low_closed)
        return zero
    if interval.low is not None and interval.low >= zero:
        if interval.low_closed:
            return interval.low
        return _step_inside(interval.low, interval.high, interval.high_closed)
    assert interval.high is not None
    if interval.high_closed:
        return interval.high
    return -_step_inside(-interval.high, None if interval.low is None else -interval.low, interval.low_closed)


def _step_inside(start: Decimal, end: Decimal | None, end_closed: bool) -> Decimal:
    """A short number just above ``start`` (excluded) and below ``end``."""
    candidates = [start.to_integral_value(ROUND_FLOOR) + 1]
    candidates += [start + Decimal(1).scaleb(-digits) for digits in range(0, 5)]
    for candidate in candidates:
        if candidate > start and (end is None or candidate < end or (candidate == end and end_closed)):
            return candidate
    assert end is not None
    return (start + end) / 2


#: a value of each presence-only type, for counterexamples (the analysis never constrains these values)
_SAMPLES = {"string": "x", "date": "2026-01-01", "datetime": "2026-01-01T00:00:00Z", "duration": "1d",
            "timezone": "UTC"}


def sample_text(field_type: Type | None) -> str:
    if field_type is None:
        return "x"
    if field_type.kind == "list":
        return sample_text(field_type.item) if field_type.item is not None else "x"
    if field_type.kind in ("int", "decimal"):
        return "1"
    if field_type.kind == "bool":
        return "false"
    if field_type.kind == "enum" and field_type.enum_values:
        return field_type.enum_values[0]
    return _SAMPLES.get(field_type.kind, "x")


# ---- boxes and regions -------------------------------------------------------------------------------


class Box:
    """Accounts whose constrained fields take values in the given sets; a field not named is free."""

    __slots__ = ("fields", "_key")

    def __init__(self, fields: Mapping[str, ValueSet]) -> None:
        self.fields: dict[str, ValueSet] = dict(fields)
        self._key = tuple(sorted(self.fields.items(), key=lambda item: item[0]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Box) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return "Box(" + ", ".join(f"{k}={v}" for k, v in self._key) + ")"


@dataclass(frozen=True)
class Region:
    """A union of non-empty boxes; no boxes is the empty region."""

    boxes: tuple[Box, ...]

    @property
    def empty(self) -> bool:
        return not self.boxes


class Space:
    """The accounts a policy's fields describe, and the set algebra over regions of them."""

    def __init__(self, domains: Mapping[str, FieldDomain]) -> None:
        self.domains = dict(domains)
        self.everything = Region((Box({}),))
        self.nothing = Region(())

    def constrain(self, name: str, values: ValueSet) -> Region:
        """Accounts whose field ``name`` is in ``values``."""
        domain = self.domains[name]
        if domain.is_empty(values):
            return self.nothing
        if domain.is_full(values):
            return self.everything
        return Region((Box({name: values}),))

    # ---- algebra -------------------------------------------------------------------------------------

    def _meet(self, a: Box, b: Box) -> Box | None:
        fields = dict(a.fields)
        for name, values in b.fields.items():
            if name in fields:
                domain = self.domains[name]
                values = domain.intersect(fields[name], values)
                if domain.is_empty(values):
                    return None
            fields[name] = values
        return Box(fields)

    def intersect(self, a: Region, b: Region) -> Region:
        if a.empty or b.empty:
            return self.nothing
        if a is self.everything or a == self.everything:
            return b
        if b is self.everything or b == self.everything:
            return a
        met = [m for x in a.boxes for y in b.boxes if (m := self._meet(x, y)) is not None]
        return self._region(met)

    def union(self, a: Region, b: Region) -> Region:
        if a.empty:
            return b
        if b.empty:
            return a
        return self._region([*a.boxes, *b.boxes])

    def union_all(self, regions: Iterable[Region]) -> Region:
        result = self.nothing
        for region in regions:
            result = self.union(result, region)
        return result

    def subtract(self, a: Region, b: Region) -> Region:
        """The accounts of ``a`` that are not in ``b``.

        Each box of ``b`` is cut out of the boxes it meets; a box it does not meet is kept whole, so the
        result only fragments where ``b`` really takes something away.
        """
        boxes = list(a.boxes)
        for hole in b.boxes:
            cut: list[Box] = []
            for box in boxes:
                if self._meet(box, hole) is None:
                    cut.append(box)
                else:
                    cut.extend(self._outside(box, hole))
            boxes = self._region(cut).boxes if len(cut) > _SIMPLIFY_LIMIT else cut
            if not boxes:
                return self.nothing
        return self._region(boxes)

    def complement(self, a: Region) -> Region:
        return self.subtract(self.everything, a)

    def _outside(self, box: Box, hole: Box) -> list[Box]:
        """``box`` minus ``hole`` as disjoint boxes: the part outside the hole's first field, then the part
        inside the first and outside the second, and so on."""
        pieces: list[Box] = []
        inside = dict(box.fields)
        for name, values in sorted(hole.fields.items(), key=lambda item: item[0]):
            domain = self.domains[name]
            mine = inside.get(name, domain.full())
            outside = domain.intersect(mine, domain.complement(values))
            if not domain.is_empty(outside):
                pieces.append(Box({**inside, name: outside}))
            inside[name] = domain.intersect(mine, values)
            if domain.is_empty(inside[name]):
                break
        return pieces

    def subset(self, a: Region, b: Region) -> bool:
        return self.find_outside(a, (b,)) is None

    def find_outside(self, region: Region, holes: Iterable[Region]) -> Box | None:
        """A non-empty box of accounts in ``region`` and in none of ``holes``; None when there is none."""
        found = self.boxes_outside(region, holes, limit=1)
        return found[0] if found else None

    def boxes_outside(self, region: Region, holes: Iterable[Region], *, limit: int) -> list[Box]:
        """Up to ``limit`` disjoint non-empty boxes of accounts in ``region`` and in none of ``holes``.

        A depth-first search: a box that no hole meets is found; otherwise the first hole that meets it is
        cut out and the pieces are searched in turn. It visits at most :data:`MAX_STEPS` boxes and raises
        :class:`TooComplex` beyond, so a question about a huge policy fails fast instead of slowly.
        """
        hole_boxes = [box for hole in holes for box in hole.boxes]
        found: list[Box] = []
        steps = 0
        stack: list[tuple[Box, list[Box]]] = [(box, [h for h in hole_boxes if self._meet(box, h) is not None])
                                              for box in reversed(region.boxes)]
        while stack:
            box, meeting = stack.pop()
            if not meeting:
                found.append(box)
                if len(found) >= limit:
                    break
                continue
            steps += 1
            if steps > MAX_STEPS:
                raise TooComplex(f"more than {MAX_STEPS} search steps")
            hole, rest = meeting[0], meeting[1:]
            for piece in reversed(self._outside(box, hole)):
                stack.append((piece, [h for h in rest if self._meet(piece, h) is not None]))
        return found

    def _box_within(self, a: Box, b: Box) -> bool:
        for name, values in b.fields.items():
            mine = a.fields.get(name)
            if mine is None or not self.domains[name].is_subset(mine, values):
                return False
        return True

    def _region(self, boxes: list[Box]) -> Region:
        unique = list(dict.fromkeys(boxes))
        if len(unique) > MAX_BOXES:
            raise TooComplex(f"more than {MAX_BOXES} boxes")
        unique = self._merge(unique)
        if len(unique) <= _SIMPLIFY_LIMIT:
            unique = self._drop_contained(unique)
        if any(not box.fields for box in unique):
            return self.everything
        return Region(tuple(unique))

    def _drop_contained(self, boxes: list[Box]) -> list[Box]:
        """Without the boxes that lie inside another one (of two equal boxes, the first stays)."""
        kept: list[Box] = []
        for index, box in enumerate(boxes):
            if not any(j != index and self._box_within(box, other)
                       and (j < index or not self._box_within(other, box))
                       for j, other in enumerate(boxes)):
                kept.append(box)
        return kept

    def _merge(self, boxes: list[Box]) -> list[Box]:
        """Join boxes that constrain the same fields and differ in one of them only (hashing, not pairs)."""
        changed = True
        while changed and len(boxes) > 1:
            changed = False
            names = sorted({name for box in boxes for name in box.fields})
            for name in names:
                groups: dict[tuple[Any, ...], list[Box]] = {}
                for box in boxes:
                    if name in box.fields:
                        rest = tuple(item for item in box._key if item[0] != name)
                        groups.setdefault(rest, []).append(box)
                joined: list[Box] = []
                consumed: set[int] = set()
                for group in groups.values():
                    if len(group) < 2:
                        continue
                    domain = self.domains[name]
                    values = group[0].fields[name]
                    for other in group[1:]:
                        values = domain.union(values, other.fields[name])
                    fields = dict(group[0].fields)
                    if domain.is_full(values):
                        del fields[name]
                    else:
                        fields[name] = values
                    joined.append(Box(fields))
                    consumed.update(id(box) for box in group)
                if joined:
                    boxes = list(dict.fromkeys([b for b in boxes if id(b) not in consumed] + joined))
                    changed = True
        return boxes

    # ---- witnesses -----------------------------------------------------------------------------------

    def contains(self, region: Region, values: Mapping[str, Any]) -> bool:
        """Whether the account with these field values (a missing field is null) lies in ``region``."""
        return any(all(self._holds(name, allowed, values.get(name)) for name, allowed in box.fields.items())
                   for box in region.boxes)

    def _holds(self, name: str, allowed: ValueSet, value: Any) -> bool:
        if isinstance(allowed, NumberSet):
            if value is None:
                return allowed.null
            return any(interval.contains(Decimal(value)) for interval in allowed.intervals)
        if value is not None and self.domains[name].presence_only:
            value = PRESENT
        return value in allowed

    # ---- witnesses -----------------------------------------------------------------------------------

    def witness(self, region: Region, avoid_zero: frozenset[str] = frozenset()) -> dict[str, Any] | None:
        """Values for the constrained fields of one account in ``region`` (None when it is empty).

        Of the accounts the boxes offer, the one with the fewest nulls and then the smallest numbers is
        chosen: it reads most easily. Fields in ``avoid_zero`` are not given 0 when their set holds another
        number.
        """
        candidates = [{name: self.domains[name].pick(vs, avoid_zero=name in avoid_zero)
                       for name, vs in box.fields.items()} for box in region.boxes]
        if not candidates:
            return None

        def plainness(values: dict[str, Any]) -> tuple[int, Decimal]:
            nulls = sum(1 for v in values.values() if v is None)
            size = sum((abs(Decimal(v)) for v in values.values()
                        if isinstance(v, int | Decimal) and not isinstance(v, bool)), Decimal(0))
            return nulls, size

        return min(candidates, key=plainness)

    def free_value(self, name: str, *, avoid_zero: bool = False) -> Any:
        """The value shown for a field a witness leaves free: readable, and never null."""
        domain = self.domains[name]
        if domain.kind == "number":
            number = 1 if avoid_zero else 0
            return number if domain.integer else Decimal(number)
        return domain.values[0]


def domain_for(name: str, field_type: Type, *, nullable: bool) -> FieldDomain:
    """The analysis domain of a field of ``field_type``."""
    if field_type.kind in ("int", "decimal"):
        return FieldDomain(name, "number", integer=field_type.kind == "int", nullable=nullable,
                           type=field_type)
    if field_type.kind == "enum":
        return FieldDomain(name, "finite", values=tuple(field_type.enum_values), nullable=nullable,
                           type=field_type)
    if field_type.kind == "bool":
        return FieldDomain(name, "finite", values=(False, True), nullable=nullable, type=field_type)
    return FieldDomain(name, "finite", values=(PRESENT,), nullable=nullable, type=field_type)
