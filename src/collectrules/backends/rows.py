"""Rows backend: compiles a checked expression into nested Python closures, one account at a time.

``compile_expr`` dispatches on node types once, at compile time; the returned closure does no dispatch,
no lookups by name in registries and no parsing. Nothing is ever passed to ``eval`` or ``exec``.

Null semantics (the same in every backend, see docs/expression-language.md):
- a comparison, ``in``, ``not in`` or ``between`` with a null operand is false;
- arithmetic and most functions propagate null;
- ``and``/``or``/``not`` follow three-valued logic (null and false = false, null or true = true,
  not null = null); a condition whose value is null does not match.
"""

from __future__ import annotations

import datetime as _dt
import operator
from collections.abc import Callable
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any

from ..lang import ast
from ..lang.checker import TypedExpr
from ..lang.functions import FunctionRegistry

Evaluator = Callable[[Any], Any]


class ExprRuntimeError(Exception):
    """Evaluation of one expression failed (division by zero, overflow); carries the node's span."""

    def __init__(self, message: str, span: ast.Span) -> None:
        super().__init__(message)
        self.message = message
        self.span = span


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def compile_expr(typed: TypedExpr, functions: FunctionRegistry) -> Evaluator:
    """Compile a checked expression into ``Callable[[ctx], value]``.

    ``ctx`` must offer ``values`` (a dict of field and derived values), ``scores`` (a dict) and, for
    context functions, the :class:`~collectrules.lang.functions.EvalContext` members.
    """
    return _Compiler(typed, functions).compile(typed.expr)


