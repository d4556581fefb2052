"""Pretty-printer for the expression AST: the canonical text of an expression, with minimal parentheses.

``to_source`` is the inverse of :func:`collectrules.lang.parser.parse` up to spans and spelling: parsing the
printed text gives back the same tree (compare with :func:`strip_spans`), and printing is stable (printing
the re-parsed tree gives the same text). The canonical spelling uses the keyword forms (``and``, ``or``,
``not``), double-quoted strings, one space around binary operators and ``, `` between arguments.

Both functions work bottom-up over :func:`collectrules.lang.ast.walk` instead of recursing, like the type
checker, so a deep tree cannot exhaust Python's recursion limit.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal

from . import ast

__all__ = ["KEYWORDS", "Precedence", "to_source", "strip_spans"]

#: words the grammar reserves; a name spelled like one of them cannot be printed as a name
KEYWORDS = frozenset({"if", "then", "else", "or", "and", "not", "in", "between", "is", "null", "true",
                      "false"})

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Largest unit first, so a duration prints in the largest unit that divides it exactly.
_DURATION_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))

_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}

_NO_SPAN = ast.Span(0, 0)


class Precedence:
    """Binding strength of each grammar level, lowest first (the order of the rules in ``grammar.lark``)."""

    IF = 0
    OR = 1
    AND = 2
    NOT = 3
    COMPARISON = 4
    SUM = 5
    PRODUCT = 6
    UNARY = 7
    ATOM = 8


_BINARY_LEVEL = {
    "or": Precedence.OR, "and": Precedence.AND,
    "==": Precedence.COMPARISON, "!=": Precedence.COMPARISON, "<": Precedence.COMPARISON,
    "<=": Precedence.COMPARISON, ">": Precedence.COMPARISON, ">=": Precedence.COMPARISON,
    "+": Precedence.SUM, "-": Precedence.SUM, "*": Precedence.PRODUCT, "/": Precedence.PRODUCT,
}


def _operand_levels(op: str) -> tuple[int, int]:
    """The weakest level each side of a binary operator accepts without parentheses.

    ``or``/``and``/``+ -``/``* /`` are left-associative (the left side may be the same level, the right side
    must bind tighter); comparisons do not chain, so both sides must bind tighter.
    """
    level = _BINARY_LEVEL[op]
    if level == Precedence.COMPARISON:
        return Precedence.SUM, Precedence.SUM
    if level == Precedence.AND:
        # the grammar puts `not` directly under `and`: `a and not b` needs no parentheses
        return Precedence.AND, Precedence.NOT
    return level, level + 1


def _plain_decimal(value: Decimal) -> str:
    """Fixed-point text of a finite decimal, never with an exponent; zero is never signed."""
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written as a literal")
    # the parser negates `-0.0` to plain 0.0, so a signed zero would not print back the same
    return format(value.copy_abs() if value.is_zero() else value, "f")


def _format_decimal(value: Decimal) -> str:
    text = _plain_decimal(value)
    # a decimal literal needs a fractional part, otherwise it reads back as an int
    return text if "." in text else text + ".0"


def _format_percent(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written as a percentage")
    if value.is_zero():
        return "0%"
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    # Shifting the exponent multiplies by 100 exactly; trailing zeros are dropped by hand because
    # Decimal.normalize() would also round to the context precision.
    kept = list(digits)
    exponent += 2
    while exponent < 0 and kept[-1] == 0:
        kept.pop()
        exponent += 1
    return _plain_decimal(Decimal((sign, tuple(kept), exponent))) + "%"


def format_duration(value: _dt.timedelta) -> str:
    """A duration as written in a policy: days and weeks for calendar durations, h/m/s otherwise."""
    if value.microseconds:
        raise ValueError(f"{value} is not a whole number of seconds and cannot be written as a duration")
    seconds = value.days * 86400 + value.seconds
    if seconds == 0:
        return "0s"
    # days and weeks mean calendar days, hours and minutes a sliding period: keep the kind the author wrote
    calendar = isinstance(value, ast.CalendarDuration)
    for unit, size in _DURATION_UNITS:
        if (unit in "wd") != calendar:
            continue
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("every whole number of seconds divides by 1")


def _format_string(value: str) -> str:
    return '"' + "".join(_STRING_ESCAPES.get(char, char) for char in value) + '"'


def _format_literal(node: ast.Literal) -> tuple[str, int]:
    value = node.value
    number = value if isinstance(value, int | Decimal) and not isinstance(value, bool) else None
    text: str
    match node.kind:
        case "int" if isinstance(number, int):
            text = str(number)
        case "decimal" if number is not None:
            text = _format_decimal(Decimal(number))
        case "percent" if number is not None:
            text = _format_percent(Decimal(number))
        case "duration" if isinstance(value, _dt.timedelta):
            text = format_duration(value)
            # a negative number is read back as unary minus folded into the literal: it binds like one
            return text, Precedence.UNARY if value < _dt.timedelta(0) else Precedence.ATOM
        case "string" if isinstance(value, str):
            return _format_string(value), Precedence.ATOM
        case "bool" if isinstance(value, bool):
            return ("true" if value else "false"), Precedence.ATOM
        case "null" if value is None:
            return "null", Precedence.ATOM
        case _:
            raise ValueError(f"a {node.kind!r} literal cannot hold {value!r}")
    assert number is not None
    return text, Precedence.UNARY if number < 0 else Precedence.ATOM


def _check_name(name: str) -> str:
    if not _NAME.match(name) or name in KEYWORDS:
        raise ValueError(f"{name!r} cannot be written as a name in an expression")
    return name


def to_source(expr: ast.Expr) -> str:
    """The canonical text of ``expr``, with only the parentheses that precedence requires.

    Raises :class:`ValueError` for a tree no text can produce: a name that is a keyword or not an identifier,
    a duration with fractions of a second, a non-finite decimal.
    """
    printed: dict[int, tuple[str, int]] = {}

    def operand(node: ast.Expr, weakest: int) -> str:
        text, level = printed[id(node)]
        return text if level >= weakest else f"({text})"

    def listed(nodes: tuple[ast.Expr, ...]) -> str:
        return ", ".join(operand(n, Precedence.IF) for n in nodes)

    for node in reversed(ast.walk(expr)):
        if id(node) in printed:
            continue  # a node object shared by several parents prints the same everywhere
        result: tuple[str, int]
        match node:
            case ast.Literal():
                result = _format_literal(node)
            case ast.ListLit(items=items):
                result = f"[{listed(items)}]", Precedence.ATOM
            case ast.Name(name=name):
                result = _check_name(name), Precedence.ATOM
            case ast.Member(namespace=namespace, member=member):
                result = f"{_check_name(namespace)}.{_check_name(member)}", Precedence.ATOM
            case ast.Call(func=func, args=args):
                result = f"{_check_name(func)}({listed(args)})", Precedence.ATOM
            case ast.Unary(op="not", operand=inner):
                result = f"not {operand(inner, Precedence.NOT)}", Precedence.NOT
            case ast.Unary(op="neg", operand=inner):
                result = f"-{operand(inner, Precedence.UNARY)}", Precedence.UNARY
            case ast.BinOp(op=op, left=left, right=right) if op in _BINARY_LEVEL:
                left_level, right_level = _operand_levels(op)
                result = (f"{operand(left, left_level)} {op} {operand(right, right_level)}",
                          _BINARY_LEVEL[op])
            case ast.In(value=value, container=container, negated=negated):
                keyword = "not in" if negated else "in"
                result = (f"{operand(value, Precedence.SUM)} {keyword} {operand(container, Precedence.SUM)}",
                          Precedence.COMPARISON)
            case ast.Between(value=value, low=low, high=high):
                result = (f"{operand(value, Precedence.SUM)} between {operand(low, Precedence.SUM)} "
                          f"and {operand(high, Precedence.SUM)}", Precedence.COMPARISON)
            case ast.IsNull(value=value, negated=negated):
                suffix = "is not null" if negated else "is null"
                result = f"{operand(value, Precedence.SUM)} {suffix}", Precedence.COMPARISON
            case ast.If(cond=cond, then=then, otherwise=otherwise):
                # every slot of if/then/else is a full expression in the grammar, another `if` included
                result = (f"if {operand(cond, Precedence.IF)} then {operand(then, Precedence.IF)} "
                          f"else {operand(otherwise, Precedence.IF)}", Precedence.IF)
            case _:
                raise ValueError(f"cannot print {node!r}")
        printed[id(node)] = result
    return printed[id(expr)][0]


def strip_spans(expr: ast.Expr) -> ast.Expr:
    """The same tree with every span set to ``Span(0, 0)``: trees parsed from different text compare equal."""
    rebuilt: dict[int, ast.Expr] = {}

    def new(node: ast.Expr) -> ast.Expr:
        return rebuilt[id(node)]

    for node in reversed(ast.walk(expr)):
        if id(node) in rebuilt:
            continue
        copy: ast.Expr
        match node:
            case ast.Literal(kind=kind, value=value):
                copy = ast.Literal(kind, value, _NO_SPAN)
            case ast.ListLit(items=items):
                copy = ast.ListLit(tuple(new(i) for i in items), _NO_SPAN)
            case ast.Name(name=name):
                copy = ast.Name(name, _NO_SPAN)
            case ast.Member(namespace=namespace, member=member):
                copy = ast.Member(namespace, member, _NO_SPAN)
            case ast.Call(func=func, args=args):
                copy = ast.Call(func, tuple(new(a) for a in args), _NO_SPAN)
            case ast.Unary(op=op, operand=operand):
                copy = ast.Unary(op, new(operand), _NO_SPAN)
            case ast.BinOp(op=op, left=left, right=right):
                copy = ast.BinOp(op, new(left), new(right), _NO_SPAN)
            case ast.In(value=value, container=container, negated=negated):
                copy = ast.In(new(value), new(container), negated, _NO_SPAN)
            case ast.Between(value=value, low=low, high=high):
                copy = ast.Between(new(value), new(low), new(high), _NO_SPAN)
            case ast.IsNull(value=value, negated=negated):
                copy = ast.IsNull(new(value), negated, _NO_SPAN)
            case ast.If(cond=cond, then=then, otherwise=otherwise):
                copy = ast.If(new(cond), new(then), new(otherwise), _NO_SPAN)
            case _:
                raise TypeError(f"not an expression node: {node!r}")
        rebuilt[id(node)] = copy
    return rebuilt[id(expr)]
