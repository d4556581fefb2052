"""The expression AST: frozen, slotted nodes, each with the span of source text it came from.

Spans are character offsets into the expression string (``start`` inclusive, ``end`` exclusive); the policy
layer maps them to file lines and columns. Nothing outside :mod:`collectrules.lang.parser` sees a lark tree.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias


class CalendarDuration(_dt.timedelta):
    """A duration written in days or weeks (``7d``, ``2w``).

    Where a duration is a counting window (``attempts("phone", 7d)``), days and weeks mean calendar days in
    the debtor's time zone, while hours and minutes (``168h``) mean a sliding period; this subclass keeps
    that distinction after parsing. It compares and computes like any timedelta.
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int


LiteralValue: TypeAlias = bool | int | Decimal | str | _dt.timedelta | _dt.date | None


@dataclass(frozen=True, slots=True)
class Literal:
    #: "int", "decimal", "percent", "string", "bool", "null", "duration"
    kind: str
    value: LiteralValue
    span: Span


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Member:
    """``score.recovery``: a namespace (only ``score`` today) and a member of it."""

    namespace: str
    member: str
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Unary:
    #: "not" or "neg"
    op: str
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class BinOp:
    #: "and", "or", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/"
    op: str
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class In:
    value: Expr
    container: Expr
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Between:
    """``value between low and high``, inclusive at both ends."""

    value: Expr
    low: Expr
    high: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class IsNull:
    value: Expr
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class If:
    cond: Expr
    then: Expr
    otherwise: Expr
    span: Span


Expr: TypeAlias = Literal | ListLit | Name | Member | Call | Unary | BinOp | In | Between | IsNull | If

COMPARISON_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})
ARITHMETIC_OPS = frozenset({"+", "-", "*", "/"})
LOGICAL_OPS = frozenset({"and", "or"})


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``node``, in source order."""
    match node:
        case ListLit(items=items):
            return items
        case Call(args=args):
            return args
        case Unary(operand=operand):
            return (operand,)
        case BinOp(left=left, right=right):
            return (left, right)
        case In(value=value, container=container):
            return (value, container)
        case Between(value=value, low=low, high=high):
            return (value, low, high)
        case IsNull(value=value):
            return (value,)
        case If(cond=cond, then=then, otherwise=otherwise):
            return (cond, then, otherwise)
    return ()


def walk(node: Expr) -> list[Expr]:
    """All nodes under ``node`` (itself included), without recursion."""
    out: list[Expr] = []
    stack: list[Expr] = [node]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(reversed(children(current)))
    return out


def referenced_names(node: Expr) -> list[Name]:
    """Every bare name the expression reads, in source order."""
    return [n for n in walk(node) if isinstance(n, Name)]