class _Compiler:
    def __init__(self, typed: TypedExpr, functions: FunctionRegistry) -> None:
        self.typed = typed
        self.functions = functions

    def compile(self, node: ast.Expr) -> Evaluator:
        evaluator = self._compile(node)
        node_type = self.typed.type_of(node)
        # where the checker unified int and decimal into decimal (if/else branches, min, max, coalesce, lists),
        # make the value a Decimal too, so a value's type never depends on which branch produced it
        if node_type.kind == "decimal" and isinstance(node, ast.If | ast.Call):
            inner = evaluator

            def as_decimal(ctx: Any) -> Any:
                value = inner(ctx)
                return Decimal(value) if type(value) is int else value
            return as_decimal
        if node_type.kind == "list" and node_type.item is not None and node_type.item.kind == "decimal" \
                and isinstance(node, ast.ListLit):
            inner_list = evaluator
            return lambda ctx: tuple(Decimal(v) if type(v) is int else v for v in inner_list(ctx))
        return evaluator

    def _compile(self, node: ast.Expr) -> Evaluator:  # noqa: C901 - one branch per node type, by design
        match node:
            case ast.Literal(value=value):
                return lambda ctx: value
            case ast.ListLit(items=items):
                if all(isinstance(i, ast.Literal) for i in items):
                    constant = tuple(i.value for i in items)  # type: ignore[union-attr]
                    return lambda ctx: constant
                parts = [self.compile(i) for i in items]
                return lambda ctx: tuple(p(ctx) for p in parts)
            case ast.Name(name=name):
                return lambda ctx: ctx.values[name]
            case ast.Member(member=member):
                return lambda ctx: ctx.scores.get(member)
            case ast.Call():
                return self._call(node)
            case ast.Unary(op="not", operand=operand):
                inner = self.compile(operand)

                def not_(ctx: Any) -> bool | None:
                    value = inner(ctx)
                    return None if value is None else not value
                return not_
            case ast.Unary(op="neg", operand=operand):
                inner = self.compile(operand)

                def neg(ctx: Any) -> Any:
                    value = inner(ctx)
                    return None if value is None else -value
                return neg
            case ast.BinOp(op="and", left=left, right=right):
                lf, rf = self.compile(left), self.compile(right)

                def and_(ctx: Any) -> bool | None:
                    a = lf(ctx)
                    if a is False:
                        return False
                    b = rf(ctx)
                    if b is False:
                        return False
                    return None if a is None or b is None else True
                return and_
            case ast.BinOp(op="or", left=left, right=right):
                lf, rf = self.compile(left), self.compile(right)

                def or_(ctx: Any) -> bool | None:
                    a = lf(ctx)
                    if a is True:
                        return True
                    b = rf(ctx)
                    if b is True:
                        return True
                    return None if a is None or b is None else False
                return or_
            case ast.BinOp(op=op, left=left, right=right) if op in ast.COMPARISON_OPS:
                lf, rf, cmp = self.compile(left), self.compile(right), _COMPARE[op]

                def compare(ctx: Any) -> bool:
                    a = lf(ctx)
                    if a is None:
                        return False
                    b = rf(ctx)
                    if b is None:
                        return False
                    return cmp(a, b)
                return compare
            case ast.BinOp(op=op, left=left, right=right):
                return self._arith(node, op, self.compile(left), self.compile(right))
            case ast.In(value=value, container=container, negated=negated):
                vf, cf = self.compile(value), self.compile(container)

                def in_(ctx: Any) -> bool:
                    v = vf(ctx)
                    if v is None:
                        return False
                    c = cf(ctx)
                    if c is None:
                        return False
                    return (v in c) != negated
                return in_
            case ast.Between(value=value, low=low, high=high):
                vf, lo, hi = self.compile(value), self.compile(low), self.compile(high)

                def between(ctx: Any) -> bool:
                    v = vf(ctx)
                    if v is None:
                        return False
                    a, b = lo(ctx), hi(ctx)
                    if a is None or b is None:
                        return False
                    return bool(a <= v <= b)
                return between
            case ast.IsNull(value=value, negated=negated):
                vf = self.compile(value)
                if negated:
                    return lambda ctx: vf(ctx) is not None
                return lambda ctx: vf(ctx) is None
            case ast.If(cond=cond, then=then, otherwise=otherwise):
                cf, tf, of = self.compile(cond), self.compile(then), self.compile(otherwise)
                return lambda ctx: tf(ctx) if cf(ctx) is True else of(ctx)
        raise AssertionError(f"unhandled node {type(node).__name__}")

    def _arith(self, node: ast.BinOp, op: str, lf: Evaluator, rf: Evaluator) -> Evaluator:
        span = node.span
        if op == "/":
            def divide(ctx: Any) -> Decimal | None:
                a, b = lf(ctx), rf(ctx)
                if a is None or b is None:
                    return None
                if b == 0:
                    raise ExprRuntimeError("division by zero", span)
                try:
                    return Decimal(a) / Decimal(b)
                except (InvalidOperation, DivisionByZero) as exc:
                    raise ExprRuntimeError(f"invalid division: {exc}", span) from None
            return divide
        fn = {"+": operator.add, "-": operator.sub, "*": operator.mul}[op]
        result_kind = self.typed.type_of(node).kind
        left_kind = self.typed.type_of(node.left).kind
        right_kind = self.typed.type_of(node.right).kind
        if result_kind == "duration" and "decimal" in (left_kind, right_kind):
            # timedelta * Decimal is not defined in Python: go through whole seconds, exactly
            def scale(ctx: Any) -> _dt.timedelta | None:
                a, b = lf(ctx), rf(ctx)
                if a is None or b is None:
                    return None
                duration, factor = (a, b) if isinstance(a, _dt.timedelta) else (b, a)
                seconds = Decimal(int(duration.total_seconds())) * Decimal(factor)
                return _dt.timedelta(seconds=int(seconds))
            return scale

        def arith(ctx: Any) -> Any:
            a, b = lf(ctx), rf(ctx)
            if a is None or b is None:
                return None
            try:
                return fn(a, b)
            except (OverflowError, InvalidOperation) as exc:
                raise ExprRuntimeError(f"arithmetic failed: {exc}", span) from None
        return arith

    def _call(self, node: ast.Call) -> Evaluator:
        if node.func in ("date", "datetime") and self.functions.get(node.func) is None:
            text = str(node.args[0].value)  # type: ignore[union-attr]
            if node.func == "date":
                constant: Any = _dt.date.fromisoformat(text)
            else:
                constant = _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(_dt.UTC)
            return lambda ctx: constant
        function = self.functions.get(node.func)
        assert function is not None, "the checker guarantees every called function exists"
        impl = function.impl
        args = [self.compile(a) for a in node.args]
        span = node.span
        null_safe = function.null_safe

        def guarded(values: list[Any]) -> Any:
            try:
                return impl(*values)
            except (ArithmeticError, ValueError, TypeError) as exc:
                raise ExprRuntimeError(f"{node.func}() failed: {exc}", span) from None

        if function.uses_context:
            def call_with_context(ctx: Any) -> Any:
                values = [a(ctx) for a in args]
                if not null_safe and any(v is None for v in values):
                    return None
                return guarded([ctx, *values])
            return call_with_context

        def call(ctx: Any) -> Any:
            values = [a(ctx) for a in args]
            if not null_safe and any(v is None for v in values):
                return None
            return guarded(values)
        return call
