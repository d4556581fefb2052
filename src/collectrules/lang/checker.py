"""The type checker: gives every node of an expression a type, or an :class:`ExprProblem` at the exact span.

It knows the policy's fields and derived names (a :class:`Scope`), the scores (``score.NAME`` is a decimal),
and the function registry. It walks the tree bottom-up with an explicit stack, so deep input cannot exhaust
Python's recursion limit.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import ast
from . import types as T
from .functions import FunctionRegistry
from .parser import ExprProblem
from .types import Type


@dataclass
class Scope:
    """What an expression may refer to."""

    names: Mapping[str, Type]
    functions: FunctionRegistry
    scores: frozenset[str] = frozenset()
    #: validates literal arguments such as channel names; returns an error message or None
    literal_checks: Mapping[str, Callable[[str], str | None]] = field(default_factory=dict)


def _suggest(word: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _a(t: object) -> str:
    """``int`` → "an int", ``decimal`` → "a decimal"."""
    text = str(t)
    return ("an " if text[:1] in "aeiou" else "a ") + text


def _problem(code: str, message: str, node: ast.Expr, hint: str | None = None) -> ExprProblem:
    return ExprProblem(code, message, node.span.start, node.span.end, hint)


@dataclass
class TypedExpr:
    """A checked expression: its AST, its result type and the type of every node (by ``id``)."""

    expr: ast.Expr
    type: Type
    node_types: dict[int, Type]
    source: str

    def type_of(self, node: ast.Expr) -> Type:
        return self.node_types[id(node)]


def check(expr: ast.Expr, scope: Scope, *, source: str = "", expect: Type | None = None,
          what: str = "condition") -> TypedExpr:
    """Type-check ``expr``. With ``expect`` the result must have that type (a condition: bool)."""
    types: dict[int, Type] = {}
    # post-order without recursion: visit children first
    order = ast.walk(expr)
    for node in reversed(order):
        types[id(node)] = _type_node(node, types, scope)
    result = types[id(expr)]
    if expect is not None and result.kind not in ("null", "any"):
        if expect == T.BOOL and result != T.BOOL:
            raise _problem("CR353", f"{_a(what)} must be true or false, but this is {_a(result)}", expr,
                           "compare it with something, e.g. 'dpd >= 30'")
        if expect != T.BOOL and T.unify(expect, result) != expect:
            raise _problem("CR352", f"expected {_a(expect)} here, but this is {_a(result)}", expr)
    return TypedExpr(expr, result, types, source)


def _type_node(node: ast.Expr, types: dict[int, Type], scope: Scope) -> Type:
    def of(child: ast.Expr) -> Type:
        return types[id(child)]

    match node:
        case ast.Literal(kind=kind):
            return {"int": T.INT, "decimal": T.DECIMAL, "percent": T.DECIMAL, "string": T.STRING,
                    "bool": T.BOOL, "null": T.NULL, "duration": T.DURATION}[kind]
        case ast.ListLit(items=items):
            result: Type = T.ANY
            for item in items:
                unified = T.unify(result, of(item))
                if unified is None:
                    raise _problem("CR358", f"list items must have one type: {of(item)} does not fit with {result}",
                                   item)
                result = unified
            return T.list_of(result)
        case ast.Name(name=name):
            found = scope.names.get(name)
            if found is None:
                if name == "score":
                    raise _problem("CR360", "'score' needs a score name, as in score.recovery", node)
                hint = _suggest(name, list(scope.names)) or "declare it under 'fields' or 'derive'"
                raise _problem("CR351", f"unknown name {name!r}", node, hint)
            return found
        case ast.Member(namespace=namespace, member=member):
            if namespace != "score":
                raise _problem("CR360", f"unknown namespace {namespace!r}", node,
                               "only scores are reached with a dot: score.NAME")
            if member not in scope.scores:
                hint = _suggest(member, sorted(scope.scores)) or "declare the score under 'scores'"
                raise _problem("CR360", f"unknown score {member!r}", node, hint)
            return T.DECIMAL
        case ast.Call():
            return _type_call(node, types, scope)
        case ast.Unary(op="not", operand=operand):
            if of(operand).kind not in ("bool", "null"):
                raise _problem("CR352", f"'not' needs true or false, but this is {_a(of(operand))}", operand)
            return T.BOOL
        case ast.Unary(op="neg", operand=operand):
            kind = of(operand).kind
            if not (of(operand).is_numeric or kind == "duration"):
                raise _problem("CR352", f"cannot negate {_a(of(operand))}", node)
            return of(operand)
        case ast.BinOp(op=op, left=left, right=right):
            return _type_binop(node, op, left, right, of(left), of(right))
        case ast.In(value=value, container=container):
            container_type = of(container)
            if container_type.kind != "list":
                hint = "use contains(text, part) for text" if container_type.is_textual else None
                raise _problem("CR352", f"'in' needs a list on its right, but this is {_a(container_type)}",
                               container, hint)
            item_type = container_type.item or T.ANY
            if item_type.kind != "any" and not T.comparable(of(value), item_type, ordered=False):
                raise _problem("CR352", f"cannot look for {_a(of(value))} in {_a(container_type)}", node)
            if of(value).kind == "enum" and isinstance(container, ast.ListLit):
                for item in container.items:
                    _check_enum_literal(of(value), item)
            return T.BOOL
        case ast.Between(value=value, low=low, high=high):
            for bound in (low, high):
                if not T.comparable(of(value), of(bound), ordered=True):
                    raise _problem("CR352", f"cannot compare {_a(of(value))} with {_a(of(bound))}", bound)
            return T.BOOL
        case ast.IsNull():
            return T.BOOL
        case ast.If(cond=cond, then=then, otherwise=otherwise):
            if of(cond).kind not in ("bool", "null"):
                raise _problem("CR353", f"the condition after 'if' must be true or false, but this is {_a(of(cond))}",
                               cond)
            unified = T.unify(of(then), of(otherwise))
            if unified is None:
                raise _problem("CR358", f"'then' gives {_a(of(then))} but 'else' gives {_a(of(otherwise))}", otherwise,
                               "both branches must give the same type")
            return unified
    raise AssertionError(f"unhandled node {type(node).__name__}")


def _check_enum_literal(enum_type: Type, other: ast.Expr) -> None:
    if isinstance(other, ast.Literal) and other.kind == "string" and other.value not in enum_type.enum_values:
        options = list(enum_type.enum_values)
        hint = _suggest(str(other.value), options) or f"allowed values: {', '.join(options)}"
        raise _problem("CR354", f"{other.value!r} is not one of the values of this enum", other, hint)


def _type_binop(node: ast.BinOp, op: str, left: ast.Expr, right: ast.Expr, lt: Type, rt: Type) -> Type:
    if op in ast.LOGICAL_OPS:
        for side, t in ((left, lt), (right, rt)):
            if t.kind not in ("bool", "null"):
                raise _problem("CR352", f"'{op}' needs true or false on both sides, but this is {_a(t)}", side,
                               "compare it with something, e.g. 'balance > 0'")
        return T.BOOL
    if op in ast.COMPARISON_OPS:
        for side, t in ((left, lt), (right, rt)):
            if t.kind == "null":
                raise _problem("CR359", f"comparing with null is never true", side,
                               "use 'is null' or 'is not null'")
        if not T.comparable(lt, rt, ordered=op not in ("==", "!=")):
            hint = None
            if {lt.kind, rt.kind} <= {"int", "decimal", "string", "enum"}:
                hint = "numbers are written without quotes: balance >= 5000"
            elif "date" in (lt.kind, rt.kind) or "datetime" in (lt.kind, rt.kind):
                hint = "write dates as date(\"2026-01-31\"), or use days_since(...)"
            raise _problem("CR352", f"cannot compare {_a(lt)} with {_a(rt)} using '{op}'", node, hint)
        if lt.kind == "enum":
            _check_enum_literal(lt, right)
        if rt.kind == "enum":
            _check_enum_literal(rt, left)
        return T.BOOL
    # arithmetic
    if lt.kind == "null" or rt.kind == "null":
        raise _problem("CR352", f"arithmetic with null is always null", node, "use coalesce(x, 0)")
    if lt.is_numeric and rt.is_numeric:
        if op == "/":
            return T.DECIMAL
        return T.INT if lt.kind == rt.kind == "int" else T.DECIMAL
    if op in ("+", "-") and lt.kind in ("date", "datetime") and rt.kind == "duration":
        return lt
    if op == "+" and lt.kind == "duration" and rt.kind in ("date", "datetime"):
        return rt
    if op == "-" and lt.kind == rt.kind and lt.kind in ("date", "datetime"):
        return T.DURATION
    if op in ("+", "-") and lt.kind == rt.kind == "duration":
        return T.DURATION
    if op == "*" and {lt.kind, rt.kind} in ({"duration", "int"}, {"duration", "decimal"}):
        return T.DURATION
    if op == "+" and lt.kind in ("string", "enum") and rt.kind in ("string", "enum"):
        return T.STRING
    raise _problem("CR352", f"cannot apply '{op}' to {_a(lt)} and {_a(rt)}", node)


def _type_call(node: ast.Call, types: dict[int, Type], scope: Scope) -> Type:
    function = scope.functions.get(node.func)
    if function is None:
        if node.func == "date" or node.func == "datetime":
            return _type_date_constructor(node)
        hint = _suggest(node.func, [*scope.functions.names(), "date", "datetime"]) or "see the list of functions"
        raise _problem("CR355", f"unknown function {node.func!r}", node, hint)
    low, high = function.arity()
    count = len(node.args)
    if count < low or (high is not None and count > high):
        expected = f"{low}" if low == high else (f"at least {low}" if high is None else f"{low} to {high}")
        raise _problem("CR356", f"{node.func}() takes {expected} argument{'s' if expected != '1' else ''}, "
                                f"got {count}", node)
    arg_types = []
    for index, arg in enumerate(node.args):
        param = function.param_for(index)
        arg_type = types[id(arg)]
        if param.literal:
            if not isinstance(arg, ast.Literal):
                raise _problem("CR357", f"argument {index + 1} of {node.func}() must be written out: "
                                        f"{param.description}", arg)
            check_literal = scope.literal_checks.get(param.description)
            if check_literal is not None and isinstance(arg.value, str):
                message = check_literal(arg.value)
                if message:
                    raise _problem("CR361", message, arg)
        if not param.accepts(arg_type):
            raise _problem("CR357", f"argument {index + 1} of {node.func}() must be {param.description}, "
                                    f"got {_a(arg_type)}", arg)
        arg_types.append(arg_type)
    if function.check_args is not None:
        message = function.check_args(arg_types)
        if message:
            raise _problem("CR357", f"{node.func}(): {message}", node.args[-1] if node.args else node)
    return function.result_type(arg_types)


def _type_date_constructor(node: ast.Call) -> Type:
    """``date("2026-01-31")`` and ``datetime("2026-01-31T08:00:00Z")`` are literals checked here."""
    import datetime as _dt

    if len(node.args) != 1 or not (isinstance(node.args[0], ast.Literal) and node.args[0].kind == "string"):
        raise _problem("CR305", f"{node.func}() takes one quoted value, as in {node.func}(\"2026-01-31\")", node)
    text = str(node.args[0].value)
    try:
        if node.func == "date":
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
                raise ValueError(text)
            _dt.date.fromisoformat(text)
            return T.DATE
        parsed = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _problem("CR305", f"{text!r} is not a valid {node.func}", node.args[0],
                       "write it as YYYY-MM-DD" if node.func == "date" else "write it as 2026-01-31T08:00:00Z")
    if parsed.tzinfo is None:
        raise _problem("CR305", f"{text!r} has no time zone", node.args[0], "end it with Z or an offset like +01:00")
    return T.DATETIME
