"""Conditions as regions of accounts: where a condition is true and where it is false.

Every condition is bracketed from both sides: an :class:`Approx` holds a region ``under`` whose accounts
certainly satisfy it and a region ``over`` outside which no account does. For conditions built only from
what the analysis models, the two are the same region and the answer is exact:

- ``field op literal`` (either way round) for ``== != < <= > >=``, ``field between a and b``,
  ``field in [...]`` / ``not in``, ``field is null`` / ``is not null``, on number, enum and bool fields
  (``is null`` on fields of every type), a bool field used as a condition, ``true``/``false``/``null``;
- ``not``, ``and``, ``or`` and ``if … then … else`` over those, in the engine's three-valued logic (a
  comparison with null is false; ``not null`` is null; a condition that is null does not match);
- derived names, inlined: ``weak_debtor`` stands for its definition, and a derived value that is an
  ``if`` chain of literals or fields (``bucket``) is compared case by case; ``coalesce(field, literal)``.

Anything else (arithmetic, other functions, scores, comparisons of two fields, comparisons on strings or
dates) is *unknown*: it widens ``over`` to every account and shrinks ``under`` to none, and its text is
kept so a finding can say what stopped the analysis. Nothing unknown is ever guessed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..lang import ast
from ..policy import model as M
from .domain import Interval, Region, Space, TooComplex, ValueSet, domain_for

#: at most this many unknown parts are named in a message
_MAX_REASONS = 3


@dataclass(frozen=True)
class Approx:
    """A set of accounts known from inside (``under``) and outside (``over``)."""

    under: Region
    over: Region
    #: the parts of the source the analysis could not model, as written
    unknowns: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        return self.under is self.over or self.under == self.over


@dataclass(frozen=True)
class Truth:
    """Where a condition evaluates to true, and where to false (elsewhere it is null)."""

    true: Approx
    false: Approx


@dataclass(frozen=True)
class Const:
    value: Any


@dataclass(frozen=True)
class FieldRef:
    name: str


@dataclass(frozen=True)
class Opaque:
    reason: str


Val = Const | FieldRef | Opaque
#: a value expression as cases: in the accounts of the guard, the expression has this value
Cases = list[tuple[Approx, Val]]

_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


def _merge(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(reason for group in groups for reason in group))


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    return Decimal(value)


def _same_kind(a: Any, b: Any) -> tuple[Any, Any] | None:
    """Both values in one comparable form (numbers as Decimal), or None when they do not compare."""
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na, nb
    if type(a) is type(b):
        return a, b
    return None


class ConditionAnalyzer:
    """Turns a policy's conditions into :class:`Truth` values over the accounts its fields describe."""

    def __init__(self, policy: M.Policy) -> None:
        self.policy = policy
        self.space = Space({name: domain_for(name, spec.type, nullable=spec.optional and spec.default is None)
                            for name, spec in policy.fields.items()})
        self.everything = Approx(self.space.everything, self.space.everything)
        self.nothing = Approx(self.space.nothing, self.space.nothing)
        self._derived = {d.name: d for d in policy.derive}
        self._truths: dict[str, Truth] = {}
        self._values: dict[str, Cases] = {}
        self._fields: dict[str, frozenset[str]] = {}
        #: fields read inside parts the analysis does not model (arithmetic, function calls); examples
        #: avoid 0 for them, so that the unmodelled part does not fail (a division by zero) on the example
        self.opaque_fields: set[str] = set()

    # ---- the algebra over approximations -------------------------------------------------------------

    def both(self, a: Approx, b: Approx) -> Approx:
        under = self.space.intersect(a.under, b.under)
        over = under if a.exact and b.exact else self.space.intersect(a.over, b.over)
        return Approx(under, over, _merge(a.unknowns, b.unknowns))

    def either(self, a: Approx, b: Approx) -> Approx:
        under = self.space.union(a.under, b.under)
        over = under if a.exact and b.exact else self.space.union(a.over, b.over)
        return Approx(under, over, _merge(a.unknowns, b.unknowns))

    def either_all(self, items: Iterable[Approx]) -> Approx:
        result = self.nothing
        for item in items:
            result = self.either(result, item)
        return result

    def negate(self, a: Approx) -> Approx:
        """The accounts not in ``a``."""
        under = self.space.complement(a.over)
        over = under if a.exact else self.space.complement(a.under)
        return Approx(under, over, a.unknowns)

    def exact(self, region: Region) -> Approx:
        return Approx(region, region)

    def unknown(self, reason: str) -> Truth:
        part = Approx(self.space.nothing, self.space.everything, (reason,))
        return Truth(part, part)

    def _decided(self, value: bool | None) -> Truth:
        if value is None:
            return Truth(self.nothing, self.nothing)
        return Truth(self.everything, self.nothing) if value else Truth(self.nothing, self.everything)

    def _exact_truth(self, true: Region) -> Truth:
        """A two-valued condition (a comparison is never null): false exactly where it is not true."""
        return Truth(self.exact(true), self.exact(self.space.complement(true)))

    # ---- entry points --------------------------------------------------------------------------------

    def condition(self, expression: M.Expression) -> Truth:
        """Where ``expression`` (a bool condition of the policy) is true and where it is false."""
        try:
            return self._truth(expression.typed.expr, expression.source)
        except TooComplex:
            return self.unknown(f"{_quoted(expression.source)} (too many cases to analyze)")

    def fields_of(self, expression: M.Expression) -> frozenset[str]:
        """The fields ``expression`` reads, directly or through derived names."""
        return self._fields_in(expression.typed.expr)

    def _fields_in(self, node: ast.Expr) -> frozenset[str]:
        found: set[str] = set()
        for name in ast.referenced_names(node):
            if name.name in self.policy.fields:
                found.add(name.name)
            elif name.name in self._derived:
                if name.name not in self._fields:
                    self._fields[name.name] = frozenset()  # derived names form no cycles; this guards anyway
                    self._fields[name.name] = self._fields_in(self._derived[name.name].expr.typed.expr)
                found |= self._fields[name.name]
        return frozenset(found)

    # ---- conditions ----------------------------------------------------------------------------------

    def _truth(self, node: ast.Expr, source: str) -> Truth:  # noqa: C901 - one branch per node type
        match node:
            case ast.Literal(kind="bool", value=value):
                return self._decided(bool(value))
            case ast.Literal(kind="null"):
                return self._decided(None)
            case ast.Name(name=name):
                return self._name_truth(name, node, source)
            case ast.Unary(op="not", operand=operand):
                inner = self._truth(operand, source)
                return Truth(inner.false, inner.true)
            case ast.BinOp(op="and", left=left, right=right):
                a, b = self._truth(left, source), self._truth(right, source)
                return Truth(self.both(a.true, b.true), self.either(a.false, b.false))
            case ast.BinOp(op="or", left=left, right=right):
                a, b = self._truth(left, source), self._truth(right, source)
                return Truth(self.either(a.true, b.true), self.both(a.false, b.false))
            case ast.BinOp(op=op, left=left, right=right) if op in ast.COMPARISON_OPS:
                left_cases, right_cases = self._cases(left, source), self._cases(right, source)
                return self._comparison(op, left_cases, right_cases, node, source)
            case ast.In():
                return self._in(node, source)
            case ast.Between():
                return self._between(node, source)
            case ast.IsNull(value=value, negated=negated):
                result = self._is_null(self._cases(value, source), node, source)
                return Truth(result.false, result.true) if negated else result
            case ast.If(cond=cond, then=then, otherwise=otherwise):
                test = self._truth(cond, source)
                taken, skipped = test.true, self.negate(test.true)
                a, b = self._truth(then, source), self._truth(otherwise, source)
                return Truth(self.either(self.both(taken, a.true), self.both(skipped, b.true)),
                             self.either(self.both(taken, a.false), self.both(skipped, b.false)))
        return self.unknown(self._describe(node, source))

    def _name_truth(self, name: str, node: ast.Expr, source: str) -> Truth:
        if name in self.policy.fields:
            domain = self.space.domains[name]
            if domain.values == (False, True):
                return Truth(self.exact(self.space.constrain(name, frozenset({True}))),
                             self.exact(self.space.constrain(name, frozenset({False}))))
            return self.unknown(self._describe(node, source))
        derived = self._derived.get(name)
        if derived is None:
            return self.unknown(self._describe(node, source))
        if name not in self._truths:
            self._truths[name] = self._truth(derived.expr.typed.expr, derived.expr.source)
        return self._truths[name]

    # ---- values --------------------------------------------------------------------------------------

    def _cases(self, node: ast.Expr, source: str) -> Cases:  # noqa: C901 - one branch per node type
        match node:
            case ast.Literal(kind=kind, value=value):
                if kind in ("int", "decimal", "percent"):
                    return [(self.everything, Const(Decimal(value)))]  # type: ignore[arg-type]
                return [(self.everything, Const(value))]
            case ast.ListLit(items=items) if all(isinstance(i, ast.Literal) for i in items):
                values = []
                for item in items:
                    [(_, const)] = self._cases(item, source)
                    assert isinstance(const, Const)
                    values.append(const.value)
                return [(self.everything, Const(tuple(values)))]
            case ast.Name(name=name) if name in self.policy.fields:
                return [(self.everything, FieldRef(name))]
            case ast.Name(name=name) if name in self._derived:
                if name not in self._values:
                    derived = self._derived[name]
                    self._values[name] = self._cases(derived.expr.typed.expr, derived.expr.source)
                return self._values[name]
            case ast.If(cond=cond, then=then, otherwise=otherwise):
                test = self._truth(cond, source)
                taken, skipped = test.true, self.negate(test.true)
                cases: Cases = []
                for guard, branch in ((taken, then), (skipped, otherwise)):
                    for inner, value in self._cases(branch, source):
                        combined = self.both(guard, inner)
                        if not combined.over.empty:
                            cases.append((combined, value))
                return cases
            case ast.Call(func="coalesce", args=args):
                return self._coalesce(args, source)
            case ast.BinOp(op=op) if op in ast.LOGICAL_OPS or op in ast.COMPARISON_OPS:
                return self._bool_cases(self._truth(node, source))
            case ast.Unary(op="not") | ast.In() | ast.Between() | ast.IsNull():
                return self._bool_cases(self._truth(node, source))
        return [(self.everything, Opaque(self._describe(node, source)))]

    def _bool_cases(self, truth: Truth) -> Cases:
        null = self.negate(self.either(truth.true, truth.false))
        cases: Cases = [(truth.true, Const(True)), (truth.false, Const(False))]
        if not null.over.empty:
            cases.append((null, Const(None)))
        return cases

    def _coalesce(self, args: tuple[ast.Expr, ...], source: str) -> Cases:
        """``coalesce(a, b, …)``: the first argument that is not null, case by case."""
        cases: Cases = []
        remaining = self.everything  # the accounts for which every argument so far was null
        for arg in args:
            still_null: list[Approx] = []
            for guard, value in self._cases(arg, source):
                here = self.both(remaining, guard)
                if here.over.empty:
                    continue
                if isinstance(value, Const):
                    if value.value is None:
                        still_null.append(here)
                    else:
                        cases.append((here, value))
                elif isinstance(value, FieldRef):
                    domain = self.space.domains[value.name]
                    nulls = self.exact(self.space.constrain(value.name, domain.nulls()))
                    cases.append((self.both(here, self.negate(nulls)), value))
                    still_null.append(self.both(here, nulls))
                else:
                    # the unknown value may or may not be null
                    cases.append((here, value))
                    still_null.append(Approx(self.space.nothing, here.over, here.unknowns))
            remaining = self.either_all(still_null)
            if remaining.over.empty:
                return cases
        cases.append((remaining, Const(None)))
        return cases

    # ---- atoms ---------------------------------------------------------------------------------------

    def _combine(self, pairs: Iterable[tuple[Approx, Truth]]) -> Truth:
        true_parts, false_parts = [], []
        for guard, truth in pairs:
            true_parts.append(self.both(guard, truth.true))
            false_parts.append(self.both(guard, truth.false))
        return Truth(self.either_all(true_parts), self.either_all(false_parts))

    def _comparison(self, op: str, left: Cases, right: Cases, node: ast.Expr, source: str) -> Truth:
        pairs = []
        for lguard, lvalue in left:
            for rguard, rvalue in right:
                guard = self.both(lguard, rguard)
                if not guard.over.empty:
                    pairs.append((guard, self._compare_values(lvalue, op, rvalue, node, source)))
        return self._combine(pairs)

    def _compare_values(self, left: Val, op: str, right: Val, node: ast.Expr, source: str) -> Truth:
        if isinstance(left, Opaque) or isinstance(right, Opaque):
            reasons = tuple(v.reason for v in (left, right) if isinstance(v, Opaque))
            part = Approx(self.space.nothing, self.space.everything, reasons)
            return Truth(part, part)
        if isinstance(left, Const) and isinstance(right, Const):
            if left.value is None or right.value is None:
                return self._decided(False)
            pair = _same_kind(left.value, right.value)
            if pair is None:
                return self.unknown(self._describe(node, source))
            try:
                return self._decided(_COMPARE[op](*pair))
            except TypeError:
                return self.unknown(self._describe(node, source))
        if isinstance(left, Const) and isinstance(right, FieldRef):
            left, op, right = right, _FLIPPED[op], left
        if isinstance(left, FieldRef) and isinstance(right, Const):
            true = self._field_compare(left.name, op, right.value)
            if true is None:
                return self.unknown(self._describe(node, source))
            return self._exact_truth(true)
        return self.unknown(self._describe(node, source) + " (compares two fields)")

    def _field_compare(self, name: str, op: str, value: Any) -> Region | None:
        """Where ``name op value`` is true; None when the analysis does not model it."""
        domain = self.space.domains[name]
        if value is None:
            return self.space.nothing
        if domain.kind == "number":
            number = _number(value)
            if number is None:
                return None
            intervals = {
                "==": [Interval(number, True, number, True)],
                "!=": [Interval(None, False, number, False), Interval(number, False, None, False)],
                "<": [Interval(None, False, number, False)],
                "<=": [Interval(None, False, number, True)],
                ">": [Interval(number, False, None, False)],
                ">=": [Interval(number, True, None, False)],
            }[op]
            return self.space.constrain(name, domain.numbers(intervals))
        if domain.presence_only:
            return None
        compare = _COMPARE[op]
        members: set[Any] = set()
        for member in domain.values:
            pair = _same_kind(member, value)
            if pair is None:
                if op in ("==", "!="):
                    if op == "!=":
                        members.add(member)
                    continue
                return None
            try:
                if compare(*pair):
                    members.add(member)
            except TypeError:
                return None
        return self.space.constrain(name, frozenset(members))

    def _members(self, name: str, items: tuple[Any, ...]) -> ValueSet | None:
        domain = self.space.domains[name]
        if domain.kind == "number":
            numbers = [n for n in (_number(i) for i in items) if n is not None]
            return domain.numbers(Interval(n, True, n, True) for n in numbers)
        if domain.presence_only:
            return None
        found = set()
        for member in domain.values:
            for item in items:
                pair = _same_kind(member, item)
                if pair is not None and pair[0] == pair[1]:
                    found.add(member)
        return frozenset(found)

    def _in(self, node: ast.In, source: str) -> Truth:
        pairs = []
        for vguard, value in self._cases(node.value, source):
            for cguard, container in self._cases(node.container, source):
                guard = self.both(vguard, cguard)
                if guard.over.empty:
                    continue
                pairs.append((guard, self._in_values(value, container, node, source)))
        return self._combine(pairs)

    def _in_values(self, value: Val, container: Val, node: ast.In, source: str) -> Truth:
        if isinstance(value, Opaque) or not isinstance(container, Const) \
                or not isinstance(container.value, tuple):
            return self.unknown(self._describe(node, source))
        items = container.value
        if isinstance(value, Const):
            if value.value is None:
                return self._decided(False)
            hit = any((pair := _same_kind(value.value, item)) is not None and pair[0] == pair[1]
                      for item in items)
            return self._decided(hit != node.negated)
        members = self._members(value.name, items)
        if members is None:
            return self.unknown(self._describe(node, source))
        inside = self.space.constrain(value.name, members)
        if not node.negated:
            return self._exact_truth(inside)
        domain = self.space.domains[value.name]
        nulls = self.space.constrain(value.name, domain.nulls())
        outside = self.space.complement(self.space.union(inside, nulls))
        return self._exact_truth(outside)

    def _between(self, node: ast.Between, source: str) -> Truth:
        pairs = []
        for vguard, value in self._cases(node.value, source):
            for lguard, low in self._cases(node.low, source):
                for hguard, high in self._cases(node.high, source):
                    guard = self.both(self.both(vguard, lguard), hguard)
                    if guard.over.empty:
                        continue
                    pairs.append((guard, self._between_values(value, low, high, node, source)))
        return self._combine(pairs)

    def _between_values(self, value: Val, low: Val, high: Val, node: ast.Between, source: str) -> Truth:
        if not isinstance(low, Const) or not isinstance(high, Const) or isinstance(value, Opaque):
            return self.unknown(self._describe(node, source))
        if low.value is None or high.value is None:
            return self._decided(False)
        if isinstance(value, Const):
            if value.value is None:
                return self._decided(False)
            first, second = _same_kind(low.value, value.value), _same_kind(value.value, high.value)
            if first is None or second is None:
                return self.unknown(self._describe(node, source))
            return self._decided(first[0] <= first[1] and second[0] <= second[1])
        at_least = self._field_compare(value.name, ">=", low.value)
        at_most = self._field_compare(value.name, "<=", high.value)
        if at_least is None or at_most is None:
            return self.unknown(self._describe(node, source))
        return self._exact_truth(self.space.intersect(at_least, at_most))

    def _is_null(self, cases: Cases, node: ast.Expr, source: str) -> Truth:
        pairs = []
        for guard, value in cases:
            if isinstance(value, Const):
                truth = self._decided(value.value is None)
            elif isinstance(value, FieldRef):
                domain = self.space.domains[value.name]
                truth = self._exact_truth(self.space.constrain(value.name, domain.nulls()))
            else:
                truth = self.unknown(value.reason)
            pairs.append((guard, truth))
        return self._combine(pairs)

    # ---- wording -------------------------------------------------------------------------------------

    def _describe(self, node: ast.Expr, source: str) -> str:
        """How an unknown part is named in messages; also notes the fields it reads."""
        self.opaque_fields |= self._fields_in(node)
        text = _quoted(source[node.span.start:node.span.end])
        what = {ast.BinOp: "arithmetic", ast.Call: "a function call", ast.Member: "a score",
                ast.Unary: "arithmetic"}.get(type(node))
        if isinstance(node, ast.Name) and node.name in self.policy.fields:
            what = f"a {self.policy.fields[node.name].type} field"
        elif isinstance(node, ast.BinOp) and node.op in ast.COMPARISON_OPS:
            what = None
        return f"{text} ({what})" if what else text


def _quoted(text: str) -> str:
    """Source text on one line, quoted, shortened past 60 characters."""
    text = " ".join(text.split()) or "?"
    return f"'{text[:57]}…'" if len(text) > 60 else f"'{text}'"


def describe_unknowns(unknowns: tuple[str, ...]) -> str:
    """``'balance / limit' (arithmetic) and 'days_since(x)' (a function call)`` for messages."""
    shown = list(unknowns[:_MAX_REASONS])
    more = len(unknowns) - len(shown)
    if not shown:
        return "unknown parts"
    text = ", ".join(shown[:-1]) + (" and " if len(shown) > 1 else "") + shown[-1]
    return text + (f" and {more} more" if more > 0 else "")
